"""A Parquet table streamed in chunks: the same split and scaling as in memory, epochs that keep
the sampler's semantics, training that resumes exactly, and the settings it refuses."""

import numpy as np
import pandas as pd
import pytest

from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import splits
from kmtl.data import stream
from kmtl.data import streaming
from kmtl.data import synthetic
from kmtl.data import tables
from tests import helpers

NAMES = ["resistivity", "hardness", "amorphous"]


@pytest.fixture(scope="module")
def tiny_parquet(tmp_path_factory):
  path = tmp_path_factory.mktemp("stream") / "tiny.parquet"
  helpers.tiny_frame(per_task=60).to_parquet(path, index=False)
  return str(path)


def _prepared(path, directory, chunk_rows=97, group_rows=50):
  data = streaming.load(config_lib.DataConfig(path=path, memory_budget_gb=0), directory,
                        chunk_rows=chunk_rows)
  return data, streaming.prepare(data, directory, 0.1, 0.2, seed=3, group_split=True,
                                 group_rows=group_rows)


def test_streamed_preparation_equals_the_in_memory_one(tiny_parquet, tmp_path):
  data, streamed = _prepared(tiny_parquet, str(tmp_path))
  memory_data = io.load_from_config(config_lib.DataConfig(path=tiny_parquet))
  in_memory = splits.prepare(memory_data, 0.1, 0.2, seed=3, group_split=True)
  np.testing.assert_array_equal(data.groups(), memory_data.groups())
  np.testing.assert_array_equal(streamed.row_split, in_memory.row_split)
  np.testing.assert_allclose(streamed.feature_scaler.mean_, in_memory.feature_scaler.mean_,
                             rtol=1e-10)
  np.testing.assert_allclose(streamed.feature_scaler.scale_, in_memory.feature_scaler.scale_,
                             rtol=1e-10)
  train = streamed.train.take(np.arange(streamed.train.num_rows))
  source = streamed.train.source_rows
  assert sorted(source) == list(range(streamed.train.num_rows))
  assert not np.array_equal(source, np.arange(len(source)))  # the file is shuffled
  for name in ("train", "val", "test"):
    got = train if name == "train" else streamed.split(name)
    want = in_memory.split(name)
    if name == "train":  # the same rows, in the file's order
      want = splits.SplitArrays(want.features[source],
                                {t: v[source] for t, v in want.labels.items()},
                                {t: v[source] for t, v in want.masks.items()})
    np.testing.assert_allclose(got.features, want.features, atol=1e-6)
    for task in NAMES:
      np.testing.assert_array_equal(got.masks[task], want.masks[task])
      np.testing.assert_allclose(got.labels[task], want.labels[task], atol=1e-6)
  again, _ = _prepared(tiny_parquet, str(tmp_path / "again"), chunk_rows=97)
  assert again.fingerprint() == data.fingerprint()


def test_a_file_sorted_by_task_gives_row_groups_of_the_whole_mix(tiny_parquet, tmp_path):
  """Rows sorted so that each task's labels come together: in the training file every row
  group of 25 holds each task near its share of the split (unshuffled, the groups would hold
  one task each)."""
  frame = pd.read_parquet(tiny_parquet)
  key = np.select([frame["hardness"].notna(), frame["amorphous"].notna()], [0, 1], 2)
  sorted_path = str(tmp_path / "sorted.parquet")
  frame.iloc[np.argsort(key, kind="stable")].to_parquet(sorted_path)
  _, prepared = _prepared(sorted_path, str(tmp_path / "scratch"), group_rows=25)
  masks = np.stack([prepared.train.masks[n] for n in NAMES], axis=1)
  share = masks.mean(axis=0)
  from pyarrow import parquet  # pylint: disable=g-import-not-at-top
  source = parquet.ParquetFile(prepared.train.path)
  assert source.metadata.num_row_groups >= 4
  for group in range(source.metadata.num_row_groups - 1):  # the last one may be short
    group_masks = streaming.column_matrix(source.read_row_group(group), "masks")
    assert np.all(np.abs(group_masks.mean(axis=0) - share) < 0.35), (group, share)
    np.testing.assert_array_equal(group_masks, masks[group * 25:(group + 1) * 25])


