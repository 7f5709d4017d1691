"""The negative-transfer study's statistics: each configuration paired against STL, split by split.

A cell is one configuration trained on one split (a seed's, or a fold's). Every configuration
on a split uses the same rows (splits depend only on the data and the seed or fold), so each
configuration's metric is compared with the single-task baseline (`independent`) split by
split: the paired difference d_s = metric(config, s) - metric(STL, s) over the splits where
both are finite. The splits' training sets overlap, so every interval and test here is
corrected for it (kmtl/resampled_tests.py, with the study's test-to-training ratio): the mean
difference with its corrected 95% interval, the corrected resampled t-test's p (Holm-adjusted
over the table's headline comparisons, the family stated), the smallest difference the design
detects with 80% power, and the correlated Bayesian t-test's posterior split by the metric's
region of practical equivalence (ROPE). The verdict is the posterior's: positive transfer,
equivalent or negative transfer when it gives one at least 0.95, else undecided. A split whose
cell failed or whose metric is not finite is counted as failed, never silently dropped. The
gradient-boosting row (`gbm`) is a reference: its difference from STL is shown without a
verdict. `independent_joint` is a control (separate networks on the joint batch stream), not
the baseline.
"""

import dataclasses
import math

import numpy as np

from kmtl import parsing
from kmtl import resampled_tests

BASELINE = "independent"
GBM = "gbm"  # the gradient-boosting baseline, one more row of the study
CONTROL = "independent_joint"
LOWER_IS_BETTER = {"mae", "rmse", "mape", "tail_mae", "mae_log10", "brier", "ece", "nll",
                   "width_95"}
# How well calibrated each configuration's probabilities and intervals are (kmtl/uncertainty.py).
CALIBRATION_METRICS = ("nll", "coverage_95", "ece", "brier")
REFERENCE_GRID = ("independent", "independent_joint", "shared", "shared:pcgrad",
                  "shared:gradnorm", "shared:gradscale", "shared:gradnorm:lds",
                  "structured:gradnorm", "gbm")


@dataclasses.dataclass(frozen=True)
class Configuration:
  """One grid entry, written `arch[:surgery[(name=value;...)][:imbalance+imbalance]]`, e.g.
  `shared:gradnorm(alpha=0.5):lds` (";" separates the method's hyper-parameters, since ","
  separates grid entries)."""
  arch: str
  surgery: str = "none"
  imbalance: tuple = ()
  surgery_args: tuple = ()

  @property
  def name(self):
    parts = [self.arch]
    if self.surgery != "none" or self.imbalance or self.surgery_args:
      args = ";".join(f"{k}={v}" for k, v in self.surgery_args)
      parts.append(f"{self.surgery}({args})" if args else self.surgery)
    if self.imbalance:
      parts.append("+".join(self.imbalance))
    return ":".join(parts)

  @classmethod
  def parse(cls, text):
    parts = text.strip().split(":")
    if not parts[0] or len(parts) > 3:
      raise ValueError(f"Invalid configuration {text!r}: expected arch[:surgery[:imbalance]], "
                       "e.g. shared:gradnorm:lds")
    surgery = parts[1] if len(parts) > 1 and parts[1] else "none"
    args = ()
    if "(" in surgery:
      surgery, _, rest = surgery.partition("(")
      if not rest.endswith(")"):
        raise ValueError(f"Invalid configuration {text!r}: expected surgery(name=value;...)")
      args = parsing.parse_surgery_args(rest[:-1])
    imbalance = tuple(p for p in parts[2].split("+") if p) if len(parts) > 2 else ()
    return cls(parts[0], surgery or "none", imbalance, args)


