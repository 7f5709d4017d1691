"""The Matbench tasks kmtl benchmarks (`kmtl benchmark`): their data, targets and auxiliary
tasks, their inputs on the official folds, and the study that trains them fold by fold."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from kmtl.data import featurize
from kmtl.data import shipped
from kmtl.data import tables

DEFAULT_GRID = "independent,shared,shared:pcgrad,shared:gradnorm,structured:gradnorm,gbm"


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A Matbench task: its data file, target, auxiliary tasks and shipped auxiliary set."""
  name: str
  data_file: str
  target: str
  tasks: str
  auxiliary_set: str = None
  auxiliary_columns: tuple = ()


BENCHMARKS = {b.name: b for b in (
    Benchmark("matbench_steels", "steel_strength.csv", "yield_strength_mpa",
              "yield_strength_mpa:regression:log:MPa,"
              "ultimate_tensile_strength_mpa:regression:log:MPa,elongation_pct:regression:none:pct"),
    Benchmark("matbench_glass", "matbench_glass.csv", "gfa",
              "gfa:binary,gfa_class:multiclass:Crystal|Ribbon|BMG,dmax_bmg_mm:regression:log:mm,"
              "tg_k:regression:none:K,tx_k:regression:none:K,tl_k:regression:none:K",
              auxiliary_set="glass_cerebral",
              auxiliary_columns=("gfa_class", "dmax_bmg_mm", "tg_k", "tx_k", "tl_k")),
)}

def describable(formulas):
  """[N] bool: compositions the features can describe (parsed, with every element's
  properties and every pair's mixing enthalpy)."""
  out = []
  for text in formulas:
    try:
      parsed = featurize.parse_composition(text)
      featurize.descriptors(featurize.fractions_matrix([parsed], sorted(parsed)), sorted(parsed))
      out.append(True)
    except featurize.CompositionError:
      out.append(False)
  return np.array(out, dtype=bool)


def build_inputs(bench, data_dir):
  """(data table, fold table, the benchmark rows left out): the benchmark's describable rows
  with their official folds, then the auxiliary set's rows with fold -1."""
  path = os.path.join(data_dir, bench.data_file)
  if not os.path.isfile(path):
    raise ValueError(f"--data_dir: no {bench.data_file} in {data_dir}")
  frame = tables.read_table(path)
  fold_table = tables.read_table(shipped.FOLD_FILES[bench.name])
  if len(frame) != len(fold_table) or bench.target not in frame.columns:
    raise ValueError(f"{path}: not the {bench.name} data ({len(frame)} rows, "
                     f"{len(fold_table)} expected, with a {bench.target!r} column)")
  frame = frame.assign(mbid=fold_table["mbid"].to_numpy(), fold=fold_table["fold"].to_numpy())
  keep = describable(frame["formula"])
  left_out = frame.loc[~keep, ["mbid", "formula", bench.target, "fold"]]
  frame = frame.loc[keep]
  if bench.auxiliary_set:
    auxiliary = tables.read_table(bench.auxiliary_set)
    auxiliary = auxiliary.loc[describable(auxiliary["formula"]),
                              ["formula", *bench.auxiliary_columns]]
    frame = pd.concat([frame, auxiliary.assign(mbid="", fold=-1)], ignore_index=True)
  return frame.drop(columns="fold"), frame[["mbid", "fold"]], left_out


def run_study(bench, inputs_dir, study_dir, grid=DEFAULT_GRID, features="composition+magpie",
              jobs=1, epochs=200, tuning=None):
  """Runs kmtl study over the folds (tuning each cell as the `tuning.Plan` says, when given);
  a failure is a ValueError with its last line."""
  command = [sys.executable, "-m", "kmtl.study", f"--data={inputs_dir}/data.csv",
             f"--folds={inputs_dir}/folds.csv", f"--tasks={bench.tasks}", "--elements=auto",
             f"--features={features}", f"--grid={grid}", f"--out={study_dir}",
             f"--jobs={jobs}", f"--epochs={epochs}", "--patience=20",
             "--batch_size=32", "--task_weights=inverse_count", "--group_split"]
  if tuning is not None and tuning.trials:
    command += [f"--tune_trials={tuning.trials}", f"--search_space={tuning.search_space}",
                f"--tune_tasks={','.join(tuning.tasks)}", f"--tune_folds={tuning.folds}"]
  result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False)
  if result.returncode:
    lines = result.stderr.strip().splitlines()
    raise ValueError(f"kmtl study failed: {lines[-1] if lines else result.returncode}")
