"""The transfer advisor: from a short probe, per task pair what the tasks do to each other, and
per task whether sharing is predicted to help, hurt or do nothing, what to train, and how to
group the tasks.

The probe trains the shared model (no surgery) for a few epochs on the run's split; after each
epoch it measures `kmtl/affinity.py`'s statistics on `PROBE_BATCHES` task-balanced batches
(`ROWS_PER_TASK` labelled rows of each task; kmtl/probe.py). Task j's predicted verdict comes from the relative
lookahead affinity r_j = sum_{i != j} Z[i, j] / Z[j, j]: how much the other tasks' steps add to
(or undo of) the progress task j's own step makes on it. It helps above `THRESHOLD`, hurts
below -`THRESHOLD`, and is no effect between; the threshold was fixed before any validation.
"""

import dataclasses

import numpy as np

PROBE_EPOCHS = 2
PROBE_BATCHES = 16
ROWS_PER_TASK = 256
THRESHOLD = 0.25
MIN_COLABELLED_ROWS = 16  # fewer co-labelled rows over the probe: no co-labelled cosine
HELPS, HURTS, NO_EFFECT = "helps", "hurts", "no effect"
VALIDATION = ("These verdicts are a screen, not a result: in kmtl's validation (README, \"The "
              "transfer advisor\") they did not beat always predicting no effect; a predicted "
              "hurt was always confirmed by the study, a predicted help never. Confirm them "
              "with `kmtl study`.")


@dataclasses.dataclass
class Accumulator:
  """Sums of the batch statistics over the probe."""
  num_tasks: int
  sums: dict = dataclasses.field(default_factory=dict)
  batches: int = 0

  def add(self, stats):
    for key, value in stats.items():
      value = np.asarray(value, np.float64)
      if key == "colabelled_cosine":  # weighted by its rows: a batch without any adds 0
        value = value * np.asarray(stats["colabelled_rows"])
      self.sums[key] = self.sums.get(key, 0.0) + value
    self.batches += 1

  def means(self):
    """{statistic: mean over batches}; the co-labelled cosine averaged over its rows."""
    out = {k: v / max(self.batches, 1) for k, v in self.sums.items()}
    rows = self.sums["colabelled_rows"]
    out["colabelled_cosine"] = np.where(rows > 0, self.sums["colabelled_cosine"]
                                        / np.maximum(rows, 1), np.nan)
    out["colabelled_rows"] = rows
    return out


def balanced_batch(masks, rng):
  """Row indices of one measurement batch: `ROWS_PER_TASK` labelled rows of each task (drawn
  with replacement from a task with fewer), T x `ROWS_PER_TASK` in all, one shape always."""
  parts = []
  for t in range(masks.shape[1]):
    rows = np.flatnonzero(masks[:, t] > 0)
    parts.append(rng.choice(rows, ROWS_PER_TASK, replace=len(rows) < ROWS_PER_TASK))
  return np.concatenate(parts)


def relative_affinity(lookahead):
  """[T] r_j = sum_{i != j} Z[i, j] / Z[j, j] (NaN where task j's own step did not lower its
  loss)."""
  own = np.diag(lookahead)
  others = lookahead.sum(axis=0) - own
  return np.where(own > 0, others / np.where(own > 0, own, 1.0), np.nan)


def verdict(score):
  if not np.isfinite(score):
    return NO_EFFECT
  return HELPS if score > THRESHOLD else HURTS if score < -THRESHOLD else NO_EFFECT


def grouping(names, verdicts, lookahead):
  """Groups of task names: a task predicted to be hurt trains alone; the others join a group
  whose every member's step helps it and is helped by its step (Z >= 0 both ways)."""
  groups = []
  for j, name in enumerate(names):
    if verdicts[name] == HURTS:
      groups.append([name])
      continue
    for group in groups:
      members = [names.index(g) for g in group]
      if verdicts[group[0]] != HURTS and all(
          lookahead[i, j] >= 0 and lookahead[j, i] >= 0 for i in members):
        group.append(name)
        break
    else:
      groups.append([name])
  return groups


def advice(names, means, train_counts):
  """The advisor's report from the probe's mean statistics: pairs, tasks and groups."""
  scores = relative_affinity(means["lookahead"])
  verdicts = {n: verdict(s) for n, s in zip(names, scores)}
  pairs = []
  for i in range(len(names)):
    for j in range(i + 1, len(names)):
      rows = int(means["colabelled_rows"][i, j])
      enough = rows >= MIN_COLABELLED_ROWS
      pairs.append({
          "pair": f"{names[i]}:{names[j]}", "colabelled_train_rows": train_counts[i][j],
          "cosine_all_rows": float(means["cosine"][i, j]),
          "cosine_colabelled": float(means["colabelled_cosine"][i, j]) if enough else None,
          "colabelled_rows_measured": rows,
          "norm_ratio": float(means["norms"][i] / max(means["norms"][j], 1e-12)),
          "lookahead": {f"{names[i]}->{names[j]}": float(means["lookahead"][i, j]),
                        f"{names[j]}->{names[i]}": float(means["lookahead"][j, i])}})
  tasks = [{"task": n, "relative_affinity": float(s) if np.isfinite(s) else None,
            "own_lookahead": float(means["lookahead"][k, k]), "verdict": verdicts[n],
            "recommendation": ("alone (single-task network)" if verdicts[n] == HURTS
                               else "shared (hard sharing, no surgery)")}
           for k, (n, s) in enumerate(zip(names, scores))]
  return {"pairs": pairs, "tasks": tasks,
          "groups": grouping(list(names), verdicts, means["lookahead"])}


def markdown(report):
  """The report as text: the pairs, then the tasks with their evidence, then the groups."""
  lines = ["| pair | co-labelled train rows | cosine, all rows | cosine, co-labelled | "
           "norm ratio | lookahead Z |", "|---|---|---|---|---|---|"]
  for p in report["pairs"]:
    colabelled = (f"{p['cosine_colabelled']:+.3f}" if p["cosine_colabelled"] is not None else
                  f"too few rows to measure ({p['colabelled_rows_measured']})")
    z = ", ".join(f"{k} {v:+.4f}" for k, v in p["lookahead"].items())
    lines.append(f"| {p['pair']} | {p['colabelled_train_rows']} | {p['cosine_all_rows']:+.3f} "
                 f"| {colabelled} | {p['norm_ratio']:.3g} | {z} |")
  lines += ["", "| task | own lookahead Z | relative affinity r | predicted | recommendation |",
            "|---|---|---|---|---|"]
  for t in report["tasks"]:
    r = "n/a" if t["relative_affinity"] is None else f"{t['relative_affinity']:+.3f}"
    lines.append(f"| {t['task']} | {t['own_lookahead']:+.4f} | {r} | {t['verdict']} | "
                 f"{t['recommendation']} |")
  lines += ["", "groups: " + " | ".join(", ".join(g) for g in report["groups"]), "", VALIDATION]
  return "\n".join(lines)
