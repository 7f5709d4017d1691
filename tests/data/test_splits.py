"""Splits: disjoint, covering, stratified, seeded; scalers see training rows only."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import repeats
from kmtl.data import scaling
from kmtl.data import schema
from kmtl.data import splits
from kmtl.data import synthetic


def _labels(seed=0, n=2000):
  rng = np.random.default_rng(seed)
  res = np.where(rng.random(n) < 0.95, rng.lognormal(4, 0.5, n), np.nan)
  hard = np.where(rng.random(n) < 0.1, rng.normal(500, 100, n), np.nan)
  afa = np.where(rng.random(n) < 0.1, (rng.random(n) < 0.3).astype(float), np.nan)
  both_missing = np.isnan(res) & np.isnan(hard) & np.isnan(afa)
  res[both_missing] = 50.0
  return {"resistivity": res, "hardness": hard, "amorphous": afa}


def test_every_labelled_row_in_exactly_one_split():
  labels = _labels()
  split = splits.assign_splits(labels, schema.DEFAULT_TASKS, 0.1, 0.2, seed=0)
  assert set(np.unique(split)) == {splits.TRAIN, splits.VAL, splits.TEST}
  assert (split != splits.UNASSIGNED).all()


@pytest.mark.parametrize("task", ["resistivity", "hardness", "amorphous"])
def test_each_task_gets_its_shares(task):
  labels = _labels()
  split = splits.assign_splits(labels, schema.DEFAULT_TASKS, 0.1, 0.2, seed=0)
  labelled = ~np.isnan(labels[task])
  n = labelled.sum()
  assert abs(np.sum(split[labelled] == splits.TEST) - 0.2 * n) <= max(2, 0.02 * n)
  assert abs(np.sum(split[labelled] == splits.VAL) - 0.1 * n) <= max(2, 0.02 * n)


def test_binary_task_is_stratified():
  labels = _labels()
  split = splits.assign_splits(labels, schema.DEFAULT_TASKS, 0.1, 0.2, seed=0)
  y = labels["amorphous"]
  rates = [np.nanmean(y[split == s]) for s in (splits.TRAIN, splits.VAL, splits.TEST)]
  assert max(rates) - min(rates) < 0.05


def test_seeded_and_independent_of_anything_else():
  labels = _labels()
  a = splits.assign_splits(labels, schema.DEFAULT_TASKS, 0.1, 0.2, seed=4)
  b = splits.assign_splits(labels, schema.DEFAULT_TASKS, 0.1, 0.2, seed=4)
  c = splits.assign_splits(labels, schema.DEFAULT_TASKS, 0.1, 0.2, seed=5)
  np.testing.assert_array_equal(a, b)
  assert (a != c).any()


def test_scalers_fit_on_training_rows_only():
  data = io.load(synthetic.generate(seed=0).iloc[:3000])
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  train = prepared.row_split == splits.TRAIN
  np.testing.assert_allclose(prepared.feature_scaler.mean_, data.features[train].mean(axis=0),
                             rtol=1e-4, atol=1e-6)
  hard = data.labels["hardness"]
  scaler = prepared.target_scalers["hardness"]
  assert scaler.mean == pytest.approx(np.mean(hard[train & ~np.isnan(hard)]))
  rho = data.labels["resistivity"]
  assert prepared.target_scalers["resistivity"].mean == pytest.approx(
      np.mean(np.log(rho[train & ~np.isnan(rho)])))
  # Changing every test row's features and labels leaves the scalers as they were.
  features = data.features.copy()
  features[prepared.row_split == splits.TEST] *= 3.0
  labels = {k: np.where(prepared.row_split == splits.TEST, v * 3.0, v)
            if k != "amorphous" else v for k, v in data.labels.items()}
  changed = splits.prepare(io.AlloyData(features, data.feature_names, labels, data.tasks,
                                        data.elements, data.row_numbers), 0.1, 0.2, seed=0)
  np.testing.assert_array_equal(changed.row_split, prepared.row_split)
  np.testing.assert_allclose(changed.feature_scaler.mean_, prepared.feature_scaler.mean_)
  assert changed.target_scalers["hardness"].mean == scaler.mean


def test_a_rare_element_is_scaled_by_at_least_the_floor():
  """A trace of Fe in one training alloy would make Fe's spread ~1e-5; the floor keeps a test
  alloy with 30 at.% Fe a few standard deviations out, and leaves common elements alone."""
  data = io.load(synthetic.generate(seed=0).iloc[:3000])
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  train = prepared.row_split == splits.TRAIN
  features = data.features.copy()
  fe = data.feature_names.index("Fe")
  features[:, fe] = 0.0
  features[np.flatnonzero(train)[0], fe] = 0.001
  features[np.flatnonzero(prepared.row_split == splits.TEST)[0], fe] = 0.3
  rare = splits.prepare(dataclasses.replace(data, features=features), 0.1, 0.2, seed=0)
  assert rare.feature_scaler.scale_[fe] == scaling.SHARE_SCALE_FLOOR
  assert np.abs(rare.test.features[:, fe]).max() == pytest.approx(0.3 / 0.05, rel=1e-3)
  np.testing.assert_allclose(prepared.feature_scaler.scale_, data.features[train].std(axis=0),
                             rtol=1e-4)  # every reference column's spread is above the floor


def test_target_round_trip_and_missing_labels():
  data = io.load(synthetic.generate(seed=0).iloc[:3000])
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  for task in data.tasks:
    scaler = prepared.target_scalers[task.name]
    y = data.labels[task.name][prepared.row_split == splits.TEST]
    y = y[~np.isnan(y)]
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(y)), y, rtol=1e-9)
  test = prepared.test
  hard_rows = data.labels["hardness"][prepared.row_split == splits.TEST]
  np.testing.assert_array_equal(test.masks["hardness"], ~np.isnan(hard_rows))
  assert (test.labels["hardness"][np.isnan(hard_rows)] == 0).all()


def _repeated_table():
  """Synthetic alloys where many compositions are measured two to four times."""
  frame = synthetic.generate(seed=0).iloc[:400]
  rng = np.random.default_rng(1)
  repeats = frame.iloc[rng.integers(0, 400, 300)].copy()
  repeats["resistivity"] *= rng.uniform(0.9, 1.1, 300)
  return io.load(pd.concat([frame, repeats], ignore_index=True))


def test_grouped_split_keeps_each_composition_in_one_split():
  data = _repeated_table()
  groups = data.groups()
  assert len(np.unique(groups)) < data.num_rows
  split = splits.assign_grouped_splits(data.labels, data.tasks, groups, 0.1, 0.2, seed=0)
  for g in np.unique(groups):
    assert len(set(split[groups == g])) == 1
  assert (split != splits.UNASSIGNED).all()
  ungrouped = splits.assign_splits(data.labels, data.tasks, 0.1, 0.2, seed=0)
  leaks = sum(len(set(ungrouped[groups == g])) > 1 for g in np.unique(groups))
  assert leaks > 0  # without grouping, repeated alloys do straddle splits


def test_grouping_singletons_changes_nothing():
  labels = _labels()
  a = splits.assign_splits(labels, schema.DEFAULT_TASKS, 0.1, 0.2, seed=3)
  b = splits.assign_grouped_splits(labels, schema.DEFAULT_TASKS, np.arange(len(a)), 0.1, 0.2,
                                   seed=3)
  np.testing.assert_array_equal(a, b)


def test_average_repeats():
  data = _repeated_table()
  averaged = repeats.average_repeats(data)
  groups = data.groups()
  assert averaged.num_rows == len(np.unique(groups))
  g = np.bincount(groups).argmax()  # the most repeated composition
  first = np.flatnonzero(groups == g)[0]
  row = list(averaged.row_numbers).index(data.row_numbers[first])
  assert averaged.labels["resistivity"][row] == pytest.approx(
      np.nanmean(data.labels["resistivity"][groups == g]))


def _small(hardness, amorphous, rows=12):
  frame = pd.DataFrame({"composition": [f"Fe{50 + i}Ni{50 - i}" for i in range(rows)],
                        "hardness": hardness, "amorphous": amorphous})
  tasks = (schema.TaskSpec("hardness", schema.REGRESSION),
           schema.TaskSpec("amorphous", schema.BINARY))
  return io.load(frame, tasks, elements=("Fe", "Ni"))


@pytest.mark.parametrize("hardness, amorphous, message", [
    ([float(i) for i in range(12)], [0.0] * 12,
     "binary task 'amorphous' has 12 labels, all 0: it needs both classes"),
    ([300.0] * 12, [0.0, 1.0] * 6,
     "regression task 'hardness' has 12 labels, all 300: a constant target"),
])
def test_degenerate_tasks_are_one_line_errors(hardness, amorphous, message):
  with pytest.raises(io.DataError, match=message):
    splits.prepare(_small(hardness, amorphous), 0.1, 0.2, seed=0)


def test_too_few_labels_for_the_split_names_the_counts():
  hardness = [100.0, 200.0] + [np.nan] * 3
  with pytest.raises(io.DataError, match=r"task 'hardness' has 2 labelled rows, split "
                                         r"\d train / \d validation / \d test"):
    splits.prepare(_small(hardness, [0.0, 1.0, 0.0, 1.0, 0.0], rows=5), 0.1, 0.2, seed=0)


def test_k_fold_splits_hold_out_each_composition_once():
  data = io.load(synthetic.generate(seed=0).iloc[:3000])
  folds = splits.fold_of_rows(data, 4)
  groups = data.groups()
  assert all(len(set(folds[groups == g])) == 1 for g in np.unique(groups)[:200])
  assert np.bincount(folds).min() > 0.2 * data.num_rows
  tested = np.zeros(data.num_rows, int)
  for k in range(4):
    row_split = splits.row_splits(data, 0.1, 0.2, seed=k, group_split=True, cv=(4, k))
    np.testing.assert_array_equal(row_split == splits.TEST, folds == k)
    assert not ((row_split == splits.VAL) & (folds == k)).any()
    assert set(np.unique(row_split)) == {splits.TRAIN, splits.VAL, splits.TEST}
    tested += row_split == splits.TEST
  assert (tested == 1).all()
  # One fixed partition: the seed draws validation rows, never the folds.
  other = splits.row_splits(data, 0.1, 0.2, seed=9, group_split=True, cv=(4, 1))
  np.testing.assert_array_equal(other == splits.TEST, folds == 1)


def test_a_repeat_reshuffles_the_folds_and_tests_every_row_once_again():
  data = io.load(synthetic.generate(seed=0).iloc[:3000])
  first, second = splits.fold_of_rows(data, 3), splits.fold_of_rows(data, 3, repeat=1)
  groups = data.groups()
  assert all(len(set(second[groups == g])) == 1 for g in np.unique(groups)[:200])
  # Another partition: about a third of the rows keep their fold by chance, not all.
  assert 0.2 < np.mean(first == second) < 0.5
  tested = np.zeros(data.num_rows, int)
  for k in range(3):
    row_split = splits.row_splits(data, 0.1, 0.2, seed=3 + k, group_split=True, cv=(3, k, 1))
    np.testing.assert_array_equal(row_split == splits.TEST, second == k)
    tested += row_split == splits.TEST
  assert (tested == 1).all()
  with pytest.raises(ValueError, match="--cv needs 2 or more folds"):
    config_lib.DataConfig(cv=(3, 0, 0))
