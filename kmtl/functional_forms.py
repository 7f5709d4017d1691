"""Functional-form analysis: which candidate form explains a regression target, and how task
gradients related during training (used by tools/functional_forms.py)."""

import numpy as np
from sklearn import linear_model
from sklearn import model_selection
from sklearn import pipeline
from sklearn import preprocessing

from kmtl import run_files
from kmtl.data import schema


def _log_descriptors(features, names):
  d = {n: features[:, names.index(n)] for n in schema.DESCRIPTOR_NAMES}
  return np.log(np.stack([
      d["atomic_size_mismatch_pct"] + 1.0, d["electronegativity_difference"] + 0.01,
      d["vec"], np.maximum(d["mixing_entropy_j_mol_k"], 1e-3), d["melting_point_k"],
      np.abs(d["mixing_enthalpy_kj_mol"]) + 1.0], axis=1))


def candidate_fits(features, names, num_fractions, y, folds, seed=0):
  """{form: cross-validated R2 in original units}."""
  ridge = lambda: pipeline.make_pipeline(preprocessing.StandardScaler(),
                                         linear_model.Ridge(alpha=1e-3))
  fractions = features[:, :num_fractions]
  forms = {
      "linear": (features, ridge(), False),
      "quadratic": (fractions, pipeline.make_pipeline(
          preprocessing.PolynomialFeatures(2), linear_model.Ridge(alpha=1e-3)), False),
      "power_law": (_log_descriptors(features, names), ridge(), True),
      "exponential": (features, ridge(), True),
  }
  positive = (y > 0).all()
  cv = model_selection.KFold(folds, shuffle=True, random_state=seed)
  out = {}
  for name, (x, model, in_logs) in forms.items():
    if in_logs and not positive:
      continue
    target = np.log(y) if in_logs else y
    predicted = model_selection.cross_val_predict(model, x, target, cv=cv)
    predicted = np.exp(predicted) if in_logs else predicted
    out[name] = float(1.0 - np.sum((y - predicted)**2) / np.sum((y - y.mean())**2))
  return out


def gradient_cosines(workdir):
  """Mean over epochs of each task pair's gradient cosine in a run's history."""
  sums, counts = {}, {}
  for record in run_files.read_history(workdir):
    for pair, value in record.get("grad", {}).get("cosine", {}).items():
      if value is not None:
        sums[pair] = sums.get(pair, 0.0) + value
        counts[pair] = counts.get(pair, 0) + 1
  return {pair: sums[pair] / counts[pair] for pair in sums}
