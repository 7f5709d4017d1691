"""Composition -> elemental fractions + the six high-entropy-alloy descriptors.

With atomic fractions c_i (summing to 1) over the alloy's elements:
  delta    = 100 * sqrt(sum_i c_i (1 - r_i / r_mean)^2), r_mean = sum_i c_i r_i      (%)
  d_chi    = sqrt(sum_i c_i (chi_i - chi_mean)^2), chi_mean = sum_i c_i chi_i (Pauling)
  VEC      = sum_i c_i VEC_i                                  (HEA valence convention)
  S_mix    = -R sum_i c_i ln c_i                              (J/(mol K))
  H_mix    = sum_{i<j} 4 H_ij c_i c_j                         (kJ/mol, Takeuchi-Inoue H_ij)
  T_m      = sum_i c_i T_m,i                                  (K)
Radii r_i are metallic radii; elements without one (B, C, Si, P, ...) take the Miracle radius,
then the empirical atomic radius. The element facts ship in `elements.csv` and
`mixing_enthalpy.csv` beside this module (built by tools/build_element_table.py; sources cited
in their headers).
"""

import functools
import math
import os
import re

import numpy as np
import pandas as pd

from kmtl.data import schema

GAS_CONSTANT = 8.314462618  # J/(mol K), CODATA 2018.
_HERE = os.path.dirname(__file__)
_TOKEN = re.compile(r"\s*(?:([A-Z][a-z]?)|([(\[{])|([)\]}])|(\d*\.?\d+(?:[eE][-+]?\d+)?))")
_CLOSING = {"(": ")", "[": "]", "{": "}"}
CONVENTIONS = schema.COMPOSITION_CONVENTIONS


class CompositionError(ValueError):
  """A composition that cannot be parsed or described."""


@functools.lru_cache(maxsize=1)
def element_table():
  """The shipped element facts, indexed by symbol, with the radius used for delta."""
  table = pd.read_csv(os.path.join(_HERE, "elements.csv"), comment="#").set_index("symbol")
  table["radius_pm"] = (table["metallic_radius_pm"].fillna(table["miracle_radius_pm"])
                        .fillna(table["atomic_radius_empirical_pm"]))
  return table


@functools.lru_cache(maxsize=1)
def _enthalpies():
  pairs = pd.read_csv(os.path.join(_HERE, "mixing_enthalpy.csv"), comment="#")
  return {frozenset((a, b)): h for a, b, h in pairs.itertuples(index=False)}


def mixing_enthalpy_matrix(elements):
  """[E, E] Takeuchi-Inoue H_ij (kJ/mol), zero diagonal, NaN where the table lacks the pair."""
  lookup = _enthalpies()
  n = len(elements)
  matrix = np.zeros((n, n))
  for i in range(n):
    for j in range(i + 1, n):
      matrix[i, j] = matrix[j, i] = lookup.get(frozenset((elements[i], elements[j])), np.nan)
  return matrix


def _tokens(text):
  """[(kind, value, 1-based position)] with kind "element", "open", "close" or "number"."""
  tokens, pos = [], 0
  while pos < len(text):
    match = _TOKEN.match(text, pos)
    if not match or match.end() == pos:
      if not text[pos:].strip():
        break
      raise CompositionError(f"cannot parse composition {text!r} at position {pos + 1}")
    symbol, opening, closing, number = match.groups()
    kind, value = next((k, v) for k, v in (("element", symbol), ("open", opening),
                                           ("close", closing), ("number", number)) if v)
    tokens.append((kind, value, match.start(match.lastindex) + 1))
    pos = match.end()
  return tokens


def _add(amounts, content, number, is_group, convention, text):
  """Adds one element or bracket group, with the amount that follows it (None: none)."""
  if is_group and not content:
    raise CompositionError(f"an empty bracket group in composition {text!r}")
  if number is None:
    factor = 1.0
  elif is_group and convention == "alloy":
    total = sum(content.values())
    if total <= 0:
      raise CompositionError(f"a bracket group in composition {text!r} has no amount")
    factor = number / total
  else:
    factor = number
  for el, amount in content.items():
    amounts[el] = amounts.get(el, 0.0) + amount * factor


