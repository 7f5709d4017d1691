"""The real multi-task table from ../shared/data loads, validates and splits by composition."""

import importlib.util
import pathlib

import pytest

from kmtl.data import featurize
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits

REAL_TASKS = schema.parse_tasks("hardness,glass:binary,resistivity_te:regression:log")


def _tool():
  path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "make_real_table.py"
  spec = importlib.util.spec_from_file_location("make_real_table", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def real_table(shared_data):
  return _tool().build(str(shared_data))


def test_real_table_counts_and_disjoint_labels(real_table):
  table, counts = real_table
  assert counts["mpea_hardness"] == (501, 501)
  assert counts["matbench_glass"][0] == 5680 and counts["matbench_glass"][1] > 5600
  labelled = table[["hardness", "glass", "resistivity_te"]].notna()
  assert (labelled.sum(axis=1) == 1).all()  # no alloy carries two labels


def test_real_table_loads_with_auto_vocabulary(real_table, tmp_path):
  table, _ = real_table
  path = tmp_path / "real.parquet"
  table.to_parquet(path)
  data = io.load(path, REAL_TASKS, elements="auto")
  seen = sorted({el for f in table["composition"] for el in featurize.parse_composition(f)})
  assert sorted(data.elements) == seen
  assert data.features.shape[1] == len(seen) + 6
  prepared = splits.prepare(data, 0.1, 0.2, seed=0, group_split=True)
  groups = data.groups()
  for split_id in (splits.VAL, splits.TEST):
    assert not set(groups[prepared.row_split == split_id]) & set(
        groups[prepared.row_split == splits.TRAIN])


def test_malformed_formula_in_the_real_table_is_row_numbered(real_table, tmp_path):
  table, _ = real_table
  bad = table.copy()
  bad.loc[7, "composition"] = "Fe2(Ni"
  path = tmp_path / "bad.csv"
  bad.to_csv(path, index=False)
  with pytest.raises(io.DataError, match=r"row 8, column 'composition': unbalanced"):
    io.load(path, REAL_TASKS, elements="auto")

