"""The negative-transfer study: `kmtl study --out=study [--flagfile=flags/study.cfg]` (also
`python -m kmtl.study`, or `python -m kmtl.reproduce` as before).

Trains every configuration of the grid with every seed (cells in parallel worker processes;
with `--cv=K`, the cells of a configuration are the K folds of one K-fold split, fold k with
seed k, and with `--repeats=R` those of R such splits), writes each finished cell to
`OUT/cells/` at once with the settings it ran with (an interrupted sweep resumes by skipping
them; a cell that failed is recorded with its reason and kept, `--retry_failed` runs it again;
resuming with other settings is refused, naming them, unless `--fresh`), then reports per task
and configuration the mean and 95% CI over the splits, the paired difference against the
single-task baseline with its CI, the corrected resampled t-test's Holm-adjusted p, the
posterior beside the ROPE, and a verdict (see kmtl/verdicts.py):
`OUT/study.md` (also printed), `OUT/cells.csv` (every cell and metric), `OUT/summary.json`
(every row of the statistics) and `OUT/transfer.png` (needs matplotlib: pip install
'kmtl[plot]').

Configurations are `arch[:surgery[(name=value;...)][:imbalance+imbalance]]`, e.g.
`shared:gradnorm:lds` or `shared:gradnorm(alpha=0.5)`; the
default grid is the reference study's, and `--archs` with `--surgeries` replaces it by their
product (`independent` only with `none`). `gbm` adds the gradient-boosting baseline as one more
row, on the same splits.
"""

import dataclasses
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags
from absl import logging

from kmtl import atomic
from kmtl import config as config_lib
from kmtl import data_flags
from kmtl import entry
from kmtl import knob_flags
from kmtl import model_flags
from kmtl import provenance
from kmtl import quiet
from kmtl import resampled_tests
from kmtl import study_report
from kmtl import sweep
from kmtl import training_flags
from kmtl import transfer_experiments
from kmtl import tuning_flags
from kmtl import uncertainty_flags
from kmtl import verdicts
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits
from kmtl.data import streaming

PROG = "kmtl.study"  # the program name in error lines (kmtl/reproduce.py sets its own)

_OUT = flags.DEFINE_string("out", None, "Output directory of the study.")
_GRID = flags.DEFINE_list("grid", list(verdicts.REFERENCE_GRID), "Configurations to compare.")
_ARCHS = flags.DEFINE_list("archs", [], "With --surgeries: the grid is their product.")
_SURGERIES = flags.DEFINE_list("surgeries", [], "With --archs: the grid is their product.")
_SEEDS = flags.DEFINE_integer("seeds", 5, "Number of seeds (0 .. seeds - 1).")
_JOBS = flags.DEFINE_integer("jobs", os.cpu_count() or 1, "Parallel worker processes.")
_THREADS = flags.DEFINE_integer("threads", 1, "Intra-op threads per worker process.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 1, "With --cv=K: repeated K-fold cross-validation, the compositions reshuffled "
    "into K folds R times (each shuffle fixed), K x R cells per configuration; every row is "
    "tested once per repeat.")
_ALPHA = flags.DEFINE_float("alpha", 0.05, "The level of the tests: the smallest detectable "
                             "difference is stated at it.")
_TARGET_EFFECT = flags.DEFINE_string(
    "target_effect", "", "The difference the report says how many splits would find (80% "
    "power), per metric as METRIC:SIZE or METRIC:PERCENT%, comma-separated; a metric not "
    "named uses its ROPE.")
_ROPE = flags.DEFINE_string(
    "rope", "", "Regions of practical equivalence over the defaults "
    f"({resampled_tests.DEFAULT_ROPES}), as METRIC:WIDTH or METRIC:PERCENT% (of the "
    "baseline's mean), comma-separated: a difference within it counts as no difference.")
_FRESH = flags.DEFINE_bool("fresh", False, "Remove the cells of an earlier study in --out and "
                           "start again (needed to change settings).")
_RETRY_FAILED = flags.DEFINE_bool("retry_failed", False, "Run the cells recorded as failed "
                                  "again.")
_GRAD_SPACE = flags.DEFINE_enum(
    "grad_space", "parameters", ["parameters", "representation"],
    "Per-task gradients of the shared configurations' parameters or of their representation "
    "(kmtl/grad_space.py); other architectures always use their parameters.")
