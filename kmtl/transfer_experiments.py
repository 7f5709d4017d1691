"""Controlled experiments on what drives transfer: `kmtl study --experiment=NAME` runs the study
once per value of one knob of the synthetic generator (kmtl/data/knobs.py), in
`OUT/<point>/`, and sets the paired transfer (multi-task minus single-task, 95% CI) against the
knob, beside the gradient cosine measured in the same runs: `OUT/experiment.md` (also
printed), `OUT/experiment.json` and `OUT/experiment.png`. Holm's correction of the corrected
p runs over every headline comparison of the experiment; each verdict is its comparison's
posterior against the ROPE (kmtl/verdicts.py), which no family size changes.
"""

import dataclasses
import json
import os
import re

import numpy as np

from kmtl import atomic
from kmtl import verdicts
from kmtl.data import controlled
from kmtl.data import knobs as knobs_lib

GRID = ("independent", "shared", "shared:pcgrad", "shared:gradnorm", "shared:gradscale")


@dataclasses.dataclass(frozen=True)
class Preset:
  """One knob's grid: what varies, the tasks, and ((label, {Knobs field: value}), ...)."""
  knob: str
  tasks: str
  points: tuple


PRESETS = {
    "forms": Preset("forms, resistivity / hardness", "resistivity,hardness", (
        ("polynomial / power law (default)", {}),
        ("polynomial / polynomial", {"forms": (("hardness", "polynomial"),)}),
        ("power law / power law", {"forms": (("resistivity", "power_law"),)}),
        ("linear / exponential", {"forms": (("resistivity", "linear"),
                                            ("hardness", "exponential"))}))),
    "imbalance": Preset("hardness labels (resistivity 52,388)", "resistivity,hardness", (
        ("800 (default)", {}), ("4,000", {"counts": (("hardness", 4000),)}),
        ("20,000", {"counts": (("hardness", 20_000),)}))),
    "overlap": Preset("share of hardness rows with resistivity", "resistivity,hardness", (
        ("0", {"overlap": 0.0}), ("0.6 (default)", {}), ("1", {"overlap": 1.0}))),
    "latent": Preset("correlation of noise-free log targets", "resistivity,hardness", (
        ("default forms", {}), ("0", {"latent": 0.0}), ("0.5", {"latent": 0.5}),
        ("0.9", {"latent": 0.9}))),
    # The textbook regime for positive transfer: a scarce task whose every row also carries
    # an abundant task driven by the same latent factor.
    "scarce": Preset("hardness labels, each on a resistivity row (resistivity 5,000; "
                     "target corr. 0.9)", "resistivity,hardness", tuple(
                         (str(n), {"counts": (("resistivity", 5000), ("hardness", n)),
                                   "overlap": 1.0, "latent": 0.9}) for n in (30, 100, 300))),
    "derived": Preset("thermal conductivity", "resistivity,thermal_conductivity", tuple(
        (kind.replace("_", " "), {"conductivity": kind}) for kind in knobs_lib.CONDUCTIVITY)),
}


def slug(label):
  return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def points(name, base_knobs):
  """[(label, folder name, Knobs)] of preset `name`, each point's knob set on `base_knobs`."""
  return [(label, slug(label), dataclasses.replace(base_knobs, **changes))
          for label, changes in PRESETS[name].points]


def _cosine(cells, config, pair):
  """Mean over seeds of a configuration's training-mean gradient cosine of `pair`."""
  values = [c["grad"]["cosine"][pair] for (name, _), c in cells.items()
            if name == config and pair in c.get("grad", {}).get("cosine", {})]
  return float(np.mean(values)) if values else float("nan")


