"""Sweep throughput and memory: worker processes x intra-op threads, side by side in one run.

    python tools/bench_sweep.py [--cells=shared,shared:pcgrad] [--seeds=2] [--epochs=15]

Runs the same small grid (cells x seeds on the embedded default, fixed epochs, no early stop)
once as `--jobs` single-thread workers (what `python -m kmtl.study` does) and once as one
worker with that many threads, and prints cells per minute for each. Then it runs one
`python -m kmtl.run` training in its own process and prints its peak RSS next to the sweep
workers' peak RSS.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from kmtl import config as config_lib
from kmtl import verdicts
from kmtl import sweep as sweep_lib

_CELLS = flags.DEFINE_list("cells", ["shared", "shared:pcgrad"], "Grid cells.")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Seeds per cell.")
_EPOCHS = flags.DEFINE_integer("epochs", 15, "Epochs per cell (patience is set above it).")
_JOBS = flags.DEFINE_integer("jobs", os.cpu_count() or 1, "Workers of the parallel layout.")


def sweep(out_dir, workers, threads):
  """Runs the grid; returns (wall seconds, [per-cell peak RSS MiB])."""
  jobs = []
  for name in _CELLS.value:
    entry = verdicts.Configuration.parse(name)
    for seed in range(_SEEDS.value):
      cfg = config_lib.RunConfig(
          train=config_lib.TrainConfig(arch=entry.arch, surgery=entry.surgery,
                                       epochs=_EPOCHS.value, patience=_EPOCHS.value + 1),
          imbalance=config_lib.ImbalanceConfig(methods=entry.imbalance), seed=seed)
      jobs.append(sweep_lib.Cell(name, seed, cfg, {}, sweep_lib.cell_path(out_dir, name, seed)))
  start = time.perf_counter()
  sweep_lib.run(jobs, workers, lambda message: print("   ", message, flush=True), threads)
  seconds = time.perf_counter() - start
  peaks = []
  for cell in jobs:
    with open(cell.path, encoding="utf-8") as f:
      result = json.load(f)
    if result.get("failed"):
      raise RuntimeError(f"{cell.name} seed {cell.seed} failed: {result['error']}")
    peaks.append(result["peak_rss_mib"])
  return seconds, peaks


def main(argv):
  del argv
  cells = len(_CELLS.value) * _SEEDS.value
  print(f"grid: {_CELLS.value} x {_SEEDS.value} seeds, {_EPOCHS.value} epochs each; "
        f"{os.cpu_count()} cores")
  rates = {}
  all_peaks = []
  for workers, threads in ((_JOBS.value, 1), (1, _JOBS.value)):
    with tempfile.TemporaryDirectory() as out_dir:
      print(f"{workers} worker(s) x {threads} thread(s):", flush=True)
      seconds, peaks = sweep(out_dir, workers, threads)
    rates[workers, threads] = cells / seconds * 60
    all_peaks += peaks
    print(f"  {seconds:.0f} s, {rates[workers, threads]:.2f} cells/min", flush=True)
  parallel, threaded = rates[_JOBS.value, 1], rates[1, _JOBS.value]
  print(f"throughput ratio, {_JOBS.value} x 1 thread over 1 x {_JOBS.value} threads: "
        f"{parallel / threaded:.2f}")

  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kmtl.run", f"--workdir={workdir}/run",
                    f"--epochs={_EPOCHS.value}", f"--patience={_EPOCHS.value + 1}",
                    "--surgery=pcgrad"], check=True, capture_output=True)
    seconds = time.perf_counter() - start
  run_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
  print(f"peak RSS: one `python -m kmtl.run --surgery=pcgrad` ({seconds:.0f} s) "
        f"{run_peak:.0f} MiB; sweep workers {min(all_peaks):.0f}-{max(all_peaks):.0f} MiB")


if __name__ == "__main__":
  app.run(main)