_EXECUTOR = flags.DEFINE_enum(
    "executor", "local", ["local", "dask"], "Where cells run: local worker processes "
    "(--jobs), or the Dask distributed cluster at --address (pip install 'kmtl[dask]').")
_ADDRESS = flags.DEFINE_string("address", None, "With --executor=dask: the scheduler, "
                               "HOST:PORT.")
_EXPERIMENT = flags.DEFINE_enum(
    "experiment", None, list(transfer_experiments.PRESETS), "A controlled experiment: the "
    "study once per value of one knob of the synthetic set (kmtl/transfer_experiments.py), "
    "with the grid none, pcgrad, gradnorm and gradscale against STL unless --grid is given.")
_DATA_FLAGS = data_flags.define()
_MODEL_FLAGS = model_flags.define()
_TRAINING_FLAGS = training_flags.define()
_TUNING_FLAGS = tuning_flags.define()
_UNCERTAINTY_FLAGS = uncertainty_flags.define()


def grid():
  if _ARCHS.value or _SURGERIES.value:
    if not (_ARCHS.value and _SURGERIES.value):
      raise ValueError("--archs and --surgeries go together")
    names = []
    for arch in _ARCHS.value:
      names += ([arch] if arch in config_lib.SEPARATE_NETWORKS
                else [f"{arch}:{s}" for s in _SURGERIES.value])
  else:
    names = _GRID.value
  configs = [verdicts.Configuration.parse(n) for n in names]
  if verdicts.BASELINE not in [c.name for c in configs]:
    configs.insert(0, verdicts.Configuration(verdicts.BASELINE))
  return configs


def run_config(configuration, data, seed):
  """The RunConfig of one cell: `configuration` with `seed` on the study's data settings."""
  arch = "independent" if configuration.name == verdicts.GBM else configuration.arch
  try:
    model = {**_TRAINING_FLAGS.model_settings(), **_MODEL_FLAGS.settings()}
    if arch != "groups":
      model["groups"] = ()
    return config_lib.RunConfig(
        data=data, model=config_lib.ModelConfig(**model),
        loss=config_lib.LossConfig(**_TRAINING_FLAGS.loss_settings()),
        train=config_lib.TrainConfig(
            arch=arch, surgery=configuration.surgery,
            surgery_kwargs=configuration.surgery_args, summaries=False,
            grad_stats=bool(_EXPERIMENT.value) and arch not in config_lib.SEPARATE_NETWORKS,
            grad_space=_GRAD_SPACE.value if arch == "shared" else "parameters",
            **_TRAINING_FLAGS.train_settings()),
        imbalance=config_lib.ImbalanceConfig(methods=configuration.imbalance),
        uncertainty=_UNCERTAINTY_FLAGS.config(), seed=seed)
  except ValueError as e:
    raise ValueError(f"--grid: {configuration.name}: {e}") from None


def _check_grid(configs):
  """Every configuration's settings; hyper-parameters given to a method are checked for their
  names and types first, then by building it (which loads TensorFlow)."""
  for c in configs:
    if c.name == verdicts.GBM:
      continue
    try:
      config_lib.TrainConfig(arch=c.arch, surgery=c.surgery)
      config_lib.ImbalanceConfig(methods=c.imbalance)
      if c.surgery_args:
        from kmtl.surgery import registry  # pylint: disable=g-import-not-at-top
        registry.check_arguments(c.surgery, dict(c.surgery_args))
        quiet.import_tensorflow()
        registry.create(c.surgery, **dict(c.surgery_args))
    except ValueError as e:
      raise ValueError(f"--grid: {c.name}: {e}") from None


def _check_executor():
  """--executor=dask needs --address and the dask extra; --address needs --executor=dask."""
  if _EXECUTOR.value != "dask":
    if _ADDRESS.value:
      raise ValueError("--address applies to --executor=dask")
    return
  if not _ADDRESS.value:
    raise ValueError("--executor=dask needs --address=HOST:PORT of a Dask scheduler")
  try:
    import distributed  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise ValueError("--executor=dask needs Dask distributed: pip install 'kmtl[dask]'") from None


