"""The transfer advisor against measured verdicts: per scenario, each task's predicted verdict
of a study's configuration against the single-task baseline beside the study's measured one,
with simple predictors beside the advisor, as confusion tables (tools/validate_advisor.py).

A scenario is a finished study (`kmtl study --out=DIR`) with the advisor's report on the same
data in DIR/advice (`kmtl advise <the study's data flags> --out=DIR/advice`), or a point of a
controlled experiment whose probe the tool runs itself.
"""

import collections
import dataclasses
import glob
import json
import os

from kmtl import advisor

# A study's verdicts as the advisor's classes; "no significant difference" is the verdict of
# studies reported before the posterior decided; an undecided comparison measures nothing.
VERDICT = {"negative transfer": advisor.HURTS, "positive transfer": advisor.HELPS,
           "equivalent": advisor.NO_EFFECT, "no significant difference": advisor.NO_EFFECT}
ORDER = (advisor.HURTS, advisor.NO_EFFECT, advisor.HELPS)
# Settings besides the data's that the probe shares with the study's cells.
SHARED_SETTINGS = ("train.batch_size", "train.learning_rate", "train.task_weights")


@dataclasses.dataclass(frozen=True)
class Scenario:
  """One scenario: its name, {task: measured verdict}, the study's cell seconds, the advisor's
  report and the probe's seconds."""
  name: str
  measured: dict
  study_seconds: float
  report: dict
  probe_seconds: float


def measured_verdicts(rows, config):
  """{task: measured verdict} of `config` in a study's summary rows (its headline rows)."""
  return {r["task"]: VERDICT[r["verdict"]] for r in rows
          if r["config"] == config and r.get("verdict") in VERDICT}


def read_cells(folder):
  """The cell records of the study in `folder`, in file-name order."""
  out = []
  for path in sorted(glob.glob(os.path.join(folder, "cells", "*.json"))):
    with open(path, encoding="utf-8") as f:
      out.append(json.load(f))
  return out


def differing_settings(cell_settings, advice_settings):
  """Names of the data and shared training settings on which a study's cell and the advice
  differ (the data fingerprint among them)."""
  keys = sorted(k for k in set(cell_settings) | set(advice_settings)
                if k.startswith("data.") or k in SHARED_SETTINGS)
  return [k for k in keys if cell_settings.get(k) != advice_settings.get(k)]


def study_scenario(folder, config):
  """The scenario of a finished study in `folder` and its advice in `folder`/advice; raises
  ValueError naming the file when either is missing or they were run on different settings."""
  path = os.path.join(folder, "advice", "advice.json")
  summary = os.path.join(folder, "summary.json")
  for needed in (summary, path):
    if not os.path.exists(needed):
      raise ValueError(f"{needed}: not found; a scenario is a finished study with the advice "
                       f"of `kmtl advise <its data flags> --out={os.path.join(folder, 'advice')}`")
  with open(path, encoding="utf-8") as f:
    advice = json.load(f)
  if not {"pairs", "tasks", "probe_seconds"} <= set(advice):
    raise ValueError(f"{path}: not an advice.json of `kmtl advise --out`")
  with open(summary, encoding="utf-8") as f:
    measured = measured_verdicts(json.load(f), config)
  cells = read_cells(folder)
  ran = [c for c in cells if c.get("config") == config]
  if not ran or not measured:
    raise ValueError(f"{folder}: the study has no `{config}` cells with verdicts")
  differing = differing_settings(ran[0]["settings"], advice.get("settings", {}))
  if differing:
    raise ValueError(f"{path}: the probe ran on other settings than the study's "
                     f"({', '.join(differing[:6])}); advise with the study's data flags")
  seconds = sum(c.get("seconds", 0.0) for c in cells)
  return Scenario(os.path.basename(os.path.normpath(folder)), measured, seconds, advice,
                  advice["probe_seconds"])


def predictions(report):
  """{predictor: {task: verdict}}: the advisor's and the simple predictors'."""
  cosine = collections.defaultdict(list)
  for p in report["pairs"]:
    a, b = p["pair"].split(":")
    cosine[a].append(p["cosine_all_rows"])
    cosine[b].append(p["cosine_all_rows"])
  tasks = [t["task"] for t in report["tasks"]]
  return {"advisor": {t["task"]: t["verdict"] for t in report["tasks"]},
          "always no effect": {t: advisor.NO_EFFECT for t in tasks},
          "always hurts": {t: advisor.HURTS for t in tasks},
          "cosine < 0 hurts": {t: advisor.HURTS if sum(cosine[t]) / len(cosine[t]) < 0
                               else advisor.NO_EFFECT for t in tasks}}


def confusion(pairs):
  """A Markdown confusion table of [(predicted, measured)] (rows predicted) and its accuracy."""
  counts = collections.Counter(pairs)
  lines = ["| predicted \\ measured | " + " | ".join(ORDER) + " |", "|---|---|---|---|"]
  lines += [f"| {p} | " + " | ".join(str(counts[(p, m)]) for m in ORDER) + " |" for p in ORDER]
  right = sum(counts[(v, v)] for v in ORDER)
  return "\n".join(lines), right / max(len(pairs), 1)


@dataclasses.dataclass
class Tally:
  """Every predictor's (predicted, measured) verdicts over the scenarios added."""
  config: str
  outcomes: dict = dataclasses.field(default_factory=lambda: collections.defaultdict(list))
  wrong: list = dataclasses.field(default_factory=list)
  ratios: list = dataclasses.field(default_factory=list)

  def add(self, scenario):
    self.ratios.append(scenario.probe_seconds / scenario.study_seconds
                       if scenario.study_seconds else float("nan"))
    for predictor, verdicts in predictions(scenario.report).items():
      for task, truth in scenario.measured.items():
        self.outcomes[predictor].append((verdicts[task], truth))
        if predictor == "advisor" and verdicts[task] != truth:
          self.wrong.append(f"{scenario.name}, {task}: predicted {verdicts[task]}, "
                            f"measured {truth}")

  def markdown(self):
    ratios = sorted(self.ratios)
    lines = [f"{len(ratios)} scenarios, {len(self.outcomes['advisor'])} task verdicts of "
             f"`{self.config}` against STL; probe compute / study compute: median "
             f"{ratios[len(ratios) // 2]:.4f}, max {ratios[-1]:.4f}", ""]
    for predictor, pairs in self.outcomes.items():
      table, accuracy = confusion(pairs)
      right = round(accuracy * len(pairs))
      lines += [f"{predictor}: accuracy {accuracy:.2f} ({right} / {len(pairs)})", "", table, ""]
    return "\n".join(lines + ["advisor wrong on:"] + [f"- {w}" for w in self.wrong])