def summarize(rows_by_point, cells_by_point, headline):
  """Experiment rows: per point, task and multi-task configuration, the paired transfer in
  the headline metric with its CI, its corrected p Holm-adjusted over the experiment, the
  posterior and its verdict (each comparison's own, whatever the family), and the
  configuration's mean gradient cosine between the tasks."""
  out = []
  for label, rows in rows_by_point.items():
    tasks = list(headline)
    pair = f"{tasks[0]}:{tasks[1]}"
    for r in rows:
      if "diff" in r and headline.get(r["task"]) == r["metric"] and np.isfinite(r["p"]):
        out.append({"point": label, "config": r["config"], "task": r["task"],
                    "metric": r["metric"], "n": r["n"], "failed": r["failed"],
                    "diff": r["diff"], "diff_ci": r["diff_ci"], "p": r["p"],
                    "verdict": r.get("verdict", "undecided"),
                    "posterior": [r.get(k, float("nan"))
                                  for k in ("p_better", "p_equivalent", "p_worse")],
                    "cosine": _cosine(cells_by_point[label], r["config"], pair)})
  for row, adjusted in zip(out, verdicts.holm([r["p"] for r in out]) if out else []):
    row["p_holm"] = adjusted
  return out


def markdown(rows, preset, correlations):
  """The experiment table: one line per point, task and configuration."""
  lines = [f"| {preset.knob} | target corr. | task | configuration | n | transfer +- 95% CI | "
           "p (Holm) | P(better / equivalent / worse) | verdict | grad cosine |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    corr = correlations.get(r["point"], float("nan"))
    posterior = " / ".join(f"{v:.2f}" for v in r["posterior"])
    lines.append(f"| {r['point']} | {corr:.2f} | {r['task']} ({r['metric']}) | {r['config']} "
                 f"| {r['n']} | {r['diff']:+.4f} +- {r['diff_ci']:.4f} | {r['p_holm']:.3g} | "
                 f"{posterior} | {r['verdict']} | {r['cosine']:.3f} |")
  return "\n".join(lines)


def figure(rows, preset, path):
  """PNG: per task, the transfer against the knob per configuration (95% CI), and the
  gradient cosine against the knob."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  labels = list(dict.fromkeys(r["point"] for r in rows))
  tasks = list(dict.fromkeys(r["task"] for r in rows))
  configs = list(dict.fromkeys(r["config"] for r in rows))
  fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(4.6 * (len(tasks) + 1), 4.2))
  x = np.arange(len(labels))
  for ax, task in zip(axes, tasks + ["cosine"]):
    for k, config in enumerate(configs):
      chosen = {r["point"]: r for r in rows if r["config"] == config
                and r["task"] == (tasks[0] if task == "cosine" else task)}
      ys = [chosen[p]["cosine" if task == "cosine" else "diff"] if p in chosen else np.nan
            for p in labels]
      errs = None if task == "cosine" else [chosen[p]["diff_ci"] if p in chosen else 0
                                            for p in labels]
      ax.errorbar(x + 0.06 * (k - len(configs) / 2), ys, yerr=errs, marker="o", capsize=3,
                  label=config)
    ax.axhline(0.0, color="black", linewidth=0.8)
    metric = next((r["metric"] for r in rows if r["task"] == task), "")
    ax.set_title("gradient cosine between the tasks" if task == "cosine"
                 else f"{task}: {metric} MTL - STL")
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
  axes[0].legend(fontsize=7)
  fig.suptitle(f"transfer against {preset.knob} (95% CI over seeds)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write(out, name, rows, correlations):
  """experiment.md (returned), experiment.json and experiment.png in `out`."""
  preset = PRESETS[name]
  table = markdown(rows, preset, correlations)
  atomic.write_text(os.path.join(out, "experiment.md"), table + "\n")
  atomic.write_text(os.path.join(out, "experiment.json"), json.dumps(
      {"experiment": name, "knob": preset.knob, "rows": rows,
       "target_correlation": correlations}, indent=2) + "\n")
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return table
  with atomic.atomic_path(os.path.join(out, "experiment.png")) as tmp:
    figure(rows, preset, tmp + ".png")
    os.replace(tmp + ".png", tmp)
  return table


def report(out, name, data_by_point, rows_by_point, cells_by_point):
  """Writes the experiment `name` of the studies {point: DataConfig} with their summary rows
  and cells into `out`; returns its table."""
  from kmtl import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
  tasks = next(iter(data_by_point.values())).tasks
  headline = {t.name: metrics_lib.headline(t) for t in tasks}
  correlations = {}
  if {t.name for t in tasks} >= {"resistivity", "hardness"}:
    correlations = {label: controlled.target_correlation(data.synthetic_knobs)
                    for label, data in data_by_point.items()}
  rows = summarize(rows_by_point, cells_by_point, headline)
  return write(out, name, rows, correlations)