def _cell_data(data):
  """{seed: the DataConfig of the cells with that seed}: `data` for each of --seeds, or with
  --cv=K and --repeats=R the K folds of each of R shuffles, cell r * K + k holding out fold k
  of shuffle r."""
  if _REPEATS.value < 1:
    raise ValueError(f"--repeats={_REPEATS.value}: needs 1 or more")
  if not data.cv:
    if _REPEATS.value > 1:
      raise ValueError(f"--repeats={_REPEATS.value} repeats --cv's folds; add --cv=K")
    return {seed: data for seed in range(_SEEDS.value)}
  folds = data.cv[0]
  if _REPEATS.value > 1 and data.folds:
    raise ValueError(f"--repeats={_REPEATS.value}: the fold file's folds are fixed; repeats "
                     "reshuffle --cv's")
  clashing = []
  if flags.FLAGS["seeds"].present and _SEEDS.value != folds * _REPEATS.value:
    clashing.append(f"--seeds={_SEEDS.value}")
  if flags.FLAGS["cv_fold"].present:
    clashing.append("--cv_fold")
  if clashing:
    raise ValueError(f"--cv={folds}: the cells are its {folds} folds x {_REPEATS.value} "
                     f"repeats, each with its index as seed; drop {' and '.join(clashing)}")
  return {r * folds + k: dataclasses.replace(data, cv=(folds, k, r) if r else (folds, k))
          for r in range(_REPEATS.value) for k in range(folds)}


def _plan(configs, out, data):
  """Every cell of the grid on `data`, its files in `out`, after checking flags and data;
  raises ValueError on bad input."""
  if not _OUT.value:
    raise ValueError("--out is required")
  atomic.check_output_dir(out, "--out")
  if _SEEDS.value < 1 or _JOBS.value < 1 or _THREADS.value < 1:
    raise ValueError("--seeds, --jobs and --threads must be >= 1")
  _check_executor()
  _check_grid(configs)
  if streaming.streams(data):
    raise ValueError(f"--data={data.path}: larger than --memory_budget_gb="
                     f"{data.memory_budget_gb:g}; a study runs tables in memory (run "
                     "streamed tables with kmtl.run, or raise --memory_budget_gb)")
  if not 0 < _ALPHA.value < 1:
    raise ValueError(f"--alpha={_ALPHA.value}: expected a level between 0 and 1")
  search = _TUNING_FLAGS.plan()
  from kmtl import search_space  # pylint: disable=g-import-not-at-top
  for c in configs:
    search_space.parameters(search_space.GBM if c.name == verdicts.GBM else c.arch, c.surgery,
                            [t.name for t in data.tasks], search.overrides())
  search.check([t.name for t in data.tasks])
  if search.trials:
    from kmtl import tuning  # pylint: disable=g-import-not-at-top
    tuning.check_available()
  cell_data = _cell_data(data)
  loaded = io.load_from_config(data)
  for seed, d in cell_data.items():  # degenerate tasks and empty splits fail here, not per cell
    splits.row_splits(loaded, d.val_fraction, d.test_fraction, seed, d.group_split, d.cv)
  fingerprint = loaded.fingerprint()
  cells_dir = os.path.join(out, "cells")
  plan = []
  for c in configs:
    for seed, d in cell_data.items():
      cfg = run_config(c, d, seed)
      settings = {**sweep.settings(cfg, fingerprint), **search.settings()}
      plan.append(sweep.Cell(c.name, seed, cfg, settings,
                             sweep.cell_path(cells_dir, c.name, seed),
                             search if search.trials else None))
  ropes, targets = _ropes_and_targets(data.tasks)
  return plan, verdicts.Design.of(data, len(cell_data), ropes, _ALPHA.value, targets)


def _ropes_and_targets(tasks):
  """({metric: Rope}, {metric: Rope}) of --rope over the defaults and of --target_effect; a
  ValueError naming the flag for a metric the study does not report (checked only when one
  is given: the metric names come with TensorFlow)."""
  # Their form first, which needs no TensorFlow.
  if not (resampled_tests.parse_ropes(_ROPE.value)
          or resampled_tests.parse_ropes(_TARGET_EFFECT.value, "--target_effect")):
    return resampled_tests.parse_ropes(resampled_tests.DEFAULT_ROPES), {}
  reported = [m for names in study_report.reported_metrics(
      {t.kind for t in tasks}, uncertainty=True).values() for m in names]
  return (resampled_tests.ropes(_ROPE.value, reported),
          resampled_tests.ropes(_TARGET_EFFECT.value, reported, "--target_effect", defaults=""))


