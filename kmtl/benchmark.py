"""A Matbench task on its official folds: `kmtl benchmark --name=matbench_steels --out=DIR`
(also `python -m kmtl.benchmark`).

Builds the benchmark's table (its data file from `--data_dir`, the shipped official folds,
and for matbench_glass the shipped cerebral glasses as auxiliary rows that are never tested),
runs `kmtl study` over the folds with `--folds` (so no row of a tested composition ever trains,
whatever its task or set), and writes `OUT/benchmark.md` (also printed) and
`OUT/benchmark.json`: per configuration the benchmark's scores on each fold of the target,
their mean and population spread (Matbench's aggregation), beside the published leaderboard.

With `--tune_trials=N` every configuration, gbm included, tunes N trials inside each training
fold (kmtl/tuning.py) before its fold's final fit, each trial scored on the benchmark's target
task alone unless `--tune_tasks` names others.

The multi-task model reported as kmtl's best is chosen by the validation score (taken from the
training folds), never by the test folds. Rows the features cannot describe (a pair of elements
without a Takeuchi-Inoue mixing enthalpy) are left out of training and reported; for a
classification benchmark they are then scored as the training majority class, so that every
test row counts as Matbench counts it.
"""

import dataclasses
import json
import os
import sys

from absl import flags

from kmtl import atomic
from kmtl import benchmark_scores
from kmtl import entry
from kmtl import leaderboards
from kmtl import matbench
from kmtl import provenance
from kmtl import tuning_flags
from kmtl.data import tables

PROG = "kmtl.benchmark"

_NAME = flags.DEFINE_enum("name", None, list(matbench.BENCHMARKS), "The Matbench task.")
_DATA_DIR = flags.DEFINE_string("data_dir", os.path.join("..", "shared", "data"),
                                "Folder holding the benchmark's data file.")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_GRID = flags.DEFINE_string("grid", matbench.DEFAULT_GRID,
                            "Configurations, as kmtl study's --grid.")
_FEATURES = flags.DEFINE_string("features", "composition+magpie", "As kmtl train's --features.")
_JOBS = flags.DEFINE_integer("jobs", os.cpu_count() or 1, "Parallel worker processes.")
_EPOCHS = flags.DEFINE_integer("epochs", 200, "Maximum epochs per cell.")
_TUNING_FLAGS = tuning_flags.define()


def _write_csv(frame, path):
  with atomic.atomic_path(path) as tmp:
    frame.to_csv(tmp, index=False)


def main(argv):
  if len(argv) > 1:
    sys.exit(f"{PROG}: error: unexpected arguments {argv[1:]}")
  try:
    if not _NAME.value or not _OUT.value:
      raise ValueError("--name and --out are required")
    atomic.check_output_dir(_OUT.value, "--out")
    plan = _TUNING_FLAGS.plan()
    bench = matbench.BENCHMARKS[_NAME.value]
    if not plan.tasks:
      plan = dataclasses.replace(plan, tasks=(bench.target,))
    data, fold_table, left_out = matbench.build_inputs(bench, _DATA_DIR.value)
    inputs_dir = os.path.join(_OUT.value, "inputs")
    os.makedirs(inputs_dir, exist_ok=True)
    _write_csv(data, os.path.join(inputs_dir, "data.csv"))
    _write_csv(fold_table, os.path.join(inputs_dir, "folds.csv"))
    _write_csv(left_out, os.path.join(inputs_dir, "left_out.csv"))
    matbench.run_study(bench, inputs_dir, os.path.join(_OUT.value, "study"), _GRID.value,
                       _FEATURES.value, _JOBS.value, _EPOCHS.value,
                       tuning=plan)
    truth = data.loc[fold_table["fold"].to_numpy() >= 0, bench.target].to_numpy()
    folds_of_truth = fold_table.loc[fold_table["fold"] >= 0, "fold"].to_numpy()
    report = benchmark_scores.report(
        bench, os.path.join(_OUT.value, "study", "cells"), truth, folds_of_truth, left_out,
        leaderboards.BY_BENCHMARK[bench.name])
  except (ValueError, tables.DataError, OSError) as e:
    sys.exit(f"{PROG}: error: {e}")
  report["markdown"] = provenance.line(PROG) + "\n\n" + report["markdown"]
  atomic.write_text(os.path.join(_OUT.value, "benchmark.md"), report["markdown"] + "\n")
  atomic.write_text(os.path.join(_OUT.value, "benchmark.json"),
                    json.dumps(report["rows"], indent=2) + "\n")
  print(report["markdown"])


if __name__ == "__main__":
  flags.adopt_module_key_flags(tuning_flags)
  entry.run(main, "kmtl.benchmark")
