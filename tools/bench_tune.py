"""The tuning budget's wall time: `kmtl tune` on the steels set (the data behind
matbench_steels), N trials, in one process on this machine.

    python -m tools.bench_tune [--trials=50] [--data=../shared/data/steel_strength.csv]

Prints the tuning seconds, seconds per trial, how many trials completed, were pruned or failed,
and the whole command's wall time (the search, then the final training and test); the target is
50 trials in under 15 minutes on 2 cores.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_TRIALS = flags.DEFINE_integer("trials", 50, "Trials of the search.")
_DATA = flags.DEFINE_string("data", os.path.join("..", "shared", "data", "steel_strength.csv"),
                            "The steels table.")


def main(argv):
  del argv
  if not os.path.exists(_DATA.value):
    sys.exit(f"bench_tune: error: --data={_DATA.value}: no such file")
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "tuned")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kmtl.tune", "--flagfile=flags/steels.cfg",
                           f"--data={_DATA.value}", f"--tune_trials={_TRIALS.value}",
                           f"--out={out}"], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
      sys.exit(f"bench_tune: error: kmtl tune failed: {done.stderr.strip().splitlines()[-1:]}")
    with open(os.path.join(out, "best.json"), encoding="utf-8") as f:
      best = json.load(f)
  seconds = best["tuning_seconds"]
  print(done.stdout.strip())
  print(f"{_TRIALS.value} trials: {seconds:.0f} s of tuning ({seconds / _TRIALS.value:.1f} s per "
        f"trial; {best['trials']}); {wall:.0f} s for the whole command; best validation loss "
        f"{best['validation_loss']:.4f} with {best['values']}")


if __name__ == "__main__":
  app.run(main)
