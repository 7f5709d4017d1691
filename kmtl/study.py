"""The negative-transfer study: a grid of configurations over seeds, paired against STL.

A cell is one configuration trained with one seed. Every configuration with a given seed uses
the same data split (splits depend only on the data and the seed), so each configuration's
metric is compared with the single-task (`independent`) baseline seed by seed: the paired
difference d_s = metric(config, s) - metric(STL, s), its mean, a 95% t confidence interval and
a paired t-test. A cell's verdict is "negative transfer" or "positive transfer" when p < alpha
(the sign says which, counting lower-is-better metrics such as MAE the other way), otherwise
"no significant difference" (also when the test is undefined: fewer than 2 seeds, or identical
differences on every seed).
"""

import dataclasses
import math

import numpy as np
from scipy import stats

BASELINE = "independent"
GBM = "gbm"  # the gradient-boosting baseline, one more row of the study
LOWER_IS_BETTER = {"mae", "rmse", "mape", "tail_mae", "mae_log10"}
REFERENCE_GRID = ("independent", "shared", "shared:pcgrad", "shared:gradnorm",
                  "shared:gradscale", "shared:gradnorm:lds", "structured:gradnorm")


@dataclasses.dataclass(frozen=True)
class Configuration:
  """One grid entry, written `arch[:surgery[:imbalance+imbalance]]`."""
  arch: str
  surgery: str = "none"
  imbalance: tuple = ()

  @property
  def name(self):
    parts = [self.arch]
    if self.surgery != "none" or self.imbalance:
      parts.append(self.surgery)
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
    imbalance = tuple(p for p in parts[2].split("+") if p) if len(parts) > 2 else ()
    return cls(parts[0], surgery, imbalance)