def test_an_error_names_the_row_of_the_whole_file(tiny_parquet, tmp_path):
  frame = helpers.tiny_frame(per_task=60)
  frame.loc[199, "Fe"] = -0.5
  path = tmp_path / "bad.parquet"
  frame.to_parquet(path, index=False)
  with pytest.raises(tables.DataError, match=r"bad.parquet: row 200, column 'Fe'"):
    streaming.load(config_lib.DataConfig(path=str(path), memory_budget_gb=0), str(tmp_path),
                   chunk_rows=97)


def _epoch_rows(epoch_stream, epoch):
  """The chunks of an epoch as one [n, F + 2T] array, and the chunk sizes."""
  chunks = [np.concatenate([x, y, m], axis=1) for x, y, m in
            (tuple(t.numpy() for t in parts) for parts in epoch_stream.dataset(epoch))]
  return np.concatenate(chunks), [len(c) for c in chunks]


def test_uniform_epochs_draw_each_row_at_most_once_in_seeded_orders(tiny_parquet, tmp_path):
  _, prepared = _prepared(tiny_parquet, str(tmp_path))
  make = lambda seed: stream.EpochStream(prepared.train, NAMES, batch_size=16, seed=seed,
                                         chunk_steps=3, window=2)
  epoch_stream = make(0)
  rows, sizes = _epoch_rows(epoch_stream, 1)
  steps = prepared.train.num_rows // 16
  assert len(rows) == steps * 16 and sizes[:-1] == [48] * (len(sizes) - 1)
  assert len(np.unique(rows, axis=0)) == len(rows)  # no training row twice
  whole = prepared.train.take(np.arange(prepared.train.num_rows))
  table = np.concatenate([whole.features, np.stack([whole.labels[n] for n in NAMES], 1),
                          np.stack([whole.masks[n] for n in NAMES], 1)], axis=1)
  assert {r.tobytes() for r in rows} <= {r.tobytes() for r in table}
  np.testing.assert_array_equal(_epoch_rows(make(0), 1)[0], rows)
  assert not np.array_equal(_epoch_rows(epoch_stream, 2)[0], rows)
  assert not np.array_equal(_epoch_rows(make(1), 1)[0], rows)


def test_balanced_rates_sum_to_the_epoch_and_even_out_the_tasks():
  masks = np.array([[1, 0], [1, 0], [1, 0], [1, 1], [0, 1]], np.float32)
  rates = stream.balanced_rates(masks)
  # Each task is picked N/2 = 2.5 times, then one of its rows: 2.5/4 and 2.5/2 per row.
  np.testing.assert_allclose(rates, [0.625, 0.625, 0.625, 0.625 + 1.25, 1.25])
  assert rates.sum() == pytest.approx(len(masks))


def test_a_balanced_stream_draws_tasks_as_the_in_memory_sampler_does(tiny_parquet, tmp_path):
  _, prepared = _prepared(tiny_parquet, str(tmp_path))
  epoch_stream = stream.EpochStream(prepared.train, NAMES, batch_size=16, seed=0,
                                    balanced=True, chunk_steps=4, window=2)
  drawn = np.concatenate([_epoch_rows(epoch_stream, e)[0] for e in range(1, 41)])
  masks = np.stack([prepared.train.masks[n] for n in NAMES], axis=1)
  # The in-memory sampler: a task uniformly, then one of its rows; P(a row labelled for t).
  counts = masks.sum(axis=0)
  expected = np.mean([(masks[masks[:, k] > 0]).mean(axis=0) for k in range(3)], axis=0)
  assert counts[1] / len(masks) < 0.3 < expected[1]  # hardness is rare and over-drawn
  np.testing.assert_allclose(drawn[:, -3:].mean(axis=0), expected, atol=0.03)


