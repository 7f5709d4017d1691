"""In-graph batch sampling: seeded epoch orders, batches with masks, balanced sampling."""

import numpy as np
import tensorflow as tf

from kmtl.data import sampling

# Rows 0-5 resistivity only, rows 6-7 hardness only.
RES = np.array([1, 2, 3, 4, 5, 6, 0, 0], np.float32)
HARD = np.array([0, 0, 0, 0, 0, 0, 7, 8], np.float32)
MASKS = np.stack([RES != 0, HARD != 0], axis=1).astype(np.float32)


def _order(sampler, epoch):
  return sampler.order(tf.constant(epoch, tf.int64)).numpy()


def test_uniform_order_is_a_seeded_permutation_new_every_epoch():
  sampler = sampling.EpochSampler(MASKS, seed=1)
  assert sorted(_order(sampler, 1)) == list(range(8))
  np.testing.assert_array_equal(_order(sampler, 1), _order(sampler, 1))
  assert not np.array_equal(_order(sampler, 1), _order(sampler, 2))
  assert not np.array_equal(_order(sampler, 1), _order(sampling.EpochSampler(MASKS, 2), 1))


def test_batches_keep_masks_with_labels_and_may_lack_a_task():
  features = tf.constant(np.arange(16, dtype=np.float32).reshape(8, 2))
  tensors = (features, tf.constant(np.stack([RES, HARD], axis=1)), tf.constant(MASKS))
  order = tf.range(8)
  x, y, m = sampling.gather_batch(tensors, sampling.batch_rows(order, 0, 4))
  assert x.shape == (4, 2)
  np.testing.assert_array_equal(m[:, 1], [0, 0, 0, 0])  # no hardness label in this batch
  np.testing.assert_array_equal(y[:, 0], [1, 2, 3, 4])
  _, y, m = sampling.gather_batch(tensors, sampling.batch_rows(order, 1, 4))
  np.testing.assert_array_equal(m[:, 0], [1, 1, 0, 0])
  np.testing.assert_array_equal(y[:, 1] * m[:, 1], [0, 0, 7, 8])


def test_balanced_sampling_over_samples_the_rare_task():
  sampler = sampling.EpochSampler(MASKS, seed=0, balanced=True)
  orders = np.concatenate([_order(sampler, e) for e in range(1, 201)])
  # Uniform sampling would give 2/8 = 25% hardness rows; balanced sampling gives ~50%.
  assert 0.45 < np.isin(orders, [6, 7]).mean() < 0.55