def _group(tokens, i, text, convention, opening=None):
  """Parses tokens from index i up to the bracket closing `opening` (or the end when None):
  ({symbol: amount}, index after it)."""
  amounts = {}
  while i < len(tokens):
    kind, value, pos = tokens[i]
    if kind == "close":
      if opening is None:
        raise CompositionError(f"unbalanced {value!r} in composition {text!r}")
      if value != _CLOSING[opening]:
        raise CompositionError(f"{opening!r} closed by {value!r} at position {pos} in "
                               f"composition {text!r}")
      return amounts, i + 1
    if kind == "number":
      raise CompositionError(f"number without an element in composition {text!r}")
    if kind == "element":
      if value not in element_table().index:
        raise CompositionError(f"unknown element {value!r} in composition {text!r}")
      content, i = {value: 1.0}, i + 1
    else:
      content, i = _group(tokens, i + 1, text, convention, value)
    number = None
    if i < len(tokens) and tokens[i][0] == "number":
      number, i = float(tokens[i][1]), i + 1
    _add(amounts, content, number, kind == "open", convention, text)
  if opening is not None:
    raise CompositionError(f"unbalanced {opening!r} in composition {text!r}")
  return amounts, i


def parse_composition(text, convention="alloy"):
  """Parses "Al0.5CoCrFeNi", "Fe70Ni30", "(Cu50Zr50)90Al10" or "{[(Fe0.6Co0.4)0.75B0.2Si0.05]
  0.96Nb0.04}96Cr4" into normalised fractions, {symbol: fraction} in input order.

  Amounts may be fractions, molar ratios or percentages (all are normalised to sum 1); a missing
  amount is 1. A bracket group ((), [] or {}) followed by an amount follows `convention`:
  "alloy" (the default, the metallurgists' convention) normalises the group's contents and
  scales them to the amount, so (Cu50Zr50)90Al10 is Cu45 Zr45 Al10; "chemical" multiplies the
  contents as written, so Al(NiB)2 is Al1 Ni2 B2. A group without an amount counts as written.
  """
  if convention not in CONVENTIONS:
    raise ValueError(f"Invalid composition convention {convention!r}. Expected one of "
                     f"{list(CONVENTIONS)}.")
  if not isinstance(text, str) or not text.strip():
    raise CompositionError(f"empty composition {text!r}")
  text = text.strip()
  amounts, _ = _group(_tokens(text), 0, text, convention)
  amounts = {el: a for el, a in amounts.items() if a != 0.0}
  total = sum(amounts.values())
  if not math.isfinite(total):
    raise CompositionError(f"composition {text!r} has amounts too large to add up (their "
                           "sum overflows); write fractions or percentages")
  if any(a < 0 for a in amounts.values()) or total <= 0:
    raise CompositionError(f"composition {text!r} has no positive amount")
  return {el: a / total for el, a in amounts.items()}


def likely_typos(text):
  """Capitalisation slips in a formula: two adjacent one-letter symbols that form a known
  two-letter symbol when the second is lower-cased ("NI" read as N and I, likely Ni), as
  [(written, suggested)]."""
  symbols = element_table().index
  found = []
  for match in re.finditer(r"([A-Z])(?![a-z])(?=([A-Z])(?![a-z]))", text):
    first, second = match.group(1), match.group(2)
    candidate = first + second.lower()
    if candidate in symbols and first in symbols:
      found.append((first + second, candidate))
  return found


