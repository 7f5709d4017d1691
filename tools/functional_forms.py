"""Which functional form explains each regression target? Cross-validated fits of candidates.

    python tools/functional_forms.py [--data=FILE] [--workdir=RUN ...]

For each regression task, on its labelled rows, 5-fold cross-validated R2 in original units of:
  linear        y ~ features (fractions + descriptors)
  quadratic     y ~ degree-2 polynomial in the elemental fractions
  power_law     log y ~ log descriptors (delta + 1, d_chi + 0.01, VEC, S_mix, T_m, |H_mix| + 1)
  exponential   log y ~ features
The reference study attributes negative transfer to resistivity being polynomial in composition
and hardness a power law. With `--workdir` (runs trained with gradient statistics), it also
prints the mean cosine between the regression tasks' gradients over training.
"""

import json
import os

from absl import app
from absl import flags
import numpy as np
from sklearn import linear_model
from sklearn import model_selection
from sklearn import pipeline
from sklearn import preprocessing

from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import schema

_DATA = flags.DEFINE_string("data", None, "CSV or Parquet file; default: the embedded set.")
_TASKS = flags.DEFINE_string("tasks", "resistivity,hardness,amorphous", "Tasks, as in kmtl.run.")
_WORKDIRS = flags.DEFINE_list("workdir", [], "Runs whose gradient cosines to report.")
_FOLDS = flags.DEFINE_integer("folds", 5, "Cross-validation folds.")


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
  with open(os.path.join(workdir, "history.jsonl"), encoding="utf-8") as f:
    for line in f:
      for pair, value in json.loads(line).get("grad", {}).get("cosine", {}).items():
        if value is not None:
          sums[pair] = sums.get(pair, 0.0) + value
          counts[pair] = counts.get(pair, 0) + 1
  return {pair: sums[pair] / counts[pair] for pair in sums}


def main(argv):
  del argv
  tasks = schema.parse_tasks(_TASKS.value)
  data = io.load_from_config(config_lib.DataConfig(path=_DATA.value, tasks=tasks))
  names = list(data.feature_names)
  print(f"{'task':<14}{'n':>7}" + "".join(f"{f:>13}" for f in
                                          ("linear", "quadratic", "power_law", "exponential"))
        + "   best (margin over runner-up)")
  for task in (t for t in tasks if t.kind == schema.REGRESSION):
    rows = ~np.isnan(data.labels[task.name])
    fits = candidate_fits(data.features[rows].astype(np.float64), names, len(data.elements),
                          data.labels[task.name][rows], _FOLDS.value)
    ranked = sorted(fits.items(), key=lambda kv: -kv[1])
    margin = ranked[0][1] - ranked[1][1] if len(ranked) > 1 else float("nan")
    print(f"{task.name:<14}{int(rows.sum()):>7}"
          + "".join(f"{fits.get(f, float('nan')):>13.4f}"
                    for f in ("linear", "quadratic", "power_law", "exponential"))
          + f"   {ranked[0][0]} (+{margin:.4f} R2)")
  for workdir in _WORKDIRS.value:
    cosines = gradient_cosines(workdir)
    shown = ", ".join(f"{pair}: {value:+.3f}" for pair, value in sorted(cosines.items()))
    print(f"gradient cosines over training in {workdir}: {shown or 'none recorded'}")


if __name__ == "__main__":
  app.run(main)
