"""tf.data: masks match labels, batches without a task's labels, balanced sampling."""

import numpy as np

from kmtl.data import pipeline
from kmtl.data import splits


def _split():
  # Rows 0-5 resistivity only, rows 6-7 hardness only.
  features = np.arange(16, dtype=np.float32).reshape(8, 2)
  res = np.array([1, 2, 3, 4, 5, 6, 0, 0], np.float32)
  hard = np.array([0, 0, 0, 0, 0, 0, 7, 8], np.float32)
  return splits.SplitArrays(features, {"resistivity": res, "hardness": hard},
                            {"resistivity": (res != 0).astype(np.float32),
                             "hardness": (hard != 0).astype(np.float32)})


def test_masks_match_labels_and_empty_task_batch():
  batches = list(pipeline.make_dataset(_split(), batch_size=4).as_numpy_iterator())
  assert len(batches) == 2
  x, labels, masks = batches[0]
  assert x.shape == (4, 2)
  np.testing.assert_array_equal(masks["hardness"], [0, 0, 0, 0])  # no hardness label here
  np.testing.assert_array_equal(labels["resistivity"], [1, 2, 3, 4])
  _, labels, masks = batches[1]
  np.testing.assert_array_equal(masks["resistivity"], [1, 1, 0, 0])
  np.testing.assert_array_equal(labels["hardness"] * masks["hardness"], [0, 0, 7, 8])


def test_shuffle_is_seeded_and_covers_every_row():
  def order(seed):
    ds = pipeline.make_dataset(_split(), batch_size=3, shuffle=True, seed=seed)
    return np.concatenate([x[:, 0] for x, _, _ in ds.as_numpy_iterator()])
  assert sorted(order(1)) == list(range(0, 16, 2))
  np.testing.assert_array_equal(order(1), order(1))
  assert not np.array_equal(order(1), order(2))


def test_balanced_sampling_over_samples_the_rare_task():
  split = _split()
  ds = pipeline.make_dataset(split, batch_size=8, balanced=True, seed=0).repeat(200)
  hard = sum(m["hardness"].sum() for _, _, m in ds.as_numpy_iterator())
  rows = 8 * 200
  # Uniform sampling would give 2/8 = 25% hardness rows; balanced sampling gives ~50%.
  assert 0.45 < hard / rows < 0.55
