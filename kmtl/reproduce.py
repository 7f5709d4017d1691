"""The negative-transfer study: `python -m kmtl.reproduce --out=study [--flagfile=flags/study.cfg]`.

Trains every configuration of the grid with every seed (cells in parallel worker processes),
writes each finished cell to `OUT/cells/` at once (an interrupted sweep resumes by skipping
them), then reports per task and configuration the mean and 95% CI over seeds, the paired
difference against the single-task baseline with its CI and paired t-test, and a verdict:
`OUT/study.md` (also printed), `OUT/cells.csv` (every cell and metric), `OUT/summary.json`
(every row of the statistics) and `OUT/transfer.png` (needs matplotlib: pip install
'kmtl[plot]').

Configurations are `arch[:surgery[:imbalance+imbalance]]`, e.g. `shared:gradnorm:lds`; the
default grid is the reference study's, and `--archs` with `--surgeries` replaces it by their
product (`independent` only with `none`). `gbm` adds the gradient-boosting baseline as one more
row, on the same splits.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from kmtl import atomic
from kmtl import config as config_lib
from kmtl import metrics as metrics_lib
from kmtl import study
from kmtl.data import io
from kmtl.data import schema

_OUT = flags.DEFINE_string("out", None, "Output directory of the study.")
_DATA = flags.DEFINE_string("data", None, "CSV or Parquet file; default: the embedded set.")
_TASKS = flags.DEFINE_string("tasks", "resistivity,hardness,amorphous", "Tasks, as in kmtl.run.")
_GRID = flags.DEFINE_list("grid", list(study.REFERENCE_GRID), "Configurations to compare.")
_ARCHS = flags.DEFINE_list("archs", [], "With --surgeries: the grid is their product.")
_SURGERIES = flags.DEFINE_list("surgeries", [], "With --archs: the grid is their product.")
_SEEDS = flags.DEFINE_integer("seeds", 5, "Number of seeds (0 .. seeds - 1).")
_JOBS = flags.DEFINE_integer("jobs", os.cpu_count() or 1, "Parallel worker processes.")
_THREADS = flags.DEFINE_integer("threads", 1, "Intra-op threads per worker process.")
_JIT = flags.DEFINE_bool("jit_compile", True, "Compile the training steps with XLA.")
_EPOCHS = flags.DEFINE_integer("epochs", 200, "Maximum epochs per cell.")
_PATIENCE = flags.DEFINE_integer("patience", 20, "Early-stopping patience.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Batch size.")
_LR = flags.DEFINE_float("lr", 1e-3, "Adam learning rate.")
_TASK_WEIGHTS = flags.DEFINE_string("task_weights", "inverse_count", "As in kmtl.run.")
_ALPHA = flags.DEFINE_float("alpha", 0.05, "Significance level of the verdicts.")
_ELEMENTS = flags.DEFINE_string("elements", ",".join(schema.DEFAULT_ELEMENTS),
                                "Element vocabulary, as in kmtl.run, or 'auto'.")
_GROUP_SPLIT = flags.DEFINE_bool("group_split", False, "Split by canonical composition.")
_AVERAGE_REPEATS = flags.DEFINE_bool("average_repeats", False,
                                     "Average repeated compositions into one row.")


def grid():
  if _ARCHS.value or _SURGERIES.value:
    if not (_ARCHS.value and _SURGERIES.value):
      raise ValueError("--archs and --surgeries go together")
    names = []
    for arch in _ARCHS.value:
      names += [arch] if arch == "independent" else [f"{arch}:{s}" for s in _SURGERIES.value]
  else:
    names = _GRID.value
  configs = [study.Configuration.parse(n) for n in names]
  if study.BASELINE not in [c.name for c in configs]:
    configs.insert(0, study.Configuration(study.BASELINE))
  return configs


def _elements():
  text = _ELEMENTS.value.strip()
  return text if text == "auto" else tuple(e.strip() for e in text.split(",") if e.strip())


def run_config(configuration, tasks, seed):
  arch = "independent" if configuration.name == study.GBM else configuration.arch
  weights = _TASK_WEIGHTS.value
  if weights not in config_lib.TASK_WEIGHTINGS:
    weights = tuple(float(v) for v in weights.split(","))
  return config_lib.RunConfig(
      data=config_lib.DataConfig(path=_DATA.value, tasks=tasks, elements=_elements(),
                                 group_split=_GROUP_SPLIT.value,
                                 average_repeats=_AVERAGE_REPEATS.value),
      train=config_lib.TrainConfig(
          arch=arch, surgery=configuration.surgery, task_weights=weights,
          epochs=_EPOCHS.value, patience=_PATIENCE.value, batch_size=_BATCH_SIZE.value,
          learning_rate=_LR.value, summaries=False, grad_stats=False,
          jit_compile=_JIT.value),
      imbalance=config_lib.ImbalanceConfig(methods=configuration.imbalance),
      seed=seed)


def report(out, cells, tasks):
  kinds = {schema.REGRESSION: list(metrics_lib.REGRESSION_METRICS + metrics_lib.LOG_METRICS),
           schema.BINARY: [m for m in metrics_lib.BINARY_METRICS if m != "threshold"]}
  rows = study.summarize(cells, tasks, kinds, _ALPHA.value)
  headline = {t.name: metrics_lib.headline(t) for t in tasks}
  table = study.markdown_table(rows, headline)
  atomic.write_text(os.path.join(out, "study.md"), table + "\n")
  atomic.write_text(os.path.join(out, "summary.json"), json.dumps(rows, indent=2) + "\n")
  lines = ["config,seed,task,metric,value"]
  for (name, seed), result in sorted(cells.items()):
    for task, values in result["test"].items():
      lines += [f"{name},{seed},{task},{m},{v}" for m, v in values.items() if m != "count"]
  atomic.write_text(os.path.join(out, "cells.csv"), "\n".join(lines) + "\n")
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    logging.warning("matplotlib is not installed: no transfer.png (pip install 'kmtl[plot]')")
  else:
    with atomic.atomic_path(os.path.join(out, "transfer.png")) as tmp:
      study.figure(rows, headline, tmp + ".png")
      os.replace(tmp + ".png", tmp)
  print(table)


def main(argv):
  if len(argv) > 1:
    sys.exit(f"kmtl.reproduce: error: unexpected arguments {argv[1:]}")
  try:
    if not _OUT.value:
      raise ValueError("--out is required")
    if _SEEDS.value < 1 or _JOBS.value < 1 or _THREADS.value < 1:
      raise ValueError("--seeds, --jobs and --threads must be >= 1")
    tasks = schema.parse_tasks(_TASKS.value)
    configs = grid()
    io.load_from_config(config_lib.DataConfig(path=_DATA.value, tasks=tasks,
                                              elements=_elements()))
    from kmtl.surgery import registry  # pylint: disable=g-import-not-at-top
    for c in configs:
      if c.name == study.GBM:
        continue
      try:
        if c.arch not in config_lib.ARCHITECTURES:
          raise ValueError(f"Invalid architecture {c.arch!r}. Expected one of "
                           f"{list(config_lib.ARCHITECTURES)}.")
        config_lib.TrainConfig(arch=c.arch, surgery=c.surgery)
        config_lib.ImbalanceConfig(methods=c.imbalance)
        registry.create(c.surgery)
      except ValueError as e:
        raise ValueError(f"--grid: {c.name}: {e}") from None
  except (ValueError, io.DataError, schema.SchemaError) as e:
    sys.exit(f"kmtl.reproduce: error: {e}")

  cells_dir = os.path.join(_OUT.value, "cells")
  os.makedirs(cells_dir, exist_ok=True)
  cells, todo = {}, []
  for c in configs:
    for seed in range(_SEEDS.value):
      path = study.cell_path(cells_dir, c.name, seed)
      if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
          cells[(c.name, seed)] = json.load(f)
      else:
        todo.append((c.name, seed, run_config(c, tasks, seed), path))
  logging.info("%d cells, %d already done, %d to run on %d workers",
               len(cells) + len(todo), len(cells), len(todo), _JOBS.value)
  if todo:
    study.run_grid(todo, min(_JOBS.value, len(todo)), lambda m: logging.info("%s", m),
                   _THREADS.value)
  for name, seed, _, path in todo:
    with open(path, encoding="utf-8") as f:
      cells[(name, seed)] = json.load(f)
  report(_OUT.value, cells, tasks)


if __name__ == "__main__":
  app.run(main)
