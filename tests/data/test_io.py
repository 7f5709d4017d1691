"""Loading and validation: every bad input gets a one-line error naming file, row and column."""

import subprocess
import sys

from absl.testing import flagsaver
import numpy as np
import pandas as pd
import pytest

from kmtl import run
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import tables

TASKS = schema.DEFAULT_TASKS


def _good_frame():
  frame = pd.DataFrame({"composition": ["Fe70Ni30", "CoCrFeMnNi", "Cu50Zr50", "Al0.5CoCrFeNi"],
                        "resistivity": [30.0, 100.0, np.nan, 120.0],
                        "hardness": [np.nan, 150.0, 500.0, np.nan],
                        "amorphous": [np.nan, np.nan, 1, 0]})
  return frame


def _feature_frame():
  from kmtl.data import featurize  # pylint: disable=g-import-not-at-top
  features = featurize.featurize(["Fe70Ni30", "CoCrFeMnNi", "Cu50Zr50"])
  frame = pd.DataFrame(features, columns=schema.feature_names())
  frame["resistivity"] = [30.0, 100.0, 20.0]
  frame["hardness"] = [np.nan, 150.0, np.nan]
  frame["amorphous"] = [np.nan, np.nan, 1.0]
  return frame


def test_loads_compositions_and_masks(tmp_path):
  path = tmp_path / "alloys.csv"
  _good_frame().to_csv(path, index=False)
  data = io.load(path)
  assert data.features.shape == (4, 21)
  assert data.feature_names == schema.feature_names()
  masks = data.masks()
  np.testing.assert_array_equal(masks["resistivity"], [True, True, False, True])
  np.testing.assert_array_equal(masks["amorphous"], [False, False, True, True])


def test_feature_columns_and_parquet_agree(tmp_path):
  frame = _feature_frame()
  frame.to_parquet(tmp_path / "a.parquet")
  from_parquet = io.load(tmp_path / "a.parquet")
  from_compositions = io.load(pd.DataFrame({
      "composition": ["Fe70Ni30", "CoCrFeMnNi", "Cu50Zr50"], "resistivity": [30.0, 100.0, 20.0],
      "hardness": [np.nan, 150.0, np.nan], "amorphous": [np.nan, np.nan, 1.0]}))
  np.testing.assert_allclose(from_parquet.features, from_compositions.features, rtol=1e-6)


def _bad_cases():
  """(name, how to write the file, expected message fragment)."""
  def edit(fn, base=_good_frame):
    def write(path):
      frame = base()
      fn(frame)
      frame.to_csv(path, index=False)
    return write

  def set_cell(column, row, value, base=_good_frame):
    def fn(frame):
      frame[column] = frame[column].astype(object)
      frame.loc[row, column] = value
    return edit(fn, base)

  return [
      ("empty file", lambda p: p.write_text(""), "the file is empty"),
      ("header only", lambda p: p.write_text("composition,resistivity,hardness,amorphous\n"),
       "no data rows"),
      ("missing task column", edit(lambda f: f.drop(columns=["hardness"], inplace=True)),
       "missing task target column(s) 'hardness'"),
      ("typo in task column", edit(lambda f: f.rename(columns={"hardness": "hardnes"},
                                                      inplace=True)),
       "did you mean 'hardnes' -> 'hardness'"),
      ("no features", edit(lambda f: f.drop(columns=["composition"], inplace=True)),
       "missing feature column(s)"),
      ("typo in feature column", edit(lambda f: f.rename(columns={"vec": "vce"}, inplace=True),
                                      _feature_frame),
       "did you mean 'vce' -> 'vec'"),
      ("bad formula", set_cell("composition", 2, "Cu50Qq50"), "row 3, column 'composition'"),
      ("non-numeric feature", set_cell("vec", 1, "high", _feature_frame),
       "row 2, column 'vec': not a number"),
      ("NaN feature", set_cell("Fe", 0, np.nan, _feature_frame),
       "row 1, column 'Fe': missing or non-finite"),
      ("inf feature", set_cell("melting_point_k", 2, np.inf, _feature_frame),
       "row 3, column 'melting_point_k': missing or non-finite"),
      ("negative fraction", set_cell("Cu", 2, -0.5, _feature_frame),
       "row 3, column 'Cu': negative elemental fraction"),
      ("fractions off 1", set_cell("Fe", 0, 0.9, _feature_frame),
       "row 1: elemental fractions sum to 1.2"),
      ("negative resistivity", set_cell("resistivity", 1, -3.0),
       "row 2, column 'resistivity': negative resistivity"),
      ("negative hardness", set_cell("hardness", 2, -1.0),
       "row 3, column 'hardness': negative hardness"),
      ("zero resistivity under log", set_cell("resistivity", 0, 0.0),
       "row 1, column 'resistivity': resistivity 0 must be > 0"),
      ("binary label 2", set_cell("amorphous", 3, 2),
       "row 4, column 'amorphous': binary label 2 is not 0 or 1"),
      ("text label", set_cell("hardness", 1, "hard"), "row 2, column 'hardness': not a number"),
      ("VEC of 1e30", set_cell("vec", 1, 1e30, _feature_frame),
       "row 2, column 'vec': 1e+30 is outside its physical range [0, 18]"),
      ("negative melting point", set_cell("melting_point_k", 0, -1800.0, _feature_frame),
       "row 1, column 'melting_point_k': -1800 is outside its physical range [0, 4100]"),
      ("entropy above R ln 118", set_cell("mixing_entropy_j_mol_k", 2, 45.0, _feature_frame),
       "row 3, column 'mixing_entropy_j_mol_k': 45 is outside"),
      ("hardness of 1e30", set_cell("hardness", 1, 1e30),
       "row 2, column 'hardness': hardness 1e+30 HV is above the physical limit 15000"),
      ("label beyond float32", set_cell("resistivity", 0, 1e300),
       "row 1, column 'resistivity': label 1e+300 does not fit in float32"),
      ("feature beyond float32", set_cell("Fe", 0, 1e300, _feature_frame),
       "row 1, column 'Fe': value 1e+300 does not fit in float32"),
  ]