def fractions_matrix(compositions, elements, hint="use --elements=auto or add it"):
  """[N, E] fractions over `elements` from dicts; an element outside the vocabulary is an
  error, ending with `hint` (what the user can do about it).

  Raises:
    CompositionError: naming the 1-based position of the first bad composition.
  """
  index = {el: i for i, el in enumerate(elements)}
  out = np.zeros((len(compositions), len(elements)))
  for row, comp in enumerate(compositions):
    for el, frac in comp.items():
      if el not in index:
        raise CompositionError(
            f"row {row + 1}: element {el!r} is outside the element vocabulary "
            f"({' '.join(elements)}); {hint}")
      out[row, index[el]] = frac
  return out


def descriptors(fractions, elements):
  """[N, E] atomic fractions over `elements` -> [N, 6] descriptors in `schema.DESCRIPTOR_NAMES`.

  Raises:
    CompositionError: an element present in a row lacks a needed property, or a pair present in
      a row lacks a mixing enthalpy.
  """
  fractions = np.asarray(fractions, dtype=np.float64)
  table = element_table()
  unknown = [el for el in elements if el not in table.index]
  if unknown:
    raise CompositionError(f"elements {unknown} are not in the element table")
  props = table.loc[list(elements), ["radius_pm", "electronegativity_pauling",
                                     "valence_electrons_vec", "melting_point_k"]]
  present = fractions > 0
  for name in props.columns:
    missing = props[name].isna().to_numpy() & present.any(axis=0)
    if missing.any():
      el = elements[int(np.argmax(missing))]
      row = int(np.argmax(present[:, elements.index(el)]))
      raise CompositionError(f"row {row + 1}: element {el!r} has no {name} in the element table")
  radius, chi, vec, t_melt = (np.nan_to_num(props[c].to_numpy()) for c in props.columns)

  r_mean = fractions @ radius
  delta = 100.0 * np.sqrt(np.sum(fractions * (1.0 - radius / r_mean[:, None]) ** 2, axis=1))
  chi_mean = fractions @ chi
  d_chi = np.sqrt(np.sum(fractions * (chi - chi_mean[:, None]) ** 2, axis=1))
  with np.errstate(divide="ignore", invalid="ignore"):
    s_mix = -GAS_CONSTANT * np.sum(np.where(present, fractions * np.log(fractions), 0.0), axis=1)

  h_matrix = mixing_enthalpy_matrix(list(elements))
  missing_pair = np.isnan(h_matrix)
  if missing_pair.any():
    lacking = np.einsum("ni,ij,nj->n", present.astype(float), missing_pair.astype(float),
                        present.astype(float)) > 0
    if lacking.any():
      row = int(np.argmax(lacking))
      i, j = next((i, j) for i, j in zip(*np.nonzero(missing_pair))
                  if present[row, i] and present[row, j])
      raise CompositionError(f"row {row + 1}: no Takeuchi-Inoue mixing enthalpy for the pair "
                             f"{elements[i]}-{elements[j]}")
  # sum_{i<j} 4 H_ij c_i c_j = 2 c^T H c for symmetric H with a zero diagonal.
  h_mix = 2.0 * np.einsum("ni,ij,nj->n", fractions, np.nan_to_num(h_matrix), fractions)
  return np.stack([delta, d_chi, fractions @ vec, s_mix, h_mix, fractions @ t_melt], axis=1)


def featurize(compositions, elements=schema.DEFAULT_ELEMENTS):
  """Composition strings or {symbol: amount} dicts -> [N, E + 6] features over `elements`."""
  elements = tuple(elements)
  parsed = []
  for row, comp in enumerate(compositions):
    try:
      if isinstance(comp, dict):
        total = float(sum(comp.values()))
        if total <= 0 or any(v < 0 for v in comp.values()):
          raise CompositionError(f"composition {comp!r} has a negative or no positive amount")
        parsed.append({el: v / total for el, v in comp.items() if v > 0})
      else:
        parsed.append(parse_composition(comp))
    except CompositionError as e:
      raise CompositionError(f"row {row + 1}: {e}") from None
  fractions = fractions_matrix(parsed, elements)
  return np.concatenate([fractions, descriptors(fractions, elements)], axis=1)
