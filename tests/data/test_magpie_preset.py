"""matminer's Magpie preset, computed natively: checked on three alloys by hand."""

import numpy as np
import pandas as pd
import pytest

from kmtl.data import magpie_preset
from kmtl.data import validation


def _features(composition):
  frame = pd.DataFrame({"composition": [composition]})
  features, _, _, names = validation.feature_matrix(frame, "magpie_preset", "auto", "t.csv")
  return dict(zip(names, features[0]))


def test_there_are_146_features_named_as_matminer_names_them():
  names = magpie_preset.feature_names()
  assert len(names) == 22 * 6 + 6 + 8 == 146
  assert names[:6] == tuple(f"MagpieData {s} Number" for s in
                            ("minimum", "maximum", "range", "mean", "avg_dev", "mode"))
  assert names[132:134] == ("0-norm", "2-norm") and names[-1] == "frac f valence electrons"


def test_equiatomic_fe_ni_by_hand():
  f = _features("Fe50Ni50")  # Fe: Z 26, 8 valence (2 s, 6 d); Ni: Z 28, 10 (2 s, 8 d)
  assert f["MagpieData minimum Number"] == 26 and f["MagpieData maximum Number"] == 28
  assert f["MagpieData range Number"] == 2 and f["MagpieData mean Number"] == 27
  assert f["MagpieData avg_dev Number"] == 1
  assert f["MagpieData mode Number"] == 26  # tied fractions: the smaller value
  assert f["MagpieData mean MeltingT"] == pytest.approx((1811 + 1728) / 2)
  assert f["0-norm"] == 2 and f["2-norm"] == pytest.approx(np.sqrt(0.5))
  assert f["10-norm"] == pytest.approx((2 * 0.5 ** 10) ** 0.1)
  assert f["avg s valence electrons"] == 2 and f["avg d valence electrons"] == 7
  assert f["frac d valence electrons"] == pytest.approx(7 / 9)


def test_al25_cu75_by_hand():
  f = _features("Al25Cu75")  # Al: Z 13, 3 valence (2 s, 1 p), row 3; Cu: Z 29, 11 (1 s, 10 d)
  assert f["MagpieData mean Number"] == pytest.approx(0.25 * 13 + 0.75 * 29)
  # |13 - 25| * 0.25 + |29 - 25| * 0.75
  assert f["MagpieData avg_dev Number"] == pytest.approx(6.0)
  assert f["MagpieData mode Number"] == 29  # the element with the largest fraction
  assert f["MagpieData mode Row"] == 4 and f["MagpieData minimum Row"] == 3
  assert f["avg s valence electrons"] == pytest.approx(0.25 * 2 + 0.75 * 1)
  assert f["avg p valence electrons"] == pytest.approx(0.25)
  assert f["frac p valence electrons"] == pytest.approx(0.25 / (0.25 * 3 + 0.75 * 11))
  assert f["3-norm"] == pytest.approx((0.25 ** 3 + 0.75 ** 3) ** (1 / 3))


def test_ternary_with_unequal_fractions_by_hand():
  f = _features("Ti2Zr1Hf1")  # Ti 22, Zr 40, Hf 72; fractions 0.5, 0.25, 0.25
  mean = 0.5 * 22 + 0.25 * 40 + 0.25 * 72
  assert f["MagpieData mean Number"] == pytest.approx(mean)
  assert f["MagpieData avg_dev Number"] == pytest.approx(
      0.5 * abs(22 - mean) + 0.25 * abs(40 - mean) + 0.25 * abs(72 - mean))
  assert f["MagpieData range Number"] == 50 and f["MagpieData mode Number"] == 22
  assert f["0-norm"] == 3 and f["MagpieData mean Column"] == 4


def test_an_element_without_a_property_is_one_line_naming_it():
  frame = pd.DataFrame({"composition": ["Fe90Ne10"]})  # neon has no Pauling electronegativity
  with pytest.raises(Exception, match=r"t.csv: row 1: element 'Ne' has no Electronegativity in matminer's Magpie"):
    validation.feature_matrix(frame, "magpie_preset", "auto", "t.csv")
