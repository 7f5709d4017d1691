"""Magpie-style composition statistics (Ward et al., npj Computational Materials 2, 16028,
2016): for each element property below, its fraction-weighted mean, the fraction-weighted mean
absolute deviation from that mean, and its minimum, maximum and range over the elements
present. Unlike element fractions, they describe an alloy of any elements the element table
knows, so a model of them is not tied to one element vocabulary.
"""

import numpy as np

PROPERTIES = ("atomic_number", "atomic_mass_u", "radius_pm", "electronegativity_pauling",
              "valence_electrons_vec", "melting_point_k")
STATISTICS = ("mean", "mad", "min", "max", "range")
PREFIX = "magpie_"


def feature_names():
  """The statistics' column names, property by property: `magpie_mean_radius_pm`, ..."""
  return tuple(f"{PREFIX}{stat}_{prop}" for prop in PROPERTIES for stat in STATISTICS)


def statistics(fractions, elements, table):
  """[N, E] atomic fractions over `elements` -> [N, len(feature_names())] statistics, from
  `table` (featurize.element_table()). Returns (values, None), or (None, (row, element,
  property)) for the first present element that lacks a property."""
  fractions = np.asarray(fractions, np.float64)
  values = table.loc[list(elements), list(PROPERTIES)].to_numpy(np.float64)  # [E, P]
  present = fractions > 0
  lacking = present[:, :, None] & np.isnan(values)[None, :, :]
  if lacking.any():
    row, element, prop = (int(i[0]) for i in np.nonzero(lacking))
    return None, (row, elements[element], PROPERTIES[prop])
  values = np.nan_to_num(values)
  mean = fractions @ values  # [N, P]
  mad = np.einsum("ne,nep->np", fractions, np.abs(values[None] - mean[:, None, :]))
  low = np.where(present[:, :, None], values[None], np.inf).min(axis=1)
  high = np.where(present[:, :, None], values[None], -np.inf).max(axis=1)
  stacked = np.stack([mean, mad, low, high, high - low], axis=2)  # [N, P, S]
  return stacked.reshape(len(fractions), -1), None
