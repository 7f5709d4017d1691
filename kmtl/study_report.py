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


def _shown(value):
  return f"{value:.3g}" if isinstance(value, float) else str(value)


def objective(record):
  """How the search of a tuned cell's `tuning` record scored a trial, in words."""
  tasks = ", ".join(record.get("tasks") or []) or "all tasks"
  folds = record.get("folds", 1)
  where = (f"averaged over {folds} folds of those rows grouped by composition" if folds > 1
           else "on the validation rows")
  return f"a trial scored by the mean validation loss over {tasks}, {where}"


def tuning_lines(cells):
  """The report's tuning section: the budget, and per configuration the trials' outcomes, the
  tuning time and the values each cell chose; nothing for an untuned study."""
  tuned = {key: c["tuning"] for key, c in cells.items() if "tuning" in c}
  if not tuned:
    return []
  budgets = sorted({t["budget"] for t in tuned.values()})
  untuned = sorted({name for (name, _), c in cells.items()
                    if "tuning" not in c and not c.get("failed")})
  lines = ["", f"Tuning: {' / '.join(map(str, budgets))} trials per cell and configuration "
           "(Optuna TPE, median pruning) on each cell's training and validation rows, "
           f"{objective(next(iter(tuned.values())))}, then the best values trained and tested" +
           (f"; not tuned: {', '.join(untuned)}" if untuned else "") + ".", "",
           "| configuration | seed | trials (complete / pruned / failed) | tuning s | values |",
           "|---|---|---|---|---|"]
  for (name, seed), t in sorted(tuned.items()):
    states = t["trials"]
    values = ", ".join(f"{k}={_shown(v)}" for k, v in t["values"].items())
    lines.append(f"| {name} | {seed} | {states['complete']} / {states['pruned']} / "
                 f"{states['fail']} | {t['seconds']:.0f} | {values} |")
  return lines


def reported_metrics(kinds, uncertainty=False):
  """{task kind: [metric names]} a study reports for `kinds` of task (with the predictive
  distribution's metrics for regression when `uncertainty`)."""
  quiet.import_tensorflow()
  from kmtl import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  from kmtl import uncertainty_metrics  # pylint: disable=g-import-not-at-top
  out = {schema.REGRESSION: list(metrics_lib.REGRESSION_METRICS + metrics_lib.LOG_METRICS),
         schema.BINARY: [m for m in metrics_lib.BINARY_METRICS if m != "threshold"],
         schema.MULTICLASS: list(metrics_lib.MULTICLASS_METRICS)}
  if uncertainty:
    out[schema.REGRESSION] += list(uncertainty_metrics.UNCERTAINTY_METRICS)
  return {k: v for k, v in out.items() if k in kinds}


def selection_lines(cells, tasks, kinds, headline, design, rows):
  """With `--model_selection=per_task`, how much of each difference the stopping rule
  explains: the headline difference against STL with each task's own best epoch (the table
  above) beside the joint selection's; nothing otherwise."""
  if not any("test_joint" in c for c in cells.values()):
    return []
  joint_cells = {k: ({**c, "test": c["test_joint"]} if "test_joint" in c else c)
                 for k, c in cells.items()}
  joint = {(r["config"], r["task"]): r for r in verdicts.summarize(
      joint_cells, tasks, kinds, headline, design) if headline.get(r["task"]) == r["metric"]}
  lines = ["", "Model selection: each multi-task model's tasks scored at their own best "
           "validation epoch (above) against the joint stopping score's best epoch:", "",
           "| configuration | task | metric | diff vs STL, per task | verdict | "
           "diff vs STL, joint | verdict |", "|---|---|---|---|---|---|---|"]
  for r in rows:
    other = joint.get((r["config"], r["task"]))
    if "diff" not in r or other is None or "diff" not in other or r["config"] == verdicts.GBM \
        or headline.get(r["task"]) != r["metric"]:
      continue
    lines.append(f"| {r['config']} | {r['task']} | {r['metric']} | {r['diff']:+.4f} +- "
                 f"{r['diff_ci']:.4f} | {r.get('verdict', '')} | {other['diff']:+.4f} +- "
                 f"{other['diff_ci']:.4f} | {other.get('verdict', '')} |")
  return lines


def write(out, cells, tasks, design, stopping, made_by=""):
  """Writes the study's report of `cells` into `out` (study.md, summary.json, cells.csv,
  transfer.png) under its `verdicts.Design`, headed by `made_by` (its provenance line), and
  prints its table; returns the summary rows."""
  from kmtl import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  kinds = reported_metrics({t.kind for t in tasks}, any(
      "coverage_95" in m for c in cells.values() for m in c.get("test", {}).values()))
  headline = {t.name: metrics_lib.headline(t) for t in tasks}
  rows = verdicts.summarize(cells, tasks, kinds, headline, design)
  table = "\n".join(([made_by, ""] if made_by else []) + [
      f"{design.describe(verdicts.family_size(rows))} Multi-task early stopping: {stopping}.",
      "", verdicts.markdown_table(rows, headline), "", verdicts.threshold_table(rows), "",
      verdicts.calibration_table(rows)] +
      (["", "Failed cells:"] + verdicts.failures(cells) if verdicts.failures(cells) else []) +
      selection_lines(cells, tasks, kinds, headline, design, rows) + tuning_lines(cells))
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