@pytest.mark.parametrize("name, write, message", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input_errors(tmp_path, name, write, message):
  del name
  path = tmp_path / "bad.csv"
  write(path)
  with pytest.raises(io.DataError) as error:
    io.load(path)
  text = str(error.value)
  assert "\n" not in text
  assert text.startswith(str(path))
  assert message in text


@pytest.mark.parametrize("name, write, message", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_run_rejects_bad_input(tmp_path, capsys, name, write, message):
  del name
  path = tmp_path / "bad.csv"
  write(path)
  with flagsaver.flagsaver(data=str(path), workdir=str(tmp_path / "work")):
    with pytest.raises(SystemExit) as exit_info:
      run.main(["kmtl.run"])
  assert exit_info.value.code != 0 and message in str(exit_info.value.code)
  assert not (tmp_path / "work").exists()


def test_run_exit_status_and_one_line_in_a_fresh_process(tmp_path):
  path = tmp_path / "bad.csv"
  frame = _good_frame()
  frame.loc[1, "resistivity"] = -3.0
  frame.to_csv(path, index=False)
  result = subprocess.run([sys.executable, "-m", "kmtl.run", f"--data={path}"],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 1
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert lines == [f"kmtl.run: error: {path}: row 2, column 'resistivity': "
                   "negative resistivity -3"]


def test_missing_file_and_unknown_type(tmp_path):
  with pytest.raises(io.DataError, match="no such file"):
    io.load(tmp_path / "nope.csv")
  (tmp_path / "a.xlsx").write_text("x")
  with pytest.raises(io.DataError, match="unknown file type '.xlsx'"):
    io.load(tmp_path / "a.xlsx")


def test_unlabelled_rows_dropped_with_count(caplog):
  frame = _good_frame()
  frame.loc[0, "resistivity"] = np.nan
  data = io.load(frame)
  assert data.num_rows == 3
  np.testing.assert_array_equal(data.row_numbers, [2, 3, 4])
  assert "dropped 1 of 4 rows with no label" in caplog.text


def test_duplicates_counted_kept_or_dropped(caplog):
  frame = pd.concat([_good_frame(), _good_frame().iloc[[1, 1]]], ignore_index=True)
  assert io.load(frame, duplicates="keep").num_rows == 6
  assert "2 rows duplicate an earlier row; kept" in caplog.text
  dropped = io.load(frame, duplicates="drop")
  assert dropped.num_rows == 4
  np.testing.assert_array_equal(dropped.row_numbers, [1, 2, 3, 4])


def test_capitalisation_slips_are_warned_with_their_rows(caplog):
  frame = pd.DataFrame({"composition": ["AlCoCrCuFeNI", "CoCrFeNi", "FeCOCr"],
                        "hardness": [500.0, 300.0, 400.0]})
  tasks = (schema.TaskSpec("hardness", schema.REGRESSION),)
  # The warnings come first; then nitrogen and iodine, which have no mixing enthalpy, stop it.
  with pytest.raises(io.DataError, match="no Takeuchi-Inoue mixing enthalpy for the pair N-I"):
    io.load(frame, tasks, elements="auto")
  assert "row 1, column 'composition': 'AlCoCrCuFeNI' reads NI as N and I; did you mean Ni?" \
      in caplog.text
  assert "row 3" in caplog.text and "row 2" not in caplog.text


def test_bracket_convention_reaches_the_features():
  frame = pd.DataFrame({"composition": ["(Cu50Zr50)90Al10"], "hardness": [500.0]})
  tasks = (schema.TaskSpec("hardness", schema.REGRESSION),)
  elements = ("Cu", "Zr", "Al")
  alloy = io.load(frame, tasks, elements=elements).features[0, :3]
  chemical = io.load(frame, tasks, elements=elements, convention="chemical").features[0, :3]
  np.testing.assert_allclose(alloy, [0.45, 0.45, 0.10], rtol=1e-6)
  np.testing.assert_allclose(chemical, np.array([4500, 4500, 10]) / 9010, rtol=1e-6)


def test_a_parquet_column_of_dates_is_not_read_as_numbers(tmp_path):
  frame = _good_frame()
  frame["hardness"] = pd.to_datetime(["2020-01-01", None, "2020-01-03", None])
  frame.to_parquet(tmp_path / "dates.parquet")
  with pytest.raises(io.DataError, match="column 'hardness' holds datetime64"):
    io.load(tmp_path / "dates.parquet")


def test_did_you_mean_ignores_case_and_never_maps_known_columns():
  frame = _feature_frame().rename(columns={"vec": "VEC"})
  with pytest.raises(io.DataError, match=r"missing feature column\(s\) 'vec', 'composition' "
                                         r"\(did you mean 'VEC' -> 'vec'\?\)"):
    io.load(frame)
  frame = _feature_frame().drop(columns=["mixing_entropy_j_mol_k"])
  with pytest.raises(io.DataError, match="missing feature column") as raised:
    io.load(frame)
  assert "did you mean" not in str(raised.value)


def test_an_element_a_model_lacks_is_named_with_a_hint_prediction_can_follow(tmp_path):
  path = tmp_path / "new.csv"
  pd.DataFrame({"composition": ["Fe70Ni30", "Fe50Cu50"]}).to_csv(path, index=False)
  with pytest.raises(io.DataError, match="row 2: element 'Cu' is outside the element "
                                         "vocabulary") as raised:
    io.load_features(path, ("Fe", "Ni"))
  assert "cannot describe it" in str(raised.value) and "--elements" not in str(raised.value)


def test_an_input_column_named_row_is_refused_not_overwritten(tmp_path):
  """Predictions number their rows in a `row` column; an input column of that name would be
  silently replaced."""
  path = tmp_path / "new.csv"
  pd.DataFrame({"row": [7, 9], "composition": ["Fe70Ni30", "Fe50Ni50"]}).to_csv(path,
                                                                               index=False)
  with pytest.raises(io.DataError, match=r"new\.csv: column 'row' would be overwritten"):
    io.load_features(path, ("Fe", "Ni"))
  pd.DataFrame({"id": [7, 9], "composition": ["Fe70Ni30", "Fe50Ni50"]}).to_csv(path,
                                                                              index=False)
  np.testing.assert_array_equal(io.load_features(path, ("Fe", "Ni")).identifiers["id"], [7, 9])


def test_composition_and_fractions_must_agree():
  frame = _feature_frame()
  frame["composition"] = ["Fe70Ni30", "CoCrFeMnNi", "Cu50Zr50"]
  assert io.load(frame).num_rows == 3  # they agree
  frame.loc[1, "composition"] = "CoCrFeMn2Ni"
  with pytest.raises(io.DataError, match=r"row 2: the composition in column 'composition' "
                                         r"disagrees with the element fractions: Mn is 0.3333"):
    io.load(frame)
  frame.loc[1, "composition"] = "CoCrFeMnNiB0.001"  # within tolerance but B has no column
  with pytest.raises(io.DataError, match="element B has no fraction column"):
    io.load(frame)


def test_custom_task_list_and_auto_elements():
  frame = pd.DataFrame({"formula": ["Fe80B20", "Cu50Zr50", "Fe70Ni30"],
                        "yield_strength": [300.0, np.nan, 250.0]})
  tasks = schema.parse_tasks("yield_strength:regression:log:MPa")
  data = io.load(frame, tasks=tasks, elements="auto")
  assert data.elements == ("B", "Fe", "Ni", "Cu", "Zr")  # ordered by atomic number
  assert data.features.shape == (2, 5 + 6)
  assert list(data.labels) == ["yield_strength"]


def test_write_table_is_atomic(tmp_path, monkeypatch):
  path = tmp_path / "out.parquet"

  def explode(self, *args, **kwargs):
    raise RuntimeError("disk full")
  monkeypatch.setattr(pd.DataFrame, "to_parquet", explode)
  with pytest.raises(RuntimeError):
    tables.write_table(_good_frame(), path)
  assert list(tmp_path.iterdir()) == []
