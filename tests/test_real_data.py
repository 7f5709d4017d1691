"""Real data shipped with the package: the sets load, validate and split by composition, under
their short names, and a model of custom columns trains on one."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kmtl.data import featurize
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import shipped
from kmtl.data import splits
from kmtl.data import tables
from kmtl.data import validation

MPEA_TASKS = schema.parse_tasks(shipped.SETS["mpea"].tasks)


@pytest.fixture(scope="module")
def mpea():
  return io.load("mpea", MPEA_TASKS, elements="auto")


def test_shipped_sets_hold_the_documented_label_counts():
  """The documented label counts of the shipped sets, which the copies must keep."""
  frame = tables.read_table("mpea")
  counts = frame[[t.name for t in MPEA_TASKS]].notna().sum().to_dict()
  assert len(frame) == 1545 and counts == {
      "hardness_hv": 530, "yield_strength_mpa": 1067, "ultimate_tensile_strength_mpa": 539,
      "elongation_pct": 619, "phase_class": 1402}
  assert (frame["hardness_hv"].notna() & frame["yield_strength_mpa"].notna()).sum() == 232
  glass = tables.read_table("glass_cerebral")
  assert len(glass) == 6639 and glass["amorphous"].notna().sum() == 6321
  assert glass[["tg_k", "tx_k", "tl_k", "dmax_mm"]].notna().all(axis=1).sum() == 810
  bulk = glass["gfa_class"] == "BMG"
  assert glass["dmax_bmg_mm"].notna().sum() == 833 and glass["dmax_bmg_mm"].notna().le(bulk).all()
  assert glass["dmax_bmg_mm"].equals(glass["dmax_mm"].where(bulk))


def test_mpea_loads_with_auto_vocabulary_and_splits_by_composition(mpea):
  frame = tables.read_table("mpea")
  seen = sorted({el for f in frame["formula"] for el in featurize.parse_composition(f)})
  assert sorted(mpea.elements) == seen and len(seen) == 30
  assert mpea.features.shape[1] == len(seen) + 6
  prepared = splits.prepare(mpea, 0.1, 0.2, seed=0, group_split=True)
  groups = mpea.groups()
  for split_id in (splits.VAL, splits.TEST):
    assert not set(groups[prepared.row_split == split_id]) & set(
        groups[prepared.row_split == splits.TRAIN])


def test_malformed_formula_in_a_real_set_is_row_numbered(tmp_path):
  bad = tables.read_table("mpea")
  bad.loc[7, "formula"] = "Fe2(Ni"
  path = tmp_path / "bad.csv"
  bad.to_csv(path, index=False)
  with pytest.raises(io.DataError, match=r"row 8, column 'formula': unbalanced"):
    io.load(path, MPEA_TASKS, elements="auto")


def test_row_filter_keeps_room_temperature_hardness():
  tasks = schema.parse_tasks("hardness_hv:regression")
  query = "test_temperature_c.isna() or test_temperature_c == 25"
  data = io.load("mpea", tasks, elements="auto", row_filter=query)
  assert data.num_rows == 501  # 530 hardness rows, 29 of them tested above room temperature
  with pytest.raises(io.DataError, match="--row_filter 'no_such_column > 1' cannot be applied"):
    io.load("mpea", tasks, elements="auto", row_filter="no_such_column > 1")


def test_a_model_of_custom_columns_trains_on_a_shipped_set():
  from kmtl import config as config_lib  # pylint: disable=g-import-not-at-top
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  tasks = schema.parse_tasks("yield_strength_mpa:regression:log")
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path="mpea", tasks=tasks,
                                 feature_set=("density_calc_g_cm3", "n_elements")),
      train=config_lib.TrainConfig(arch="independent", epochs=3, summaries=False,
                                   jit_compile=False),
      baseline_gbm=True))
  assert result["test"]["yield_strength_mpa"]["count"] > 100
  assert np.isfinite(result["test"]["yield_strength_mpa"]["r2"])
  assert np.isfinite(result["gbm_test"]["yield_strength_mpa"]["r2_log"])


def test_the_datasets_command_lists_each_set_with_counts_and_licence():
  result = subprocess.run([sys.executable, "-m", "kmtl.datasets"], capture_output=True,
                          text=True, check=True)
  assert "mpea  (1,545 rows, licence Apache-2.0)" in result.stdout
  assert "glass_cerebral  (6,639 rows, licence BSD-3-Clause)" in result.stdout
  assert "hardness_hv 530, yield_strength_mpa 1,067" in result.stdout


def test_descriptor_feature_sets():
  frame = pd.DataFrame({"composition": ["Fe70Ni30", "CoCrFeMnNi", "Cu50Zr50Al10"],
                        "hardness": [150.0, 160.0, 500.0]})
  tasks = schema.parse_tasks("hardness")
  data = io.load(frame, tasks, feature_set="descriptors")
  assert data.feature_names == schema.DESCRIPTOR_NAMES and data.features.shape == (3, 6)
  full = io.load(frame, tasks, elements="auto")
  np.testing.assert_allclose(data.features, full.features[:, -6:])
  assert validation.feature_set_of(data.feature_names) == ("descriptors", ())
  assert validation.feature_set_of(full.feature_names) == ("composition", full.elements)
  with pytest.raises(io.DataError, match="missing feature column"):
    io.load(frame, tasks, feature_set=("vec", "thickness_nm"))


def test_a_model_refuses_data_of_another_feature_set(tmp_path):
  path = tmp_path / "descriptors_only.csv"
  frame = pd.DataFrame({name: [1.0, 2.0] for name in schema.DESCRIPTOR_NAMES})
  frame.to_csv(path, index=False)
  feature_set, elements = validation.feature_set_of(schema.feature_names())
  with pytest.raises(io.DataError, match=r"missing feature column\(s\) 'Al'"):
    io.load_features(path, elements, feature_set)
  table = io.load_features(path, (), "descriptors")
  assert table.features.shape == (2, 6)