@dataclasses.dataclass(frozen=True)
class Design:
  """How a study's splits were drawn, for its statistics: in words (`splits`), the test rows
  over the training rows of one split (the overlap correction's ratio), the ROPE per metric
  ({metric: resampled_tests.Rope}) and the level at which the detectable difference is stated."""
  splits: str
  test_train_ratio: float
  ropes: dict
  alpha: float = 0.05
  targets: dict = dataclasses.field(default_factory=dict)  # {metric: Rope}; else the ROPE

  @classmethod
  def of(cls, data, runs, ropes, alpha=0.05, targets=None):
    """The design of `runs` cells per configuration on `data` (a DataConfig): K folds test
    1/K of the rows and train on the rest; a seeded split tests `test_fraction` of each task's
    labels and trains (with validation) on the rest."""
    if data.cv:
      folds = data.cv[0]
      repeats = runs // folds
      return cls(f"{runs} folds ({repeats} x {folds}-fold cross-validation)"
                 if repeats > 1 else f"{runs} folds of a {folds}-fold split",
                 1.0 / (folds - 1), ropes, alpha, targets or {})
    return cls(f"{runs} seeds", data.test_fraction / (1.0 - data.test_fraction), ropes, alpha,
               targets or {})

  def describe(self, family):
    """The report's line on its statistics."""
    ropes = ", ".join(f"{m} +-{r}" for m, r in sorted(self.ropes.items()))
    return (f"{self.splits}, paired against STL split by split; intervals and tests corrected "
            f"for overlapping training sets (Nadeau-Bengio, test/train ratio "
            f"{self.test_train_ratio:.3g}); p: the corrected resampled t-test, Holm-adjusted "
            f"over the {family} headline comparisons; detectable: the smallest difference "
            f"found with 80% power at alpha {self.alpha:g}, and the splits needed to find "
            f"one of the target size (the ROPE's unless --target_effect says otherwise; "
            f"'never' where the correction's floor lies above it); the verdict: the correlated "
            f"Bayesian t-test's posterior at {resampled_tests.DECIDED:g} with the ROPEs "
            f"{ropes}.")


def mean_ci(values, test_train_ratio=0.0, confidence=0.95):
  """(mean, half-width of its t confidence interval, corrected for training sets that overlap
  by `test_train_ratio`); half-width NaN for fewer than 2 values."""
  values = np.asarray(values, np.float64)
  return float(values.mean()), resampled_tests.corrected_interval(values, test_train_ratio,
                                                                  confidence)


def paired_comparison(values, baseline, metric, test_train_ratio, rope=0.0, alpha=0.05):
  """Paired difference of `values` against `baseline` (same splits, same order).

  Returns {"diff": mean difference, "ci": its corrected 95% half-width, "p": the corrected
  resampled t-test's p, "detectable": the smallest difference detected with 80% power,
  "posterior": the correlated Bayesian t-test's split by the ROPE +-`rope`, and "verdict"}.
  """
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  mean, half = mean_ci(diff, test_train_ratio)
  _, p = resampled_tests.corrected_t_test(diff, test_train_ratio)
  sd = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
  posterior = resampled_tests.posterior(diff, test_train_ratio, rope)
  return {"diff": mean, "ci": half, "p": p, "posterior": posterior, "sd": sd,
          "detectable": resampled_tests.detectable_effect(sd, len(diff), test_train_ratio,
                                                          alpha),
          "verdict": resampled_tests.verdict(posterior, metric in LOWER_IS_BETTER)}


def holm(p_values):
  """Holm's step-down adjusted p-values (same order as given): the i-th smallest p times
  (m - i + 1), made non-decreasing and capped at 1."""
  p = np.asarray(p_values, np.float64)
  order = np.argsort(p)
  adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
  out = np.empty_like(p)
  out[order] = adjusted
  return out.tolist()


def _finite(value):
  return value is not None and np.isfinite(value)


def _row(cells, config, task, metric, seeds, design):
  """One configuration x task x metric row (before Holm)."""
  test_train_ratio, rope = design.test_train_ratio, design.ropes.get(metric)
  value = lambda c, s: (None if cells[(c, s)].get("failed")
                        else cells[(c, s)]["test"].get(task.name, {}).get(metric))
  failed = [s for s in seeds if not _finite(value(config, s))]
  finite = [s for s in seeds if s not in failed]
  row = {"config": config, "task": task.name, "metric": metric, "seeds": len(seeds),
         "failed": failed, "n": len(finite), "mean": float("nan"), "ci": float("nan")}
  if finite:
    row["mean"], row["ci"] = mean_ci([value(config, s) for s in finite], test_train_ratio)
  if config == BASELINE:
    return row
  paired = [s for s in finite if (BASELINE, s) in cells and _finite(value(BASELINE, s))]
  row["n"] = len(paired)
  if len(paired) >= 2:
    baseline = [value(BASELINE, s) for s in paired]
    half_width = rope.half_width(float(np.mean(baseline))) if rope else 0.0
    comparison = paired_comparison([value(config, s) for s in paired], baseline, metric,
                                   test_train_ratio, half_width, design.alpha)
    row.update({"diff": comparison["diff"], "diff_ci": comparison["ci"], "p": comparison["p"],
                "detectable": comparison["detectable"], "rope": half_width})
    target = design.targets.get(metric, rope)
    if target is not None:
      row["target_effect"] = target.half_width(float(np.mean(baseline)))
      row["splits_needed"] = (resampled_tests.runs_needed(comparison["sd"], row["target_effect"],
                                                          test_train_ratio, design.alpha)
                              if row["target_effect"] > 0 else None)
    if comparison["posterior"] is not None:
      row["p_better"], row["p_equivalent"], row["p_worse"] = comparison["posterior"].oriented(
          metric in LOWER_IS_BETTER)
    row["posterior_verdict"] = comparison["verdict"]
  return row


