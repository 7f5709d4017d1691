"""Featurizer: parsing and each descriptor against values worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from kmtl.data import featurize
from kmtl.data import schema
from kmtl.data import shipped
from kmtl.data import tables

R = featurize.GAS_CONSTANT
COLUMNS = {name: i for i, name in enumerate(schema.DESCRIPTOR_NAMES)}


def _describe(composition):
  elements = tuple(featurize.parse_composition(composition))
  return featurize.featurize([composition], elements)[0, len(elements):]


def test_parse_forms():
  assert featurize.parse_composition("Fe70Ni30") == pytest.approx({"Fe": 0.7, "Ni": 0.3})
  assert featurize.parse_composition("Cu50Zr50") == pytest.approx({"Cu": 0.5, "Zr": 0.5})
  al = featurize.parse_composition("Al0.5CoCrFeNi")
  assert al["Al"] == pytest.approx(0.5 / 4.5) and al["Ni"] == pytest.approx(1 / 4.5)
  # The chemical convention multiplies a group's content: Al(NiB)2 = Al1 Ni2 B2 ...
  assert featurize.parse_composition("Al(NiB)2", "chemical") == pytest.approx(
      {"Al": 0.2, "Ni": 0.4, "B": 0.4})
  # ... the alloy convention (the default) normalises it first: (NiB)2 = Ni1 B1.
  assert featurize.parse_composition("Al(NiB)2") == pytest.approx(
      {"Al": 1 / 3, "Ni": 1 / 3, "B": 1 / 3})
  assert featurize.parse_composition("Fe 0.5 Ni 0.5") == pytest.approx({"Fe": 0.5, "Ni": 0.5})


@pytest.mark.parametrize("formula, expected", [
    ("(Cu50Zr50)90Al10", {"Cu": 0.45, "Zr": 0.45, "Al": 0.10}),
    ("(FeNi)50Cr50", {"Fe": 0.25, "Ni": 0.25, "Cr": 0.50}),
    ("(Fe0.6Co0.4)0.75B0.2Si0.05", {"Fe": 0.45, "Co": 0.30, "B": 0.20, "Si": 0.05}),
    # Worked inside out: Fe .45 Co .3 B .2 Si .05 (sum 1) x 0.96, + Nb .04, x 96, + Cr 4.
    ("{[(Fe0.6Co0.4)0.75B0.2Si0.05]0.96Nb0.04}96Cr4",
     {"Fe": 0.41472, "Co": 0.27648, "B": 0.18432, "Si": 0.04608, "Nb": 0.0384, "Cr": 0.04}),
    ("(CoCrFeNi)Al", {"Co": 0.2, "Cr": 0.2, "Fe": 0.2, "Ni": 0.2, "Al": 0.2}),  # no amount
])
def test_bracket_groups_follow_the_alloy_convention(formula, expected):
  assert featurize.parse_composition(formula) == pytest.approx(expected)


def test_chemical_convention_multiplies_as_written():
  # (Cu50Zr50)90Al10 read chemically: Cu 4500, Zr 4500, Al 10.
  assert featurize.parse_composition("(Cu50Zr50)90Al10", "chemical") == pytest.approx(
      {"Cu": 4500 / 9010, "Zr": 4500 / 9010, "Al": 10 / 9010})
  with pytest.raises(ValueError, match="convention"):
    featurize.parse_composition("FeNi", "metallurgical")


@pytest.mark.parametrize("formula, slips", [
    ("AlCoCrCuFeNI", [("NI", "Ni")]), ("CoCrFeMnNi", []), ("BN", []), ("Fe80B20", []),
    ("FeCOCr", [("CO", "Co")])])
def test_likely_capitalisation_slips(formula, slips):
  assert featurize.likely_typos(formula) == slips


@pytest.mark.parametrize("bad, message", [
    ("", "empty"), ("Xx2Fe", "unknown element 'Xx'"), ("Fe(Ni", "unbalanced '('"),
    ("FeNi)", "unbalanced ')'"), ("3Fe", "number without an element"), ("Fe-Ni", "position 3"),
    ("Fe0Ni0", "no positive amount"), ("(FeNi]2", "'(' closed by ']' at position 6"),
    ("[Fe(Ni]", "'(' closed by ']'"), ("{FeNi", "unbalanced '{'"),
    ("()10Fe90", "an empty bracket group"), ("Fe1e308Ni1e308", "sum overflows")])
def test_parse_errors(bad, message):
  with pytest.raises(featurize.CompositionError, match=message.replace("(", r"\(")
                     .replace(")", r"\)")):
    featurize.parse_composition(bad)


def test_binary_fe70ni30_by_hand():
  # Table: r Fe 126, Ni 124 pm; chi 1.83, 1.91; VEC 8, 10; Tm 1811, 1728 K; H(Fe-Ni) = -2.
  d = _describe("Fe70Ni30")
  r_mean = 0.7 * 126 + 0.3 * 124  # 125.4
  delta = 100 * math.sqrt(0.7 * (1 - 126 / r_mean) ** 2 + 0.3 * (1 - 124 / r_mean) ** 2)
  assert d[COLUMNS["atomic_size_mismatch_pct"]] == pytest.approx(delta, rel=1e-9)
  assert delta == pytest.approx(0.73087, abs=1e-5)
  assert d[COLUMNS["electronegativity_difference"]] == pytest.approx(math.sqrt(0.001344))
  assert d[COLUMNS["vec"]] == pytest.approx(8.6)
  assert d[COLUMNS["mixing_entropy_j_mol_k"]] == pytest.approx(
      -R * (0.7 * math.log(0.7) + 0.3 * math.log(0.3)))
  assert d[COLUMNS["mixing_enthalpy_kj_mol"]] == pytest.approx(4 * -2 * 0.7 * 0.3)  # -1.68
  assert d[COLUMNS["melting_point_k"]] == pytest.approx(1786.1)


def test_quinary_cantor_alloy_by_hand():
  # Equiatomic CoCrFeMnNi. Radii Co 125, Cr 128, Fe 126, Mn 127, Ni 124 (mean 126): the squared
  # relative deviations sum to (1 + 4 + 0 + 1 + 4) / 126^2, so delta = 100 sqrt(2) / 126.
  d = _describe("CoCrFeMnNi")
  assert d[COLUMNS["atomic_size_mismatch_pct"]] == pytest.approx(100 * math.sqrt(2) / 126)
  # chi: 1.88 1.66 1.83 1.55 1.91, mean 1.766; squared deviations sum to 0.09572.
  assert d[COLUMNS["electronegativity_difference"]] == pytest.approx(math.sqrt(0.2 * 0.09572))
  assert d[COLUMNS["vec"]] == pytest.approx((9 + 6 + 8 + 7 + 10) / 5)
  assert d[COLUMNS["mixing_entropy_j_mol_k"]] == pytest.approx(R * math.log(5))
  # Takeuchi-Inoue pairs: CoCr -4, CoFe -1, CoMn -5, CoNi 0, CrFe -1, CrMn 2, CrNi -7, FeMn 0,
  # FeNi -2, MnNi -8: sum -26, times 4 c_i c_j = 0.16.
  assert d[COLUMNS["mixing_enthalpy_kj_mol"]] == pytest.approx(-26 * 0.16)
  assert d[COLUMNS["melting_point_k"]] == pytest.approx((1768 + 2180 + 1811 + 1519 + 1728) / 5)


def test_features_order_and_dict_input():
  features = featurize.featurize([{"Fe": 7, "Ni": 3}, "Fe70Ni30"])
  assert features.shape == (2, 21)
  np.testing.assert_allclose(features[0], features[1])
  names = schema.feature_names()
  assert features[0, names.index("Fe")] == pytest.approx(0.7)
  assert features[0, names.index("Ni")] == pytest.approx(0.3)
  assert features[0, :15].sum() == pytest.approx(1.0)


def test_element_outside_vocabulary_is_named():
  with pytest.raises(featurize.CompositionError, match=r"row 2: element 'B' is outside"):
    featurize.featurize(["FeNi", "Fe80B20"])


def test_missing_enthalpy_pair_is_named():
  with pytest.raises(featurize.CompositionError, match="pair Fe-Se"):
    featurize.featurize(["Fe50Se50"], elements=("Fe", "Se"))


def test_table_covers_every_element_in_the_shipped_sets():
  table = featurize.element_table()
  needed = ["radius_pm", "electronegativity_pauling", "valence_electrons_vec", "melting_point_k"]
  seen = set()
  for shipped_set in shipped.SETS.values():
    for formula in tables.read_table(shipped_set.path)["formula"]:
      seen.update(featurize.parse_composition(formula))
  assert len(seen) > 60  # 30 elements in the MPEA set, 68 in the cerebral glasses
  assert set(schema.DEFAULT_ELEMENTS) <= set(table.index)
  lacking = {el: [c for c in needed if pd.isna(table.at[el, c])] for el in seen}
  assert {el: c for el, c in lacking.items() if c} == {}