def mean_ci(values, confidence=0.95):
  """(mean, half-width of the t confidence interval); half-width NaN for fewer than 2 values."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if len(values) < 2:
    return mean, float("nan")
  sem = float(values.std(ddof=1)) / math.sqrt(len(values))
  return mean, float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sem)


def paired_comparison(values, baseline, metric, alpha=0.05):
  """Paired difference of `values` against `baseline` (same seeds, same order).

  Returns {"diff": mean difference, "ci": its 95% half-width, "p": paired t-test p-value,
  "verdict": "negative transfer" | "positive transfer" | "no significant difference"}.
  """
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  mean, half = mean_ci(diff)
  if len(diff) < 2 or np.allclose(diff, diff[0]):
    p = float("nan")  # the t-test is undefined without spread; no verdict is claimed
  else:
    p = float(stats.ttest_rel(values, baseline).pvalue)
  better = -mean if metric in LOWER_IS_BETTER else mean
  if not p < alpha:
    verdict = "no significant difference"
  else:
    verdict = "positive transfer" if better > 0 else "negative transfer"
  return {"diff": mean, "ci": half, "p": p, "verdict": verdict}


def summarize(cells, tasks, metrics_by_kind, alpha=0.05):
  """Rows of the study table from finished cells.

  Args:
    cells: {(configuration name, seed): {"test": {task: {metric: value}}}}.
    tasks: the `schema.TaskSpec`s.
    metrics_by_kind: {task kind: [metric names]} to report.
  Returns:
    A list of dicts: config, task, metric, n, mean, ci, and for non-baseline configurations
    with paired seeds diff, diff_ci, p, verdict.
  """
  configs = sorted({c for c, _ in cells}, key=lambda c: (c != BASELINE, c))
  rows = []
  for config in configs:
    seeds = sorted(s for c, s in cells if c == config)
    paired = [s for s in seeds if (BASELINE, s) in cells]
    for task in tasks:
      for metric in metrics_by_kind[task.kind]:
        value = lambda c, s: cells[(c, s)]["test"][task.name].get(metric)
        values = [value(config, s) for s in seeds]
        if any(v is None or not np.isfinite(v) for v in values):
          continue
        mean, half = mean_ci(values)
        row = {"config": config, "task": task.name, "metric": metric, "n": len(values),
               "mean": mean, "ci": half}
        baseline_known = all(value(BASELINE, s) is not None and np.isfinite(value(BASELINE, s))
                             for s in paired)
        if config != BASELINE and len(paired) >= 2 and baseline_known:
          comparison = paired_comparison([value(config, s) for s in paired],
                                         [value(BASELINE, s) for s in paired], metric, alpha)
          row.update({"diff": comparison["diff"], "diff_ci": comparison["ci"],
                      "p": comparison["p"], "verdict": comparison["verdict"]})
        rows.append(row)
  return rows


def markdown_table(rows, headline):
  """The study table for the headline metric of each task ({task: metric})."""
  lines = ["| configuration | task | metric | n | mean +- 95% CI | diff vs STL +- 95% CI | p | "
           "verdict |", "|---|---|---|---|---|---|---|---|"]
  for row in rows:
    if headline.get(row["task"]) != row["metric"]:
      continue
    diff = (f"{row['diff']:+.4f} +- {row['diff_ci']:.4f}" if "diff" in row else "baseline")
    p = f"{row['p']:.3g}" if "p" in row else ""
    lines.append(f"| {row['config']} | {row['task']} | {row['metric']} | {row['n']} | "
                 f"{row['mean']:.4f} +- {row['ci']:.4f} | {diff} | {p} | "
                 f"{row.get('verdict', '')} |")
  return "\n".join(lines)


def figure(rows, headline, path):
  """PNG: per task, bars of the paired difference vs STL with 95% CIs per configuration."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  tasks = list(headline)
  fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    chosen = [r for r in rows if r["task"] == task and r["metric"] == headline[task]
              and "diff" in r]
    names = [r["config"] for r in chosen]
    colours = ["tab:red" if r["verdict"] == "negative transfer" else
               "tab:green" if r["verdict"] == "positive transfer" else "tab:grey"
               for r in chosen]
    ax.barh(names, [r["diff"] for r in chosen], xerr=[r["diff_ci"] for r in chosen],
            color=colours, capsize=3)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_title(f"{task}: {headline[task]} - STL")
    ax.invert_yaxis()
  fig.suptitle("paired difference vs STL (95% CI); red negative, green positive transfer")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _init_worker(threads):
  """`threads` intra-op threads per worker process (1 by default), so `--jobs` processes do
  not oversubscribe the cores."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)


def _run_cell(job):
  name, seed, cfg, path = job
  import json  # pylint: disable=g-import-not-at-top
  import resource  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  from kmtl import atomic  # pylint: disable=g-import-not-at-top
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  if name == GBM:
    result = experiment.gradient_boosting_run(cfg)
  else:
    result = experiment.train_and_evaluate(cfg)
  # ru_maxrss is in KiB on Linux; each cell runs in a fresh process (maxtasksperchild=1).
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  result = experiment.json_safe({**result, "config": name, "seed": seed,
                                 "wall_seconds": time.perf_counter() - start,
                                 "peak_rss_mib": peak_mib})
  atomic.write_text(path, json.dumps(result, indent=2, allow_nan=False) + "\n")
  return name, seed, result


def cell_path(cells_dir, name, seed):
  return f"{cells_dir}/{name.replace(':', '__')}__seed{seed}.json"


def run_grid(jobs_list, num_workers, log, threads=1):
  """Runs (name, seed, RunConfig, path) jobs in `num_workers` processes of `threads` intra-op
  threads each, logging progress and an ETA. Each finished cell is written to its path
  atomically as soon as it ends."""
  import multiprocessing  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  start, done = time.perf_counter(), 0
  context = multiprocessing.get_context("spawn")
  with context.Pool(num_workers, initializer=_init_worker, initargs=(threads,),
                    maxtasksperchild=1) as pool:
    for name, seed, result in pool.imap_unordered(_run_cell, jobs_list):
      done += 1
      elapsed = time.perf_counter() - start
      eta = elapsed / done * (len(jobs_list) - done)
      log(f"[{done}/{len(jobs_list)}] {name} seed {seed}: {result['epochs_run']} epochs in "
          f"{result['wall_seconds']:.0f} s, peak RSS {result['peak_rss_mib']:.0f} MiB; "
          f"elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min")
