"""The transfer advisor against measured verdicts (kmtl/advisor_validation.py): each task's
predicted verdict of hard sharing (`shared`, no surgery) against the measured one, beside simple
predictors, as confusion tables, with the compute the probe used against the study's.

Scenarios are finished studies with the advisor's report on the same data,

    kmtl study <data flags> --out=DIR ...
    kmtl advise <the same data flags> --out=DIR/advice

and every point of finished controlled experiments (`kmtl study --experiment=NAME --out=DIR`),
whose probes this tool runs (a point met again in another experiment, such as the default,
counts once):

    python tools/validate_advisor.py [--studies=DIR,...] [--experiments=DIR,...] [--out=FILE.md]
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from kmtl import advisor_validation
from kmtl import atomic
from kmtl import config as config_lib
from kmtl import transfer_experiments
from kmtl.data import knobs
from kmtl.data import schema

_STUDIES = flags.DEFINE_list("studies", [], "Folders of finished studies, each with the "
                             "advisor's report of its data in DIR/advice.")
_EXPERIMENTS = flags.DEFINE_list("experiments", [], "Output folders of finished experiments.")
_OUT = flags.DEFINE_string("out", None, "Also write the tables to this Markdown file.")
_CONFIG = flags.DEFINE_string("config", "shared", "The configuration whose verdicts are "
                              "predicted.")


def experiment_scenarios(folder, seen):
  """The scenarios of one finished experiment, each point's probe run here; skips points in
  `seen` ({(tasks, knobs)}) and adds the others."""
  from kmtl import probe  # pylint: disable=g-import-not-at-top
  with open(os.path.join(folder, "experiment.json"), encoding="utf-8") as f:
    saved = json.load(f)
  name = saved["experiment"]
  preset = transfer_experiments.PRESETS[name]
  for label, sub, point in transfer_experiments.points(name, knobs.Knobs()):
    data = config_lib.DataConfig(tasks=schema.parse_tasks(preset.tasks), synthetic_knobs=point)
    if (data.tasks, point) in seen:
      continue
    seen.add((data.tasks, point))
    measured = advisor_validation.measured_verdicts(
        [r for r in saved["rows"] if r["point"] == label], _CONFIG.value)
    seconds = sum(c.get("seconds", 0.0)
                  for c in advisor_validation.read_cells(os.path.join(folder, sub)))
    cfg = config_lib.RunConfig(data=data, train=config_lib.TrainConfig(batch_size=32))
    report, probe_seconds = probe.run(cfg)
    yield advisor_validation.Scenario(f"{name}: {label}", measured, seconds, report,
                                      probe_seconds)


def main(argv):
  del argv
  if not _STUDIES.value and not _EXPERIMENTS.value:
    sys.exit("validate_advisor: error: pass --studies and/or --experiments")
  tally = advisor_validation.Tally(_CONFIG.value)
  try:
    studies = [advisor_validation.study_scenario(f, _CONFIG.value) for f in _STUDIES.value]
  except ValueError as e:
    sys.exit(f"validate_advisor: error: {e}")
  seen = set()
  scenarios = studies + [s for folder in _EXPERIMENTS.value
                         for s in experiment_scenarios(folder, seen)]
  for scenario in scenarios:
    tally.add(scenario)
    print(f"{scenario.name}: probe {scenario.probe_seconds:.1f} s, "
          f"study {scenario.study_seconds:.0f} s", flush=True)
  text = tally.markdown()
  print(text)
  if _OUT.value:
    atomic.write_text(_OUT.value, text + "\n")


if __name__ == "__main__":
  app.run(main)
