"""A benchmark's scores from its study cells: per fold, Matbench's aggregation over folds, the
multi-task configuration chosen on validation scores, and the table beside the leaderboard.

Regression: the target's MAE per fold. Classification: Matbench scores hard labels at 0.5, so
its "ROC-AUC" is the balanced accuracy; each fold's balanced accuracy, F1 of the positive class
and accuracy are recomputed over every test row of the fold, the rows the features could not
describe counted as predicted the training majority class. The confusion counts of the scored
rows follow exactly from their recall and balanced accuracy and the fold's label counts:
TP = recall * P and TN = (2 * balanced accuracy - recall) * N.
"""

import json
import os

import numpy as np

from kmtl import study_report
from kmtl import verdicts

BASELINE, GBM = verdicts.BASELINE, verdicts.GBM


def read_cells(cells_dir):
  """{config: {fold: cell result}} of the study's cell files."""
  cells = {}
  for name in sorted(os.listdir(cells_dir)):
    if name.endswith(".json"):
      with open(os.path.join(cells_dir, name), encoding="utf-8") as f:
        cell = json.load(f)
      cells.setdefault(cell["config"], {})[int(cell["seed"])] = cell
  return cells


def classification_fold(metrics, truth, left_out_truth, majority):
  """{balanced_accuracy, f1, accuracy} over a whole fold: the scored rows' confusion counts
  (from their metrics and labels) plus the left-out rows predicted `majority`."""
  positives, negatives = int(np.sum(truth == 1)), int(np.sum(truth == 0))
  tp = round(metrics["recall"] * positives)
  tn = round((2 * metrics["balanced_accuracy"] - metrics["recall"]) * negatives)
  fn, fp = positives - tp, negatives - tn
  extra_pos, extra_neg = int(np.sum(left_out_truth == 1)), int(np.sum(left_out_truth == 0))
  if majority == 1:
    tp, fp = tp + extra_pos, fp + extra_neg
  else:
    tn, fn = tn + extra_neg, fn + extra_pos
  return {"balanced_accuracy": (tp / (tp + fn) + tn / (tn + fp)) / 2,
          "f1": 2 * tp / (2 * tp + fp + fn),
          "accuracy": (tp + tn) / (tp + tn + fp + fn)}


def fold_scores(bench, cell, split, fold, truth, folds, left_out):
  """{score: value} of one cell on `split` (test: recomputed over the whole fold)."""
  metrics = cell[split][bench.target]
  if "balanced_accuracy" not in metrics or "recall" not in metrics:
    return {"mae": metrics["mae"]}
  if split != "test":
    return {"balanced_accuracy": metrics["balanced_accuracy"], "f1": metrics["f1"]}
  majority = int(np.mean(truth[folds != fold]) >= 0.5)
  extra = left_out.loc[left_out["fold"] == fold, bench.target].to_numpy()
  return {**classification_fold(metrics, truth[folds == fold], extra, majority),
          "auroc_scored_rows": metrics["auroc"]}


def _summaries(bench, cells, truth, folds, left_out):
  """{config: {"test": {score: [per fold]}, "val": {...}, "failed": [folds]}}."""
  num_folds = int(folds.max()) + 1
  out = {}
  for config, by_fold in cells.items():
    entry = {"test": {}, "val": {}, "failed": []}
    for fold in range(num_folds):
      cell = by_fold.get(fold)
      if cell is None or cell.get("failed"):
        entry["failed"].append(fold)
        continue
      for split in ("test", "val"):
        for name, value in fold_scores(bench, cell, split, fold, truth, folds,
                                       left_out).items():
          entry[split].setdefault(name, []).append(float(value))
    out[config] = entry
  return out


def best_multi_task(summaries, lower_is_better):
  """The multi-task configuration with the best mean validation score, or None."""
  scored = {c: np.mean(s["val"][next(iter(s["val"]))]) for c, s in summaries.items()
            if c not in (BASELINE, GBM) and not s["failed"] and s["val"]}
  if not scored:
    return None
  return (min if lower_is_better else max)(scored, key=scored.get)


def _cell_text(values):
  values = np.asarray(values, float)
  return f"{values.mean():.4f} +- {values.std(ddof=0):.4f}"


def _mean_of(text, lower_is_better):
  """Sort key of a "mean +- spread" cell: best first, empty last."""
  if not text:
    return np.inf
  mean = float(text.split()[0])
  return mean if lower_is_better else -mean


def report(bench, cells_dir, truth, folds, left_out, leaderboard):
  """{"markdown": the table, "rows": its rows as data}."""
  cells = read_cells(cells_dir)
  summaries = _summaries(bench, cells, np.asarray(truth, float), np.asarray(folds), left_out)
  regression = any("mae" in s["test"] for s in summaries.values())
  scores = ("mae",) if regression else ("balanced_accuracy", "f1", "auroc_scored_rows")
  best = best_multi_task(summaries, regression)
  rows = []
  for config, summary in summaries.items():
    role = {BASELINE: "kmtl single-task network", GBM: "gradient boosting (kmtl features)",
            best: "kmtl best multi-task (chosen on validation)"}.get(config, "kmtl multi-task")
    rows.append({"model": f"{role}: {config}", "failed_folds": summary["failed"],
                 "per_fold": summary["test"],
                 "scores": {s: _cell_text(v) for s, v in summary["test"].items()}})
  for entry in leaderboard:
    rows.append({"model": f"leaderboard: {entry.algorithm}", "failed_folds": [], "per_fold": {},
                 "scores": {s: f"{m:.4f}" + ("" if sd is None else f" +- {sd:.4f}")
                            for s, (m, sd) in entry.scores.items()}})
  rows.sort(key=lambda r: _mean_of(r["scores"].get(scores[0]), regression))
  header = ["model"] + [s.replace("_", " ") for s in scores] + [f"per fold ({scores[0]})",
                                                                "failed folds"]
  lines = [f"{bench.name}: mean +- population spread over the official folds; "
           f"{len(left_out)} rows left out of training (no features), "
           + ("scored as the training majority." if not regression else "not scored."), "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    per_fold = " ".join(f"{v:.4g}" for v in row["per_fold"].get(scores[0], []))
    lines.append("| " + " | ".join([row["model"]] + [row["scores"].get(s, "") for s in scores]
                                   + [per_fold, ",".join(map(str, row["failed_folds"]))]) + " |")
  return {"markdown": "\n".join(lines + budget_lines(cells)), "rows": rows}


def budget_lines(cells):
  """The tuning budget and the seconds each configuration took over its folds (its tuning
  beside), or the seconds alone for an untuned benchmark."""
  tuned = [c["tuning"] for folds in cells.values() for c in folds.values() if "tuning" in c]
  lines = ["", (f"Tuned: {max(t['budget'] for t in tuned)} trials per configuration inside "
                "each training fold (kmtl/tuning.py), the same for every configuration; "
                f"{study_report.objective(tuned[0])}." if tuned else
                "Untuned: the reference settings for every configuration."), "",
           "| configuration | seconds over the folds | of which tuning |", "|---|---|---|"]
  for config, folds in sorted(cells.items()):
    total = sum(c.get("wall_seconds", c.get("seconds", 0.0)) for c in folds.values())
    tuning = sum(c.get("tuning", {}).get("seconds", 0.0) for c in folds.values())
    lines.append(f"| {config} | {total:.0f} | {tuning:.0f} |")
  return lines
