"""The transfer advisor against measured verdicts: its probe on every point of finished
controlled experiments (`kmtl study --experiment=NAME --out=DIR`; a point met again in another
experiment, such as the default, counts once), each task's predicted verdict
of hard sharing (`shared`, no surgery) against the experiment's measured one, beside simple
predictors, as confusion tables, with the compute the probe used against the study's.

    python tools/validate_advisor.py --experiments=DIR,DIR,... [--out=FILE.md]
"""

import collections
import glob
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from kmtl import advisor
from kmtl import atomic
from kmtl import config as config_lib
from kmtl import probe
from kmtl import transfer_experiments
from kmtl.data import knobs
from kmtl.data import schema

_EXPERIMENTS = flags.DEFINE_list("experiments", [], "Output folders of finished experiments.")
_OUT = flags.DEFINE_string("out", None, "Also write the tables to this Markdown file.")
_CONFIG = flags.DEFINE_string("config", "shared", "The configuration whose verdicts are "
                              "predicted.")

VERDICT = {"negative transfer": advisor.HURTS, "positive transfer": advisor.HELPS,
           "no significant difference": advisor.NO_EFFECT}
ORDER = (advisor.HURTS, advisor.NO_EFFECT, advisor.HELPS)


def scenarios(folder):
  """[(scenario name, DataConfig, {task: measured verdict}, study seconds)] of one experiment."""
  with open(os.path.join(folder, "experiment.json"), encoding="utf-8") as f:
    saved = json.load(f)
  name = saved["experiment"]
  preset = transfer_experiments.PRESETS[name]
  out = []
  for label, sub, point in transfer_experiments.points(name, knobs.Knobs()):
    measured = {r["task"]: VERDICT[r["verdict"]] for r in saved["rows"]
                if r["point"] == label and r["config"] == _CONFIG.value}
    seconds = 0.0
    for path in glob.glob(os.path.join(folder, sub, "cells", "*.json")):
      with open(path, encoding="utf-8") as f:
        seconds += json.load(f).get("seconds", 0.0)
    data = config_lib.DataConfig(tasks=schema.parse_tasks(preset.tasks), synthetic_knobs=point)
    out.append((f"{name}: {label}", data, measured, seconds))
  return out


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
  """A Markdown confusion table of [(predicted, measured)] and its accuracy."""
  counts = collections.Counter(pairs)
  lines = ["| predicted \\ measured | " + " | ".join(ORDER) + " |", "|---|---|---|---|"]
  lines += [f"| {p} | " + " | ".join(str(counts[(p, m)]) for m in ORDER) + " |" for p in ORDER]
  right = sum(counts[(v, v)] for v in ORDER)
  return "\n".join(lines), right / max(len(pairs), 1)


def main(argv):
  del argv
  outcomes, wrong, ratios, seen = collections.defaultdict(list), [], [], set()
  for folder in _EXPERIMENTS.value:
    for name, data, measured, seconds in scenarios(folder):
      if (data.tasks, data.synthetic_knobs) in seen:  # the default point of several presets
        continue
      seen.add((data.tasks, data.synthetic_knobs))
      cfg = config_lib.RunConfig(data=data, train=config_lib.TrainConfig(batch_size=32))
      report, probe_seconds = probe.run(cfg)
      ratios.append(probe_seconds / seconds if seconds else float("nan"))
      for predictor, verdicts in predictions(report).items():
        for task, truth in measured.items():
          outcomes[predictor].append((verdicts[task], truth))
          if predictor == "advisor" and verdicts[task] != truth:
            wrong.append(f"{name}, {task}: predicted {verdicts[task]}, measured {truth}")
      print(f"{name}: probe {probe_seconds:.1f} s, study {seconds:.0f} s", flush=True)
  lines = [f"{len(ratios)} scenarios, {len(outcomes['advisor'])} task verdicts of "
           f"`{_CONFIG.value}` against STL; probe compute / study compute: median "
           f"{sorted(ratios)[len(ratios) // 2]:.4f}, max {max(ratios):.4f}", ""]
  for predictor, pairs in outcomes.items():
    table, accuracy = confusion(pairs)
    lines += [f"{predictor}: accuracy {accuracy:.2f}", "", table, ""]
  lines += ["advisor wrong on:"] + [f"- {w}" for w in wrong]
  text = "\n".join(lines)
  print(text)
  if _OUT.value:
    atomic.write_text(_OUT.value, text + "\n")


if __name__ == "__main__":
  app.run(main)