def _run_config(path, workdir=None, budget=0.0, **train):
  return config_lib.RunConfig(
      data=config_lib.DataConfig(path=path, memory_budget_gb=budget),
      train=config_lib.TrainConfig(**{"epochs": 2, "batch_size": 32, "patience": 10,
                                        "grad_stats": False, **train}),
      workdir=None if workdir is None else str(workdir))


def test_full_batch_training_streamed_equals_in_memory(tiny_parquet):
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  # One batch of every training row per epoch: the order cannot matter.
  streamed = experiment.train_and_evaluate(_run_config(tiny_parquet, batch_size=100_000))
  in_memory = experiment.train_and_evaluate(_run_config(tiny_parquet, budget=1.0,
                                                        batch_size=100_000))
  for task, metrics in in_memory["test"].items():
    for name, value in metrics.items():
      assert streamed["test"][task][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_a_streamed_run_resumes_to_the_uninterrupted_one(tiny_parquet, tmp_path):
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  # Several chunks per epoch; without XLA, which the full-batch test above streams through.
  kwargs = dict(epochs=3, steps_per_call=4, jit_compile=False)
  straight = experiment.train_and_evaluate(_run_config(tiny_parquet, tmp_path / "a", **kwargs))
  with pytest.raises(helpers.Interrupted):
    experiment.train_and_evaluate(_run_config(tiny_parquet, tmp_path / "b", **kwargs),
                                  on_epoch_end=helpers.stop_after(2))
  resumed = experiment.train_and_evaluate(config_lib.RunConfig(
      **{**_run_config(tiny_parquet, tmp_path / "b", **kwargs).__dict__, "resume": True}))
  assert resumed["test"] == straight["test"] and resumed["epochs_run"] == 3
  assert not (tmp_path / "b" / experiment.STREAM_DIR).exists()
  assert not (tmp_path / "b" / "domain.npz").exists()  # it would hold every training row


def test_which_tables_stream(tiny_parquet, tmp_path):
  csv = tmp_path / "tiny.csv"
  helpers.tiny_frame(per_task=60).to_csv(csv, index=False)
  assert streaming.streams(config_lib.DataConfig(path=tiny_parquet, memory_budget_gb=0))
  assert not streaming.streams(config_lib.DataConfig(path=tiny_parquet, memory_budget_gb=1))
  assert not streaming.streams(config_lib.DataConfig(path=str(csv), memory_budget_gb=0))
  assert not streaming.streams(config_lib.DataConfig(memory_budget_gb=0))  # embedded default
  with pytest.raises(ValueError, match="--memory_budget_gb=-1"):
    config_lib.DataConfig(memory_budget_gb=-1)


@pytest.mark.parametrize("change, named", [
    (dict(data=dict(row_filter="hardness > 0")), "--row_filter"),
    (dict(data=dict(cv=(5, 0))), "--cv or --folds"),
    (dict(baseline_gbm=True), "--baseline_gbm"),
    (dict(train=dict(arch="independent")), "--arch=independent"),
])
def test_settings_that_need_the_whole_table_are_refused(tiny_parquet, change, named):
  parts = {"data": dict(path=tiny_parquet, memory_budget_gb=0), "train": {}}
  for key, value in change.items():
    if isinstance(value, dict):
      parts[key].update(value)
    else:
      parts[key] = value
  cfg = config_lib.RunConfig(data=config_lib.DataConfig(**parts.pop("data")),
                             train=config_lib.TrainConfig(**parts.pop("train")), **parts)
  with pytest.raises(ValueError, match=rf"it streams, and {named} needs the whole table"):
    streaming.check_supported(cfg)


def test_parts_write_a_scaled_set_one_part_at_a_time(tmp_path):
  path = tmp_path / "x2.parquet"
  synthetic.write_parts(path, seed=0, parts=2)
  frame = tables.read_table(str(path))
  assert len(frame) == 2 * synthetic.NUM_ROWS
  first = frame.iloc[:synthetic.NUM_ROWS].reset_index(drop=True)
  assert first.equals(synthetic.generate(0))
  assert not frame.iloc[synthetic.NUM_ROWS:].reset_index(drop=True).equals(first)