def _ever_tested(cells, task):
  """False for an auxiliary task that no cell scored (labelled on never-tested rows only);
  a task whose cells all failed still has rows, to show the failures."""
  counts = [c["test"].get(task.name, {}).get("count") for c in cells.values() if "test" in c]
  return not counts or any(n != 0 for n in counts)


def summarize(cells, tasks, metrics_by_kind, headline, design):
  """Rows of the study table from its cells, with Holm's correction over the headline rows.

  Args:
    cells: {(configuration name, split): {"test": {task: {metric: value}}} or {"failed": True,
      "error": reason}}.
    tasks: the `schema.TaskSpec`s.
    metrics_by_kind: {task kind: [metric names]} to report.
    headline: {task: its headline metric}; these rows form the Holm family.
    design: the study's `Design` (the overlap ratio, the ROPEs; no ROPE for a metric without
      one).
  A task no cell scored (an auxiliary task of a fold file, never tested) has no rows.
  Returns:
    A list of dicts: config, task, metric, seeds, failed (splits), n (splits in the
    statistic: paired with STL for comparisons), mean, ci; comparisons add diff, diff_ci, p,
    detectable, rope, p_better, p_equivalent, p_worse, and headline rows p_holm and verdict
    (the reference row `gbm` gets no p and no verdict).
  """
  configs = sorted({c for c, _ in cells}, key=lambda c: (c != BASELINE, c == GBM, c))
  rows = []
  for config in configs:
    seeds = sorted(s for c, s in cells if c == config)
    for task in [t for t in tasks if _ever_tested(cells, t)]:
      for metric in metrics_by_kind[task.kind]:
        rows.append(_row(cells, config, task, metric, seeds, design))
  for row in rows:
    decided = row.pop("posterior_verdict", None)
    if row["config"] == GBM:
      row.pop("p", None)
    elif decided is not None and headline.get(row["task"]) == row["metric"]:
      row["verdict"] = decided
  family = [r for r in rows if "diff" in r and "p" in r and headline.get(r["task"]) == r["metric"]]
  tested = [r for r in family if np.isfinite(r["p"])]
  for r, adjusted in zip(tested, holm([r["p"] for r in tested]) if tested else []):
    r["p_holm"] = adjusted
  return rows


def family_size(rows):
  """How many comparisons Holm's correction covered."""
  return sum("p_holm" in r for r in rows)


def _label(config):
  return {BASELINE: f"{BASELINE} (STL baseline)", CONTROL: f"{CONTROL} (control)",
          GBM: f"{GBM} (reference)"}.get(config, config)


def _probabilities(row):
  if "p_better" not in row:
    return ""
  return f"{row['p_better']:.2f} / {row['p_equivalent']:.2f} / {row['p_worse']:.2f}"


