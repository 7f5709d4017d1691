"""The functional-form analysis recognises the form that generated a target."""

import numpy as np

from kmtl import functional_forms as tool
from kmtl.data import schema
from kmtl.data import synthetic


def test_each_generating_form_fits_best():
  frame = synthetic.generate(0).iloc[:600]
  names = list(schema.feature_names())
  x = frame[names].to_numpy(np.float64)
  d = {n: frame[n].to_numpy() for n in schema.DESCRIPTOR_NAMES}
  power = 50 * (d["atomic_size_mismatch_pct"] + 1) ** 0.7 * d["vec"] ** -1.2 * (
      d["melting_point_k"] / 1000) ** 1.5
  fractions = x[:, :15]
  quadratic = 10 + fractions @ np.arange(1, 16) + 40 * fractions[:, 0] * fractions[:, 4]
  fits_power = tool.candidate_fits(x, names, 15, power, folds=3)
  fits_quadratic = tool.candidate_fits(x, names, 15, quadratic, folds=3)
  assert max(fits_power, key=fits_power.get) == "power_law" and fits_power["power_law"] > 0.99
  assert max(fits_quadratic, key=fits_quadratic.get) == "quadratic"
  assert fits_quadratic["quadratic"] > 0.99
