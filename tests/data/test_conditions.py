"""Test conditions: parsing, validation, training-row vocabularies and their encoding, and
their place among the model's inputs."""

import numpy as np
import pandas as pd
import pytest

from kmtl.data import conditions
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits
from tests import helpers

SPECS = conditions.parse("test_temperature_c:numeric:25,test_type:categorical")


def test_parse_reads_kind_and_fill():
  assert SPECS == (conditions.ConditionSpec("test_temperature_c", "numeric", 25.0),
                   conditions.ConditionSpec("test_type", "categorical"))
  assert conditions.parse("") == () and conditions.parse(None) == ()
  assert conditions.parse("t_k") == (conditions.ConditionSpec("t_k"),)


@pytest.mark.parametrize("text, message", [
    ("t:ordinal", "Invalid kind 'ordinal' for condition 't'"),
    ("t:categorical:3", "for numeric conditions only"),
    ("t:numeric:warm", "fill value 'warm' of 't' is not a number"),
    ("t,t", "a column is named twice"),
    ("t:numeric:1:2", "expected name[:kind[:fill]]"),
])
def test_parse_errors_name_the_condition(text, message):
  with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
    conditions.parse(text)


def test_numeric_categories_read_the_same_with_or_without_a_gap():
  spec = conditions.parse("route:categorical")
  with_gap = conditions.values(pd.DataFrame({"route": [1.0, None, 2.0]}), spec, "a.csv")
  without = conditions.values(pd.DataFrame({"route": [1, 2]}), spec, "b.csv")
  assert list(with_gap["route"]) == ["1", "(none)", "2"] and list(without["route"]) == ["1", "2"]


def test_values_fill_numbers_and_give_empty_categories_their_own_name():
  frame = pd.DataFrame({"test_temperature_c": [25.0, None, 600.0],
                        "test_type": ["compression", None, " tension"]})
  values = conditions.values(frame, SPECS, "f.csv")
  np.testing.assert_array_equal(values["test_temperature_c"], [25.0, 25.0, 600.0])
  assert list(values["test_type"]) == ["compression", "(none)", "tension"]


@pytest.mark.parametrize("column, spec, message", [
    ([25.0, None], "test_temperature_c", r"row 2, column 'test_temperature_c': missing"),
    ([25.0, "hot"], "test_temperature_c", r"row 2, column 'test_temperature_c': not a number"),
    ([25.0, -300.0], "test_temperature_c", r"row 2, .*-300 is below absolute zero \(-273.15\)"),
    ([300.0, -1.0], "test_temperature_k", r"row 2, .*-1 is below absolute zero \(0\)"),
])
def test_bad_numeric_conditions_name_row_and_column(column, spec, message):
  frame = pd.DataFrame({spec: column})
  with pytest.raises(io.DataError, match=message):
    conditions.values(frame, conditions.parse(spec), "f.csv")


def test_vocabulary_comes_from_training_rows_and_unseen_categories_encode_as_zeros():
  values = {"test_temperature_c": np.array([20.0, 30.0, 40.0, 50.0]),
            "test_type": np.array(["tension", "compression", "tension", "bending"], object)}
  train = np.array([True, True, True, False])
  encoders = conditions.encoders(SPECS, values, train)
  assert encoders[1]["vocabulary"] == ["compression", "tension"]
  encoded, names = conditions.encode(encoders, values, 4)
  assert names == ["test_temperature_c", "test_type=compression", "test_type=tension"]
  np.testing.assert_array_equal(encoded, [[20, 0, 1], [30, 1, 0], [40, 0, 1], [50, 0, 0]])
  with pytest.raises(io.DataError, match=r"row 4, column 'test_type': category 'bending' was "
                                         r"not in the model's training data"):
    conditions.check_known(encoders, values, "new.csv")


def test_conditions_follow_the_features_into_the_scaled_model_inputs():
  frame = helpers.tiny_frame(per_task=40)
  frame["test_temperature_c"] = np.where(np.arange(len(frame)) % 3 == 0, np.nan,
                                         np.arange(len(frame)) * 5.0)
  frame["test_type"] = np.where(np.arange(len(frame)) % 2 == 0, "tension", "compression")
  data = io.load(frame, condition_specs=SPECS)
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  assert prepared.input_names == schema.feature_names() + (
      "test_temperature_c", "test_type=compression", "test_type=tension")
  train = prepared.row_split == splits.TRAIN
  temperature = np.where(np.isnan(frame["test_temperature_c"]), 25.0,
                         frame["test_temperature_c"])[data.row_numbers - 1][train]
  expected = (temperature - temperature.mean()) / temperature.std()
  np.testing.assert_allclose(prepared.train.features[:, 21], expected, rtol=1e-5, atol=1e-5)
  tension = (frame["test_type"].to_numpy()[data.row_numbers - 1][train] == "tension")
  np.testing.assert_array_equal(prepared.train.features[:, 23] > 0, tension)
  assert data.fingerprint() != io.load(frame).fingerprint()
