"""Per-task gradients as the task count grows, side by side in one run.

    python tools/bench_tasks.py [--task_counts=3,8,16] [--batch_sizes=32,256] [--rounds=5]

On the embedded default with its tasks cycled to T tasks (same labels under new names, so only
T changes; tools/bench_train.py `with_task_count`) and the reference shared model: one epoch of
each contestant in turn for `--rounds` rounds (median epoch, steps/s): `none`, the exact
methods PCGrad, MGDA and UPGrad on the exact [T, P] parameter stack by a `loop` of T backward
passes, by `--grad_mode=batched` (one stacked backward through the trunk) and, for PCGrad, by
`--grad_mode=jacobian`, and the same methods on the [T, B * H] representation stack
(`--grad_space=representation`). Targets, against `none` in the same run: exact methods
at least 0.65x at T = 3, 0.35x at T = 8 and 0.15x at T = 16; representation-space ones at least
0.85x at every T.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import keras

from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import splits
from tools import bench_train
from tools import targets as targets_lib

_TASK_COUNTS = flags.DEFINE_list("tasks_counts", ["3", "8", "16"], "Task counts T.")
_BATCHES = flags.DEFINE_list("tasks_batch_sizes", ["32", "256"], "Batch sizes.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Timed epochs per contestant (median).")
_EXACT = ("pcgrad", "mgda", "upgrad")
EXACT_TARGETS = {3: 0.65, 8: 0.35, 16: 0.15}
ROUTES = {"loop": {}, "jacobian": {"grad_mode": "jacobian"}, "batched": {"grad_mode": "batched"},
          "representation": {"grad_space": "representation"}}
REPRESENTATION_TARGET = 0.85


def contestants(prepared, tasks, batch):
  """{(method, space): epoch runner}."""
  runs = {("none", "parameters"): bench_train.kmtl_epoch(prepared, tasks, batch, "none")}
  for method in _EXACT:
    for route, settings in ROUTES.items():
      if route != "jacobian" or method == "pcgrad":
        runs[method, route] = bench_train.kmtl_epoch(prepared, tasks, batch, method, **settings)
  return runs


def main(argv):
  del argv
  keras.utils.set_random_seed(0)
  data = io.load_from_config(config_lib.DataConfig())
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  targets = targets_lib.Targets()
  print(f"medians of {_ROUNDS.value} interleaved epochs; steps/s and x none")
  for batch in (int(b) for b in _BATCHES.value):
    for count in (int(t) for t in _TASK_COUNTS.value):
      wide, wide_tasks = bench_train.with_task_count(prepared, data.tasks, count)
      rates = bench_train.interleaved_rates(contestants(wide, wide_tasks, batch), _ROUNDS.value)
      plain = rates["none", "parameters"]
      print(f"\nbatch {batch}, T={count}: none {plain:.0f} steps/s")
      rates.pop(("none", "parameters"))
      for (method, route), rate in rates.items():
        print(f"  {method:<8}{route:<16}{rate:>8.0f}{rate / plain:>8.2f} x none", flush=True)
      _add_targets(targets, rates, plain, batch, count)
  targets.print()


def _add_targets(targets, rates, plain, batch, count):
  """Per method: its fastest exact route against the T target, its representation route
  against 0.85."""
  for method in _EXACT:
    exact = {r: rates[method, r] for r in ROUTES if r != "representation" and (method, r) in rates}
    best = max(exact, key=exact.get)
    if count in EXACT_TARGETS:
      targets.at_least(f"{method} ({best}) / none, T={count}, b{batch}",
                       exact[best] / plain, EXACT_TARGETS[count])
    targets.at_least(f"{method} (representation) / none, T={count}, b{batch}",
                     rates[method, "representation"] / plain, REPRESENTATION_TARGET)


if __name__ == "__main__":
  app.run(main)
