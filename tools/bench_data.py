"""Training on data beyond memory: 1x, 10x and 100x the reference rows, in memory and streamed.

    python tools/bench_data.py [--parts=1,10,100] [--batch_size=256] [--rounds=3]
        [--scratch=DIR] [--rss]

The sets are the synthetic default's shape drawn `parts` times (`python -m kmtl.data.synthetic
--parts=K`), written once under `--scratch`. For each size, one process prepares the table in
memory and streamed (kmtl/data/streaming.py), builds a trainer on each (shared model, no
surgery), warms both up, then times one epoch of each in turn for `--rounds` rounds. Sections:
- in memory against size: seconds per training row relative to the 1x set (linear: within
  20% of 1);
- streamed against in memory: steps/s ratio per size (target: at least 0.5 at batch 256);
- with `--rss` (first, before this process holds any data): the peak resident memory of a
  whole `kmtl.run` of one epoch on the largest set, streamed (target: under 3 GB) and in
  memory, each in its own process.
"""

import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import keras

from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import splits
from kmtl.data import streaming
from kmtl.data import synthetic
from tools import bench_train
from tools import targets as targets_lib

_PARTS = flags.DEFINE_list("parts", ["1", "10", "100"], "Sizes, in reference sets.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Batch size.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed epochs of each contestant.")
_SCRATCH = flags.DEFINE_string("scratch", None, "Where the sets and streamed files go "
                               "(default: a temporary folder, removed at the end).")
_RSS = flags.DEFINE_bool("rss", True, "Measure peak memory of whole runs on the largest set "
                        "(Linux), before anything else.")
_RATES = flags.DEFINE_bool("rates", True, "Measure the epoch rates.")

TARGETS = {"linear": 0.2, "streamed_vs_memory": 0.5, "peak_rss_gb": 3.0}
# The peak is the process's own high-water mark (VmHWM): getrusage's ru_maxrss would carry
# over the forking parent's resident set through exec.
_PEAK = ("import runpy, sys\n"
         "sys.argv = ['kmtl.run'] + sys.argv[1:]\n"
         "try:\n  runpy.run_module('kmtl.run', run_name='__main__')\n"
         "finally:\n  peak = [l.split()[1] for l in open('/proc/self/status') "
         "if l.startswith('VmHWM')]\n  print('peak_rss_kb', peak[0], file=sys.stderr)\n")


def dataset(scratch, parts):
  """The path of the synthetic set of `parts` reference sets, written if absent."""
  path = os.path.join(scratch, f"synthetic_x{parts}.parquet")
  if not os.path.exists(path):
    synthetic.write_parts(path, seed=0, parts=parts)
  return path


def rates(path, scratch, batch, rounds):
  """({"memory", "streamed"}: steps/s, training rows) of one set."""
  cfg = config_lib.DataConfig(path=path, memory_budget_gb=0)
  in_memory = splits.prepare(io.load_from_config(cfg), 0.1, 0.2, seed=0, group_split=True)
  directory = tempfile.mkdtemp(dir=scratch)
  data = streaming.load(cfg, directory)
  streamed = streaming.prepare(data, directory, 0.1, 0.2, seed=0, group_split=True)
  runs = {"memory": bench_train.kmtl_epoch(in_memory, data.tasks, batch, "none"),
          "streamed": bench_train.kmtl_epoch(streamed, data.tasks, batch, "none")}
  return bench_train.interleaved_rates(runs, rounds), in_memory.train.num_rows


def peak_rss_gb(path, budget, workdir):
  """Peak resident memory (GB) of `kmtl.run` training one epoch on `path`."""
  command = [sys.executable, "-c", _PEAK, f"--data={path}", f"--memory_budget_gb={budget}",
             "--epochs=1", f"--batch_size={_BATCH.value}", f"--workdir={workdir}"]
  done = subprocess.run(command, capture_output=True, text=True, check=False,
                        env={**os.environ, "PYTHONPATH": os.getcwd()})
  peak = [line for line in done.stderr.splitlines() if line.startswith("peak_rss_kb")]
  if done.returncode or not peak:
    raise RuntimeError(f"kmtl.run failed: {done.stderr.strip().splitlines()[-1:]}")
  return int(peak[-1].split()[1]) / 1e6


def main(argv):
  del argv
  keras.utils.set_random_seed(0)
  scratch = _SCRATCH.value or tempfile.mkdtemp(prefix="kmtl-bench-data-")
  targets, per_row = targets_lib.Targets(), {}
  print(f"batch {_BATCH.value}, shared model, none; medians of {_ROUNDS.value} interleaved "
        "epochs")
  print(f"{'rows':>10}{'train rows':>12}{'memory':>10}{'streamed':>10}{'ratio':>8}"
        f"{'s per row':>12}")
  parts = [int(p) for p in _PARTS.value]
  if _RSS.value:
    peak_rss(scratch, parts[-1], targets)
  for k in (parts if _RATES.value else []):
    measured, train_rows = rates(dataset(scratch, k), scratch, _BATCH.value, _ROUNDS.value)
    ratio = measured["streamed"] / measured["memory"]
    per_row[k] = 1.0 / (measured["memory"] * _BATCH.value)
    print(f"{k * synthetic.NUM_ROWS:>10}{train_rows:>12}{measured['memory']:>10.0f}"
          f"{measured['streamed']:>10.0f}{ratio:>8.2f}{per_row[k]:>12.3g}", flush=True)
    targets.at_least(f"streamed / in memory, x{k}", ratio, TARGETS["streamed_vs_memory"])
  for k in (parts[1:] if _RATES.value else []):
    growth = per_row[k] / per_row[parts[0]]
    targets.rows.append((f"in-memory s/row x{k} / x{parts[0]}", growth,
                         f"1+-{TARGETS['linear']}", abs(growth - 1) <= TARGETS["linear"]))
  targets.print()


def peak_rss(scratch, parts, targets):
  """Peak memory of one-epoch runs on the set of `parts` parts, streamed and in memory."""
  largest = dataset(scratch, parts)
  for budget, name in ((1.0, "streamed"), (1000.0, "in memory")):
    gb = peak_rss_gb(largest, budget, tempfile.mkdtemp(dir=scratch))
    print(f"peak RSS, kmtl.run 1 epoch on x{parts}, {name}: {gb:.2f} GB", flush=True)
    if name == "streamed":
      targets.at_most(f"peak RSS GB streamed, x{parts}", gb, TARGETS["peak_rss_gb"])


if __name__ == "__main__":
  app.run(main)
