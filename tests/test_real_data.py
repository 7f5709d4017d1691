"""The real multi-task table from ../shared/data loads, validates and splits by composition."""

import importlib.util
import pathlib

import numpy as np
import pandas as pd
import pytest

from kmtl.data import featurize
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits
from kmtl.data import validation

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



FILM_COLUMNS = ("atomic_size_mismatch_delta", "electronegativity_difference", "vec",
                "mixing_entropy_j_mol_k", "mixing_enthalpy_kj_mol", "homologous_temperature",
                "mean_atomic_radius_angstrom")


def test_descriptor_only_model_trains_on_the_film_set(shared_data, tmp_path):
  from kmtl import config as config_lib  # pylint: disable=g-import-not-at-top
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  film = pd.read_csv(shared_data / "thinfilm_resistivity_kim_lee.csv").iloc[:800]
  path = tmp_path / "film.csv"
  film.to_csv(path, index=False)
  tasks = schema.parse_tasks("resistivity_uohm_cm:regression:log")
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(path), tasks=tasks, feature_set=FILM_COLUMNS),
      train=config_lib.TrainConfig(arch="independent", epochs=3, summaries=False,
                                   jit_compile=False),
      baseline_gbm=True))
  assert result["test"]["resistivity_uohm_cm"]["r2"] > 0.0
  assert np.isfinite(result["gbm_test"]["resistivity_uohm_cm"]["r2_log"])


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


def test_row_filter_keeps_room_temperature_hardness(shared_data):
  tasks = schema.parse_tasks("hardness_hv:regression")
  query = "test_temperature_c.isna() or test_temperature_c == 25"
  data = io.load(shared_data / "mpea_hardness.csv", tasks, elements="auto", row_filter=query)
  assert data.num_rows == 501  # the README of shared/data counts 501 room-temperature rows
  with pytest.raises(io.DataError, match="--row_filter 'no_such_column > 1' cannot be applied"):
    io.load(shared_data / "mpea_hardness.csv", tasks, elements="auto",
            row_filter="no_such_column > 1")