def markdown_table(rows, headline):
  """The study table for the headline metric of each task ({task: metric})."""
  lines = ["| configuration | task | metric | n | failed | mean +- 95% CI | "
           "diff vs STL +- 95% CI | detectable | splits for target | p | p (Holm) | ROPE | "
           "P(better / equivalent / worse) | verdict |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    if headline.get(row["task"]) != row["metric"]:
      continue
    diff = (f"{row['diff']:+.4f} +- {row['diff_ci']:.4f}" if "diff" in row else
            "baseline" if row["config"] == BASELINE else "")
    detectable = f"{row['detectable']:.4f}" if "detectable" in row else ""
    needed = ""
    if "target_effect" in row:
      count = row["splits_needed"]
      needed = f"{count if count is not None else 'never'} for {row['target_effect']:.4g}"
    p = f"{row['p']:.3g}" if "p" in row else ""
    p_holm = f"{row['p_holm']:.3g}" if "p_holm" in row else ""
    rope = f"+-{row['rope']:.4g}" if "rope" in row else ""
    failed = ",".join(map(str, row["failed"])) if row["failed"] else "0"
    verdict = row.get("verdict", "reference, no verdict" if row["config"] == GBM else "")
    lines.append(f"| {_label(row['config'])} | {row['task']} | {row['metric']} | {row['n']} | "
                 f"{failed} | {row['mean']:.4f} +- {row['ci']:.4f} | {diff} | {detectable} | "
                 f"{needed} | "
                 f"{p} | {p_holm} | {rope} | {_probabilities(row)} | {verdict} |")
  return "\n".join(lines)


def side_table(rows, metrics, title):
  """A table beside the headline one: every row of `metrics`, with its paired difference
  against STL and its p (corrected for the overlap, not Holm-adjusted: these rows are not in
  the family); empty when no such row has a finite mean."""
  lines = [f"{title} (p corrected for the overlap, not Holm-adjusted):", "",
           "| configuration | task | metric | n | mean +- 95% CI | diff vs STL +- 95% CI | p |",
           "|---|---|---|---|---|---|---|"]
  chosen = [r for r in rows if r["metric"] in metrics and np.isfinite(r["mean"])]
  for row in chosen:
    diff = (f"{row['diff']:+.4f} +- {row['diff_ci']:.4f}" if "diff" in row else
            "baseline" if row["config"] == BASELINE else "")
    p = f"{row['p']:.3g}" if "p" in row else ""
    lines.append(f"| {_label(row['config'])} | {row['task']} | {row['metric']} | {row['n']} | "
                 f"{row['mean']:.4f} +- {row['ci']:.4f} | {diff} | {p} |")
  return "\n".join(lines) if chosen else ""


def calibration_table(rows):
  """Calibration beside accuracy: every `CALIBRATION_METRICS` row."""
  return side_table(rows, CALIBRATION_METRICS,
                    "Calibration (regression: after recalibration on validation)")


def threshold_table(rows):
  """Binary tasks at their decision threshold: recall, beside the threshold-free headline."""
  return side_table(rows, ("recall",), "Binary tasks at the decision threshold: recall")


def failures(cells):
  """Markdown lines listing every failed cell and its reason."""
  return [f"- {name} seed {seed}: {cell.get('error', 'failed')}"
          for (name, seed), cell in sorted(cells.items()) if cell.get("failed")]


VERDICT_COLOURS = {"positive transfer": "tab:green", "negative transfer": "tab:red",
                   "equivalent": "tab:blue", "undecided": "tab:grey"}


def figure(rows, headline, path):
  """PNG: per task (a column), above the paired difference vs STL with its corrected 95%
  interval and the ROPE shaded, coloured by verdict; below the posterior's P(better),
  P(equivalent) and P(worse) stacked, with the 0.95 a verdict needs marked."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  tasks = list(headline)
  fig, axes = plt.subplots(2, len(tasks), figsize=(4.8 * len(tasks), 7.5), squeeze=False)
  for column, task in enumerate(tasks):
    chosen = [r for r in rows if r["task"] == task and r["metric"] == headline[task]
              and "diff" in r and r["config"] != GBM]
    names = [r["config"] for r in chosen]
    ax = axes[0][column]
    ax.barh(names, [r["diff"] for r in chosen], xerr=[r["diff_ci"] for r in chosen],
            color=[VERDICT_COLOURS.get(r.get("verdict"), "tab:grey") for r in chosen],
            capsize=3)
    ropes = {r["rope"] for r in chosen if r.get("rope")}
    if len(ropes) == 1:
      rope = ropes.pop()
      ax.axvspan(-rope, rope, color="tab:blue", alpha=0.12, label=f"ROPE +-{rope:.3g}")
      ax.legend(loc="lower right", fontsize="small")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_title(f"{task}: {headline[task]} - STL")
    ax.invert_yaxis()
    ax = axes[1][column]
    left = np.zeros(len(chosen))
    for key, label, colour in (("p_better", "better", "tab:green"),
                               ("p_equivalent", "equivalent", "tab:blue"),
                               ("p_worse", "worse", "tab:red")):
      widths = np.array([r.get(key, 0.0) for r in chosen])
      ax.barh(names, widths, left=left, color=colour, label=label)
      left += widths
    ax.axvline(resampled_tests.DECIDED, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlim(0.0, 1.0)
    ax.set_title(f"{task}: posterior of the difference")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize="small")
  fig.suptitle("paired difference vs STL (corrected 95% CI; green positive transfer, blue "
               "equivalent, red negative, grey undecided, at posterior 0.95)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
