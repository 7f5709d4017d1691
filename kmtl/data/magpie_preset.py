"""matminer's Magpie preset, computed natively: for each of 22 element properties the minimum,
maximum, range, fraction-weighted mean, fraction-weighted mean absolute deviation and mode over
a composition's elements (`ElementProperty.from_preset("magpie")`, Ward et al., npj
Computational Materials 2, 16028, 2016), then the stoichiometry p-norms (p = 0, 2, 3, 5, 7, 10)
and the valence-orbital averages and fractions (matminer's `Stoichiometry` and
`ValenceOrbital`): 146 features, named as matminer names them. The element properties are
matminer's Magpie tables (kmtl/data/magpie_elements.csv, written by
tools/build_element_table.py); `python -m tools.magpie_parity` compares with matminer itself.

The mode is the property of the element with the largest fraction, the smallest such value
when fractions tie (matminer's `PropertyStats.mode` with weights).
"""

import functools
import os

import numpy as np

PROPERTIES = ("Number", "MendeleevNumber", "AtomicWeight", "MeltingT", "Column", "Row",
              "CovalentRadius", "Electronegativity", "NsValence", "NpValence", "NdValence",
              "NfValence", "NValence", "NsUnfilled", "NpUnfilled", "NdUnfilled", "NfUnfilled",
              "NUnfilled", "GSvolume_pa", "GSbandgap", "GSmagmom", "SpaceGroupNumber")
STATISTICS = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")
P_NORMS = (0, 2, 3, 5, 7, 10)
ORBITALS = ("s", "p", "d", "f")


def feature_names():
  """The 146 column names, as matminer labels them."""
  return (tuple(f"MagpieData {stat} {prop}" for prop in PROPERTIES for stat in STATISTICS) +
          tuple(f"{p}-norm" for p in P_NORMS) +
          tuple(f"avg {o} valence electrons" for o in ORBITALS) +
          tuple(f"frac {o} valence electrons" for o in ORBITALS))


@functools.lru_cache(maxsize=1)
def element_table():
  """The preset's element properties, indexed by symbol."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(__file__), "magpie_elements.csv")
  return pd.read_csv(path, comment="#").set_index("symbol")


def features(fractions, elements):
  """[N, E] atomic fractions over `elements` -> ([N, 146] features, None), or (None, (row,
  element, property)) for the first present element that lacks a property."""
  fractions = np.asarray(fractions, np.float64)
  fractions = fractions / fractions.sum(axis=1, keepdims=True)
  values = element_table().reindex(list(elements))[list(PROPERTIES)].to_numpy(np.float64)
  present = fractions > 0
  lacking = present[:, :, None] & np.isnan(values)[None, :, :]  # [N, E, P]
  if lacking.any():
    row, element, prop = (int(i[0]) for i in np.nonzero(lacking))
    return None, (row, elements[element], PROPERTIES[prop])
  values = np.nan_to_num(values)
  v = values[None, :, :]  # [1, E, P]
  low = np.where(present[:, :, None], v, np.inf).min(axis=1)
  high = np.where(present[:, :, None], v, -np.inf).max(axis=1)
  mean = fractions @ values
  avg_dev = np.einsum("ne,nep->np", fractions, np.abs(v - mean[:, None, :]))
  largest = np.isclose(fractions, fractions.max(axis=1, keepdims=True)) & present
  mode = np.where(largest[:, :, None], v, np.inf).min(axis=1)
  stats = np.stack([low, high, high - low, mean, avg_dev, mode], axis=2)  # [N, P, S]
  norms = [present.sum(axis=1).astype(np.float64) if p == 0 else
           (fractions ** p).sum(axis=1) ** (1.0 / p) for p in P_NORMS]
  orbital = mean[:, [PROPERTIES.index(f"N{o}Valence") for o in ORBITALS]]
  total = orbital.sum(axis=1, keepdims=True)
  shares = np.divide(orbital, total, out=np.zeros_like(orbital), where=total > 0)
  return np.concatenate([stats.reshape(len(fractions), -1), np.stack(norms, axis=1), orbital,
                         shares], axis=1), None
