"""Magpie-style composition statistics, checked against values worked out by hand from the
element table."""

import numpy as np
import pandas as pd
import pytest

from kmtl.data import featurize
from kmtl.data import io
from kmtl.data import magpie
from kmtl.data import schema
from kmtl.data import validation

TASKS = schema.parse_tasks("hardness")


def test_statistics_of_a_binary_alloy_by_hand():
  table = featurize.element_table()
  stats, lacking = magpie.statistics(np.array([[0.25, 0.75]]), ("Al", "Ni"), table)
  assert lacking is None and stats.shape == (1, len(magpie.feature_names()))
  named = dict(zip(magpie.feature_names(), stats[0]))
  # Al is 13, Ni 28: mean 0.25 * 13 + 0.75 * 28 = 24.25; |13 - 24.25| = 11.25 and
  # |28 - 24.25| = 3.75, so the mean absolute deviation is 0.25 * 11.25 + 0.75 * 3.75 = 5.625.
  assert named["magpie_mean_atomic_number"] == pytest.approx(24.25)
  assert named["magpie_mad_atomic_number"] == pytest.approx(5.625)
  assert (named["magpie_min_atomic_number"], named["magpie_max_atomic_number"],
          named["magpie_range_atomic_number"]) == (13, 28, 15)
  t_al, t_ni = table.at["Al", "melting_point_k"], table.at["Ni", "melting_point_k"]
  assert named["magpie_mean_melting_point_k"] == pytest.approx(0.25 * t_al + 0.75 * t_ni)
  assert named["magpie_range_melting_point_k"] == pytest.approx(t_ni - t_al)


def test_an_absent_element_does_not_enter_min_and_max():
  table = featurize.element_table()
  stats, _ = magpie.statistics(np.array([[0.0, 1.0, 0.0]]), ("W", "Fe", "Li"), table)
  named = dict(zip(magpie.feature_names(), stats[0]))
  assert named["magpie_min_atomic_number"] == named["magpie_max_atomic_number"] == 26
  assert named["magpie_mad_atomic_number"] == 0.0


def test_a_present_element_without_the_property_is_named():
  table = featurize.element_table().copy()
  table.loc["Fe", "valence_electrons_vec"] = np.nan
  _, lacking = magpie.statistics(np.array([[0.5, 0.5], [1.0, 0.0]]), ("Ni", "Fe"), table)
  assert lacking == (0, "Fe", "valence_electrons_vec")


def test_feature_sets_load_and_are_recognised_from_their_names(tmp_path):
  frame = pd.DataFrame({"composition": ["Fe50Ni50", "CoCrFeMnNi", "Al10Ti90"],
                        "hardness": [150.0, 160.0, 300.0]})
  statistics_only = io.load(frame, TASKS, feature_set="magpie")
  assert statistics_only.feature_names == schema.DESCRIPTOR_NAMES + magpie.feature_names()
  both = io.load(frame, TASKS, elements="auto", feature_set="composition+magpie")
  np.testing.assert_allclose(both.features[:, -30:], statistics_only.features[:, 6:])
  assert validation.feature_set_of(statistics_only.feature_names) == ("magpie", ())
  assert validation.feature_set_of(both.feature_names) == ("composition+magpie", both.elements)
  # A statistics-only model describes elements it never saw: W here.
  path = tmp_path / "new.csv"
  pd.DataFrame({"composition": ["W50Mo50"]}).to_csv(path, index=False)
  table = io.load_features(path, (), "magpie")
  assert table.features.shape == (1, 36)
