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

from absl import app
from absl import flags
import numpy as np

from kmtl import functional_forms
from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import schema

_DATA = flags.DEFINE_string("data", None, "CSV or Parquet file; default: the embedded set.")
_TASKS = flags.DEFINE_string("tasks", "resistivity,hardness,amorphous", "Tasks, as in kmtl.run.")
_WORKDIRS = flags.DEFINE_list("workdir", [], "Runs whose gradient cosines to report.")
_FOLDS = flags.DEFINE_integer("folds", 5, "Cross-validation folds.")


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
    fits = functional_forms.candidate_fits(data.features[rows].astype(np.float64), names, len(data.elements),
                          data.labels[task.name][rows], _FOLDS.value)
    ranked = sorted(fits.items(), key=lambda kv: -kv[1])
    margin = ranked[0][1] - ranked[1][1] if len(ranked) > 1 else float("nan")
    print(f"{task.name:<14}{int(rows.sum()):>7}"
          + "".join(f"{fits.get(f, float('nan')):>13.4f}"
                    for f in ("linear", "quadratic", "power_law", "exponential"))
          + f"   {ranked[0][0]} (+{margin:.4f} R2)")
  for workdir in _WORKDIRS.value:
    cosines = functional_forms.gradient_cosines(workdir)
    shown = ", ".join(f"{pair}: {value:+.3f}" for pair, value in sorted(cosines.items()))
    print(f"gradient cosines over training in {workdir}: {shown or 'none recorded'}")


if __name__ == "__main__":
  app.run(main)
