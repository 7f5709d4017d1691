"""Given folds (`--folds=FILE`): reading, alignment with the data, and the splits they make,
with tested compositions kept out of training and auxiliary never-tested rows."""

import numpy as np
import pandas as pd
import pytest

from kmtl.data import folds
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits
from kmtl.data import tables

ELEMENTS = ("Cu", "Fe", "Ni")
TASKS = schema.parse_tasks("strength:regression,tg:regression")


def _table():
  """Ten alloys; Fe50Ni50 twice (rows 2 and 7, in different folds); tg only on rows whose
  fold is -1 (an auxiliary set)."""
  return pd.DataFrame({
      "id": [f"a{i}" for i in range(10)],
      "composition": ["Cu", "Fe50Ni50", "Cu50Fe50", "Cu50Ni50", "Fe", "Ni", "Fe50Ni50",
                      "Cu20Fe80", "Cu80Ni20", "Fe20Ni80"],
      "strength": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, np.nan, np.nan, np.nan],
      "tg": [np.nan] * 7 + [100.0, 120.0, 140.0],
  })


def _fold_file(tmp_path, values, **columns):
  path = tmp_path / "folds.csv"
  pd.DataFrame({**columns, "fold": values}).to_csv(path, index=False)
  return str(path)


FOLDS = [0, 1, 0, 1, 0, 1, 0, -1, -1, -1]


def test_each_row_gets_its_fold_and_a_row_filter_keeps_them_aligned(tmp_path):
  path = _fold_file(tmp_path, FOLDS, id=[f"a{i}" for i in range(10)])
  data = io.load(_table(), TASKS, ELEMENTS, folds_path=path)
  np.testing.assert_array_equal(data.folds, FOLDS)
  filtered = io.load(_table(), TASKS, ELEMENTS, folds_path=path, row_filter="id != 'a0'")
  np.testing.assert_array_equal(filtered.folds, FOLDS[1:])


def test_the_held_out_fold_is_the_test_split_and_its_compositions_never_train(tmp_path):
  data = io.load(_table(), TASKS, ELEMENTS, folds_path=_fold_file(tmp_path, FOLDS))
  split = splits.row_splits(data, 0.34, 0.2, seed=0, group_split=True, cv=(2, 0))
  np.testing.assert_array_equal(np.flatnonzero(split == splits.TEST), [0, 2, 4, 6])
  # Row 1 repeats row 6's tested Fe50Ni50 from fold 1: left out of every split.
  assert split[1] == splits.UNASSIGNED
  assert set(split[[3, 5]]) <= {splits.TRAIN, splits.VAL}
  assert set(split[[7, 8, 9]]) <= {splits.TRAIN, splits.VAL}  # auxiliary rows train


def test_an_auxiliary_task_needs_no_test_rows_but_a_tested_task_needs_them_in_every_fold(
    tmp_path):
  data = io.load(_table(), TASKS, ELEMENTS, folds_path=_fold_file(tmp_path, FOLDS))
  splits.row_splits(data, 0.34, 0.2, seed=0, cv=(2, 1))
  lopsided = [0, 0, 0, 0, 0, 0, 0, -1, 1, -1]  # fold 1: one tg row and no strength row
  data = io.load(_table(), TASKS, ELEMENTS, folds_path=_fold_file(tmp_path, lopsided))
  with pytest.raises(tables.DataError,
                     match="fold 1 of the fold file has no row of task 'strength'"):
    splits.row_splits(data, 0.34, 0.2, seed=0, cv=(2, 1))


def test_another_row_count_or_a_disagreeing_id_is_refused(tmp_path):
  with pytest.raises(tables.DataError, match=r"9 rows, but <table> has 10; a fold file holds "):
    io.load(_table(), TASKS, ELEMENTS, folds_path=_fold_file(tmp_path, FOLDS[:9]))
  ids = [f"a{i}" for i in range(10)]
  ids[4] = "b4"
  with pytest.raises(tables.DataError, match=r"row 5, column 'id': 'b4' but <table> has 'a4'"):
    io.load(_table(), TASKS, ELEMENTS, folds_path=_fold_file(tmp_path, FOLDS, id=ids))


@pytest.mark.parametrize("values, fragment", [
    ([0, 1, 0.5], r"row 3, column 'fold': 0\.5 is not a fold number"),
    ([0, -2, 1], r"row 2, column 'fold': -2 is not a fold number"),
    ([0, 0, -1], "names 1 fold"),
])
def test_bad_fold_values_name_row_and_column(tmp_path, values, fragment):
  with pytest.raises(tables.DataError, match=fragment):
    folds.read(_fold_file(tmp_path, values))


def test_a_file_without_a_fold_column_is_refused(tmp_path):
  path = tmp_path / "f.csv"
  pd.DataFrame({"split": [0, 1]}).to_csv(path, index=False)
  with pytest.raises(tables.DataError, match="missing fold column"):
    folds.read(str(path))
