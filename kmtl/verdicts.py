"""The negative-transfer study's statistics: each configuration paired against STL, seed by seed.

A cell is one configuration trained with one seed. Every configuration with a given seed uses
the same data split (splits depend only on the data and the seed), so each configuration's
metric is compared with the single-task baseline (`independent`) seed by seed: the paired
difference d_s = metric(config, s) - metric(STL, s) over the seeds where both are finite, its
mean, a 95% t confidence interval and a paired t-test. The p-values of every configuration x
task headline metric in one table are corrected together by Holm's method, and a verdict
("negative transfer" / "positive transfer") needs a Holm-adjusted p < alpha; otherwise "no
significant difference" (also when the test is undefined: fewer than 2 paired seeds, or the
same difference on every seed). A seed whose cell failed or whose metric is not finite is
counted as failed, never silently dropped. The gradient-boosting row (`gbm`) is a reference:
its difference from STL is shown without a transfer verdict. `independent_joint` is a control
(separate networks on the joint batch stream), not the baseline.
"""

import dataclasses
import math

import numpy as np

from kmtl import parsing

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


def mean_ci(values, confidence=0.95):
  """(mean, half-width of the t confidence interval); half-width NaN for fewer than 2 values."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if len(values) < 2:
    return mean, float("nan")
  sem = float(values.std(ddof=1)) / math.sqrt(len(values))
  from scipy import stats  # pylint: disable=g-import-not-at-top  (slow to import)
  return mean, float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sem)


def paired_comparison(values, baseline, metric, alpha=0.05):
  """Paired difference of `values` against `baseline` (same seeds, same order).

  Returns {"diff": mean difference, "ci": its 95% half-width, "p": paired t-test p-value,
  "verdict": "negative transfer" | "positive transfer" | "no significant difference"}.
  """
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  mean, half = mean_ci(diff)
  scale = max(np.abs(values).max(initial=0.0), np.abs(baseline).max(initial=0.0))
  if len(diff) < 2 or np.ptp(diff) <= 1e-12 * scale:
    # The t-test is undefined without spread (relative to the metric's own scale, rounding
    # aside, so metrics in small units still get a test); no verdict is claimed.
    p = float("nan")
  else:
    from scipy import stats  # pylint: disable=g-import-not-at-top
    p = float(stats.ttest_rel(values, baseline).pvalue)
  better = -mean if metric in LOWER_IS_BETTER else mean
  if not p < alpha:
    verdict = "no significant difference"
  else:
    verdict = "positive transfer" if better > 0 else "negative transfer"
  return {"diff": mean, "ci": half, "p": p, "verdict": verdict}


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


def _row(cells, config, task, metric, seeds, alpha):
  """One configuration x task x metric row (before Holm)."""
  value = lambda c, s: (None if cells[(c, s)].get("failed")
                        else cells[(c, s)]["test"].get(task.name, {}).get(metric))
  failed = [s for s in seeds if not _finite(value(config, s))]
  finite = [s for s in seeds if s not in failed]
  row = {"config": config, "task": task.name, "metric": metric, "seeds": len(seeds),
         "failed": failed, "n": len(finite), "mean": float("nan"), "ci": float("nan")}
  if finite:
    row["mean"], row["ci"] = mean_ci([value(config, s) for s in finite])
  if config == BASELINE:
    return row
  paired = [s for s in finite if (BASELINE, s) in cells and _finite(value(BASELINE, s))]
  row["n"] = len(paired)
  if len(paired) >= 2:
    comparison = paired_comparison([value(config, s) for s in paired],
                                   [value(BASELINE, s) for s in paired], metric, alpha)
    row.update({"diff": comparison["diff"], "diff_ci": comparison["ci"], "p": comparison["p"]})
  return row


def _ever_tested(cells, task):
  """False for an auxiliary task that no cell scored (labelled on never-tested rows only);
  a task whose cells all failed still has rows, to show the failures."""
  counts = [c["test"].get(task.name, {}).get("count") for c in cells.values() if "test" in c]
  return not counts or any(n != 0 for n in counts)


def summarize(cells, tasks, metrics_by_kind, headline, alpha=0.05):
  """Rows of the study table from its cells, with Holm's correction over the headline rows.

  Args:
    cells: {(configuration name, seed): {"test": {task: {metric: value}}} or {"failed": True,
      "error": reason}}.
    tasks: the `schema.TaskSpec`s.
    metrics_by_kind: {task kind: [metric names]} to report.
    headline: {task: its headline metric}; these rows form the Holm family.
  A task no cell scored (an auxiliary task of a fold file, never tested) has no rows.
  Returns:
    A list of dicts: config, task, metric, seeds, failed (seeds), n (seeds in the statistic:
    paired with STL for comparisons), mean, ci; comparisons add diff, diff_ci, p, and headline
    rows p_holm and verdict (the reference row `gbm` gets no p and no verdict).
  """
  configs = sorted({c for c, _ in cells}, key=lambda c: (c != BASELINE, c == GBM, c))
  rows = []
  for config in configs:
    seeds = sorted(s for c, s in cells if c == config)
    for task in [t for t in tasks if _ever_tested(cells, t)]:
      for metric in metrics_by_kind[task.kind]:
        rows.append(_row(cells, config, task, metric, seeds, alpha))
  for row in rows:
    if row["config"] == GBM:
      row.pop("p", None)
  family = [r for r in rows if "diff" in r and "p" in r and headline.get(r["task"]) == r["metric"]]
  tested = [r for r in family if np.isfinite(r["p"])]
  for r, adjusted in zip(tested, holm([r["p"] for r in tested]) if tested else []):
    r["p_holm"] = adjusted
  for r in family:
    r["verdict"] = _verdict(r, alpha)
  return rows


def _verdict(row, alpha):
  if not row.get("p_holm", float("nan")) < alpha:
    return "no significant difference"
  better = -row["diff"] if row["metric"] in LOWER_IS_BETTER else row["diff"]
  return "positive transfer" if better > 0 else "negative transfer"


def _label(config):
  return {BASELINE: f"{BASELINE} (STL baseline)", CONTROL: f"{CONTROL} (control)",
          GBM: f"{GBM} (reference)"}.get(config, config)


def markdown_table(rows, headline):
  """The study table for the headline metric of each task ({task: metric})."""
  lines = ["| configuration | task | metric | n | failed | mean +- 95% CI | "
           "diff vs STL +- 95% CI | p | p (Holm) | verdict |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    if headline.get(row["task"]) != row["metric"]:
      continue
    diff = (f"{row['diff']:+.4f} +- {row['diff_ci']:.4f}" if "diff" in row else
            "baseline" if row["config"] == BASELINE else "")
    p = f"{row['p']:.3g}" if "p" in row else ""
    p_holm = f"{row['p_holm']:.3g}" if "p_holm" in row else ""
    failed = ",".join(map(str, row["failed"])) if row["failed"] else "0"
    verdict = row.get("verdict", "reference, no verdict" if row["config"] == GBM else "")
    lines.append(f"| {_label(row['config'])} | {row['task']} | {row['metric']} | {row['n']} | "
                 f"{failed} | {row['mean']:.4f} +- {row['ci']:.4f} | {diff} | {p} | "
                 f"{p_holm} | {verdict} |")
  return "\n".join(lines)


def calibration_table(rows):
  """Calibration beside accuracy: every `CALIBRATION_METRICS` row, with its paired difference
  against STL and uncorrected p (these rows are not in the Holm family)."""
  lines = ["Calibration (regression: after recalibration on validation; uncorrected p):", "",
           "| configuration | task | metric | n | mean +- 95% CI | diff vs STL +- 95% CI | p |",
           "|---|---|---|---|---|---|---|"]
  chosen = [r for r in rows if r["metric"] in CALIBRATION_METRICS and np.isfinite(r["mean"])]
  for row in chosen:
    diff = (f"{row['diff']:+.4f} +- {row['diff_ci']:.4f}" if "diff" in row else
            "baseline" if row["config"] == BASELINE else "")
    p = f"{row['p']:.3g}" if "p" in row else ""
    lines.append(f"| {_label(row['config'])} | {row['task']} | {row['metric']} | {row['n']} | "
                 f"{row['mean']:.4f} +- {row['ci']:.4f} | {diff} | {p} |")
  return "\n".join(lines) if chosen else ""


def failures(cells):
  """Markdown lines listing every failed cell and its reason."""
  return [f"- {name} seed {seed}: {cell.get('error', 'failed')}"
          for (name, seed), cell in sorted(cells.items()) if cell.get("failed")]


def figure(rows, headline, path):
  """PNG: per task, bars of the paired difference vs STL with 95% CIs per configuration."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  tasks = list(headline)
  fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    chosen = [r for r in rows if r["task"] == task and r["metric"] == headline[task]
              and "diff" in r and r["config"] != GBM]
    names = [r["config"] for r in chosen]
    colours = ["tab:red" if r.get("verdict") == "negative transfer" else
               "tab:green" if r.get("verdict") == "positive transfer" else "tab:grey"
               for r in chosen]
    ax.barh(names, [r["diff"] for r in chosen], xerr=[r["diff_ci"] for r in chosen],
            color=colours, capsize=3)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_title(f"{task}: {headline[task]} - STL")
    ax.invert_yaxis()
  fig.suptitle("paired difference vs STL (95% CI); red negative, green positive transfer "
               "(Holm-adjusted)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
