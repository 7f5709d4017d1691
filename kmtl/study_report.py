"""The study's report: per task and configuration the mean and 95% CI over seeds and the paired
comparison against the single-task baseline (kmtl/verdicts.py), as `study.md` (also printed),
`summary.json`, `cells.csv` and `transfer.png`."""

import json
import os

from absl import logging

from kmtl import atomic
from kmtl import quiet
from kmtl import verdicts
from kmtl.data import schema


def write(out, cells, tasks, alpha, stopping, folds=False):
  """Writes the study's report of `cells` into `out` (study.md, summary.json, cells.csv,
  transfer.png) and prints its table; returns the summary rows."""
  quiet.import_tensorflow()
  from kmtl import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  from kmtl import uncertainty_metrics  # pylint: disable=g-import-not-at-top
  kinds = {schema.REGRESSION: list(metrics_lib.REGRESSION_METRICS + metrics_lib.LOG_METRICS),
           schema.BINARY: [m for m in metrics_lib.BINARY_METRICS if m != "threshold"],
           schema.MULTICLASS: list(metrics_lib.MULTICLASS_METRICS)}
  if any("coverage_95" in m for c in cells.values() for m in c.get("test", {}).values()):
    kinds[schema.REGRESSION] += list(uncertainty_metrics.UNCERTAINTY_METRICS)
  headline = {t.name: metrics_lib.headline(t) for t in tasks}
  rows = verdicts.summarize(cells, tasks, kinds, headline, alpha)
  family = sum("p_holm" in r for r in rows)
  seeds = len({s for _, s in cells})
  runs = f"{seeds} folds of a {seeds}-fold split" if folds else f"{seeds} seeds"
  table = "\n".join([
      f"{runs}; paired t-tests against STL, Holm-corrected over the {family} headline "
      f"comparisons (alpha {alpha}); multi-task early stopping: {stopping}.", "",
      verdicts.markdown_table(rows, headline), "", verdicts.calibration_table(rows)] +
      (["", "Failed cells:"] + verdicts.failures(cells) if verdicts.failures(cells) else []))
  atomic.write_text(os.path.join(out, "study.md"), table + "\n")
  atomic.write_text(os.path.join(out, "summary.json"), json.dumps(rows, indent=2) + "\n")
  lines = ["config,seed,task,metric,value"]
  for (name, seed), result in sorted(cells.items()):
    for task, values in result.get("test", {}).items():
      lines += [f"{name},{seed},{task},{m},{v}" for m, v in values.items() if m != "count"]
  atomic.write_text(os.path.join(out, "cells.csv"), "\n".join(lines) + "\n")
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    logging.warning("matplotlib is not installed: no transfer.png (pip install 'kmtl[plot]')")
  else:
    with atomic.atomic_path(os.path.join(out, "transfer.png")) as tmp:
      verdicts.figure(rows, headline, tmp + ".png")
      os.replace(tmp + ".png", tmp)
  print(table)
  return rows