def _done_cells(plan):
  """{(name, seed): result} of the planned cells already in OUT/cells; an error naming the
  differing settings if any was run with other settings."""
  done = {}
  for cell in plan:
    if not os.path.exists(cell.path):
      continue
    with open(cell.path, encoding="utf-8") as f:
      result = json.load(f)
    differing = config_lib.differences(result.get("settings"), cell.settings)
    if differing:
      raise ValueError(f"{cell.path} was run with other settings ({', '.join(differing[:8])}"
                       f"{', ...' if len(differing) > 8 else ''}); pass --fresh to start again "
                       "or choose another --out")
    if not (result.get("failed") and _RETRY_FAILED.value):
      done[(cell.name, cell.seed)] = result
  return done


def _studies():
  """[(label, output folder, DataConfig)]: the study, or with --experiment one study per point
  of its knob, each in OUT/<point>/."""
  data = _DATA_FLAGS.data_config()
  if not _EXPERIMENT.value:
    return [(None, _OUT.value, data)]
  if data.path is not None:
    raise ValueError(f"--experiment={_EXPERIMENT.value} runs on the synthetic set; drop --data")
  preset = transfer_experiments.PRESETS[_EXPERIMENT.value]
  if not flags.FLAGS["tasks"].present:
    data = dataclasses.replace(data, tasks=schema.parse_tasks(preset.tasks))
  return [(label, os.path.join(_OUT.value, folder),
           dataclasses.replace(data, synthetic_knobs=knobs))
          for label, folder, knobs in transfer_experiments.points(_EXPERIMENT.value,
                                                                  data.synthetic_knobs)]


def _planned():
  """[(label, folder, DataConfig, cells, done cells, verdicts.Design)] of every study to
  run."""
  configs = grid()
  if _EXPERIMENT.value and not flags.FLAGS["grid"].present:
    configs = [verdicts.Configuration.parse(n) for n in transfer_experiments.GRID]
  planned = []
  for label, out, data in _studies():
    plan, design = _plan(configs, out, data)
    cells_dir = os.path.join(out, "cells")
    if _FRESH.value and os.path.isdir(cells_dir):
      for name in os.listdir(cells_dir):
        path = os.path.join(cells_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    planned.append((label, out, data, plan, _done_cells(plan), design))
  return planned


def main(argv):
  if len(argv) > 1:
    sys.exit(f"{PROG}: error: unexpected arguments {argv[1:]}")
  try:
    planned = _planned()
  except (ValueError, io.DataError, schema.SchemaError) as e:
    sys.exit(f"{PROG}: error: {e}")
  client = None
  if _EXECUTOR.value == "dask":
    from kmtl import dask_executor  # pylint: disable=g-import-not-at-top
    try:  # before anything is written
      client = dask_executor.connect(_ADDRESS.value)
    except ValueError as e:
      sys.exit(f"{PROG}: error: {e}")
  try:
    _run_and_report(planned, client)
  finally:
    if client is not None:
      client.close()


def _run_and_report(planned, client):
  """Runs the cells not done yet, locally or on the Dask cluster of `client`, and writes the
  reports."""
  todo = []
  for _, out, _, plan, cells, _ in planned:
    os.makedirs(os.path.join(out, "cells"), exist_ok=True)
    todo += [c for c in plan if (c.name, c.seed) not in cells]
  total = sum(len(p[3]) for p in planned)
  logging.info("%d cells, %d already done, %d to run on %d workers", total, total - len(todo),
               len(todo), _JOBS.value)
  if todo and client is not None:
    from kmtl import dask_executor  # pylint: disable=g-import-not-at-top
    dask_executor.run(todo, _ADDRESS.value, lambda m: logging.info("%s", m), _THREADS.value,
                      client)
  elif todo:
    sweep.run(todo, min(_JOBS.value, len(todo)), lambda m: logging.info("%s", m),
              _THREADS.value)
  rows, cells_by_point = {}, {}
  for label, out, data, plan, cells, design in planned:
    for cell in plan:
      if (cell.name, cell.seed) not in cells:
        with open(cell.path, encoding="utf-8") as f:
          cells[(cell.name, cell.seed)] = json.load(f)
    rows[label] = study_report.write(out, cells, data.tasks, design,
                                     _TRAINING_FLAGS.stopping.value, provenance.line(PROG))
    cells_by_point[label] = cells
  if _EXPERIMENT.value:
    print(transfer_experiments.report(_OUT.value, _EXPERIMENT.value,
                                      {p[0]: p[2] for p in planned}, rows, cells_by_point))


if __name__ == "__main__":
  for flag_module in (data_flags, model_flags, training_flags, tuning_flags, uncertainty_flags,
                      knob_flags):
    flags.adopt_module_key_flags(flag_module)
  entry.run(main, PROG)
