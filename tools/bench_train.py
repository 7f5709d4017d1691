"""Training throughput against the performance targets, side by side in one run.

    python tools/bench_train.py [--batch_sizes=32,256] [--epochs=5] [--methods=...]

On the embedded default (reference data shape) and the reference shared model, each
configuration traces/compiles in one warm-up epoch; then `--epochs` rounds each time one epoch
of every configuration in turn (so load that drifts during the run falls on all of them), and
the median epoch gives steps/s. The baseline is plain Keras
`model.fit` with `steps_per_execution=64` on the same model with the summed masked loss (masks as
per-output sample weights). Ratios are against that baseline in the same run, and the achieved
FLOP rate is set against a large float32 matmul measured in the same run.

Sections: the targets table (pass/miss), XLA on/off, steps per graph call, the architectures
next to `shared`, per-task gradients by loop versus jacobian for T = 3 and T = 8, and the cost
of summaries on whole epochs.
"""

import dataclasses
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import models
from kmtl import summaries
from kmtl import trainer as trainer_lib
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits
from kmtl.surgery import registry
from tools import targets as targets_lib

_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32", "256"], "Batch sizes to measure.")
_EPOCHS = flags.DEFINE_integer("epochs", 5, "Timed epochs (rounds) per configuration; the "
                                "median is taken.")
_METHODS = flags.DEFINE_list("methods", ["none", "pcgrad", "gradnorm", "gradscale", "uw"],
                             "Surgery methods to measure ('all': every registered one).")
_STEPS_PER_CALL = flags.DEFINE_list("steps_per_call", ["64", "512", "0"],
                                    "Steps per graph call to compare (pcgrad, batch 32).")
_TASK_COUNTS = flags.DEFINE_list("task_counts", ["3", "8"],
                                 "Task counts for the loop-versus-jacobian comparison.")
_ARCHS = flags.DEFINE_list("archs", ["shared", "mmoe", "ple", "cross_stitch", "task_attention",
                                      "groups"], "Architectures to compare (none, batch 32).")
_REPEATS = flags.DEFINE_integer("overhead_repeats", 9,
                                "Alternating off/on epochs per method (median taken).")
_ONLY_OVERHEAD = flags.DEFINE_bool("only_overhead", False,
                                   "Run the summaries-overhead section only.")
_OVERHEAD_METHODS = flags.DEFINE_list(
    "overhead_methods", ["none", "pcgrad"],
    "Methods whose whole-epoch time is compared with summaries on and off (batch 32).")

# Forward + backward FLOPs per sample of the reference shared model (21->128->128, three
# 128->64->1 heads): 2 x 43,264 multiply-adds forward, twice that backward.
FLOP_PER_SAMPLE = 258e3
TARGETS = {"pcgrad_vs_fit": 1.5, "none_vs_fit": 3.0, "step_time_vs_pcgrad": 1.3,
           "summaries_cost": 0.10, "mmoe_vs_shared_step_time": 4.0}  # E = 4 experts


def matmul_gflops(n=2048, repeats=10, dtype=tf.float32):
  a = tf.cast(tf.random.normal([n, n]), dtype)
  b = tf.cast(tf.random.normal([n, n]), dtype)
  tf.matmul(a, b).numpy()
  start = time.perf_counter()
  for _ in range(repeats):
    c = tf.matmul(a, b)
  c.numpy()
  return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def with_task_count(prepared, tasks, count):
  """The data with `count` tasks: the reference tasks, then copies of them cycled (same
  labels and masks under new names), so only T changes."""
  tasks = list(tasks)
  extra = [dataclasses.replace(tasks[i % len(tasks)], name=f"{tasks[i % len(tasks)].name}_{i}")
           for i in range(count - len(tasks))]

  def widen(split):
    labels, masks = dict(split.labels), dict(split.masks)
    for task in extra:
      source = task.name.rsplit("_", 1)[0]
      labels[task.name], masks[task.name] = split.labels[source], split.masks[source]
    return splits.SplitArrays(split.features, labels, masks)

  scalers = dict(prepared.target_scalers)
  for task in extra:
    scalers[task.name] = scalers[task.name.rsplit("_", 1)[0]]
  return (dataclasses.replace(prepared, train=widen(prepared.train), val=widen(prepared.val),
                              test=widen(prepared.test), target_scalers=scalers),
          tasks + extra)


def kmtl_epoch(prepared, tasks, batch_size, method, arch="shared", model_kwargs=None,
               **train_kwargs):
  """A callable training one epoch of kmtl's loop (traced and warmed up here) that returns
  its (steps, seconds)."""
  names = [t.name for t in tasks]
  groups = (tuple(names[:1]), tuple(names[1:])) if arch == "groups" else ()
  net = models.build_model(arch, names, prepared.train.num_features,
                           config_lib.ModelConfig(groups=groups, **(model_kwargs or {})))
  cfg = config_lib.TrainConfig(arch=arch, surgery=method, batch_size=batch_size,
                               **train_kwargs)
  trainer = trainer_lib.Trainer(cfg, net, tasks, prepared, registry.create(method))
  epoch = [1]

  def run():
    start = time.perf_counter()
    trainer._train_epoch(tf.constant(epoch[0], tf.int64))  # pylint: disable=protected-access
    epoch[0] += 1
    return prepared.train.num_rows // batch_size, time.perf_counter() - start
  run()
  return run


class _EpochTimer(keras.callbacks.Callback):

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds = time.perf_counter() - self._start


def keras_fit_epoch(prepared, tasks, batch_size):
  """Like `kmtl_epoch` for plain Keras `fit` (steps_per_execution=64) on the same model with
  the summed masked loss; the time is the epoch's, from a callback. Also returns whether
  Keras compiled it with XLA."""
  net = models.build_model("shared", [t.name for t in tasks], prepared.train.features.shape[1])
  loss = {t.name: (keras.losses.BinaryCrossentropy(from_logits=True)
                   if t.kind == schema.BINARY else keras.losses.MeanSquaredError())
          for t in tasks}
  net.model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, steps_per_execution=64)
  train_split = prepared.train
  timer = _EpochTimer()

  def run():
    net.model.fit(train_split.features, dict(train_split.labels),
                  sample_weight=dict(train_split.masks), batch_size=batch_size, epochs=1,
                  shuffle=True, verbose=0, callbacks=[timer])
    return int(np.ceil(train_split.num_rows / batch_size)), timer.seconds
  run()
  return run, net.model.jit_compile


def interleaved_rates(contestants, rounds):
  """{name: median steps/s} over `rounds` rounds, each timing one epoch of every contestant in
  turn, so that the machine's drifting load falls on all of them alike."""
  seconds = {name: [] for name in contestants}
  steps = {}
  for _ in range(rounds):
    for name, run in contestants.items():
      steps[name], elapsed = run()
      seconds[name].append(elapsed)
  return {name: steps[name] / statistics.median(seconds[name]) for name in contestants}


def summaries_off_and_on(prepared, tasks, method, rounds):
  """Median whole-epoch wall time (training, validation, metrics, summaries) with summaries
  and gradient statistics off, on without the sampled affinity (kmtl/affinity.py), and on
  with it: three trainers, one epoch of each in turn per round."""
  runs = []
  for on, affinity_batches in ((False, 0), (True, 0), (True, 4)):
    keras.utils.set_random_seed(0)
    net = models.build_model("shared", [t.name for t in tasks], prepared.train.num_features)
    cfg = config_lib.TrainConfig(arch="shared", surgery=method, epochs=1,
                                 patience=rounds + 2, summaries=on, grad_stats=on,
                                 affinity_batches=affinity_batches)
    trainer = trainer_lib.Trainer(cfg, net, tasks, prepared, registry.create(method))
    logdir = tempfile.mkdtemp()
    writer = summaries.Writer(logdir, tasks, {"method": method}) if on else None
    runs.append((trainer, writer, logdir))
    trainer.fit(on_epoch_end=writer.write_epoch if writer else None)  # warm-up
  seconds = [[], [], []]
  for r in range(rounds):
    for i, (trainer, writer, _) in enumerate(runs):
      trainer.config = dataclasses.replace(trainer.config, epochs=r + 2)
      start = time.perf_counter()
      trainer.fit(on_epoch_end=writer.write_epoch if writer else None)
      seconds[i].append(time.perf_counter() - start)
  for _, writer, logdir in runs:
    if writer is not None:
      writer.close()
    shutil.rmtree(logdir)
  return tuple(statistics.median(s) for s in seconds)


def architectures(prepared, tasks, rounds, targets):
  """Steps/s of each architecture next to `shared` (no surgery, batch 32, XLA); an MMoE of
  E = 4 experts should cost at most about 4 shared steps (its expert layers are one einsum)."""
  print("\narchitectures (none, batch 32, XLA):")
  rates = interleaved_rates({a: kmtl_epoch(prepared, tasks, 32, "none", arch=a)
                             for a in _ARCHS.value}, rounds)
  shared = rates.get("shared", float("nan"))
  for arch, rate in rates.items():
    print(f"  {arch:<16}{rate:>8.0f} steps/s{rate / shared:>8.2f} x shared", flush=True)
  if "mmoe" in rates:
    targets.at_most("mmoe / shared step time (4 experts)", shared / rates["mmoe"],
                    TARGETS["mmoe_vs_shared_step_time"])


def steps_per_call_and_gradient_modes(prepared, tasks, rounds):
  """Steps per graph call, and per-task gradients by loop or by jacobian."""
  print("\nsteps per graph call (pcgrad, batch 32, XLA; 0 = a whole epoch):")
  rates = interleaved_rates(
      {k: kmtl_epoch(prepared, tasks, 32, "pcgrad", steps_per_call=k)
       for k in (int(k) for k in _STEPS_PER_CALL.value)}, rounds)
  for per_call, rate in rates.items():
    print(f"  K={per_call:<6}{rate:>8.0f} steps/s", flush=True)

  print("\nper-task gradients, loop versus jacobian (pcgrad, batch 32, XLA):")
  for count in (int(t) for t in _TASK_COUNTS.value):
    wide, wide_tasks = with_task_count(prepared, tasks, count)
    rates = interleaved_rates(
        {mode: kmtl_epoch(wide, wide_tasks, 32, "pcgrad", grad_mode=mode)
         for mode in config_lib.GRAD_MODES}, rounds)
    print(f"  T={count}: " + ", ".join(f"{m} {r:.0f}" for m, r in rates.items()) + " steps/s",
          flush=True)


def main(argv):
  del argv
  keras.utils.set_random_seed(0)
  data = io.load_from_config(config_lib.DataConfig())
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  gflops = matmul_gflops()
  print(f"float32 matmul 2048^3: {gflops:.1f} GFLOP/s; train rows {prepared.train.num_rows}; "
        f"threads intra {tf.config.threading.get_intra_op_parallelism_threads()} "
        f"(0 = all cores: {os.cpu_count()}); medians of {_EPOCHS.value} interleaved epochs")
  targets = targets_lib.Targets()
  if not _ONLY_OVERHEAD.value:
    throughput(prepared, data.tasks, gflops, targets)
  print("\nsummaries overhead, batch 32, whole epochs (train + validation + metrics + writing):")
  for method in _OVERHEAD_METHODS.value:
    off, on, with_affinity = summaries_off_and_on(prepared, data.tasks, method, _REPEATS.value)
    print(f"{method:<12} off {off:.3f} s  on {on:.3f} s  ratio {on / off:.3f}; with sampled "
          f"affinity {with_affinity:.3f} s, ratio {with_affinity / on:.3f} of on", flush=True)
    targets.at_most(f"summaries cost, {method}", on / off - 1.0, TARGETS["summaries_cost"])
  targets.print()


def throughput(prepared, tasks, gflops, targets):
  """Steps/s of every method against Keras fit, steps per call, gradient modes and the
  architectures."""
  rounds = _EPOCHS.value
  methods = list(registry.METHODS) if _METHODS.value == ["all"] else _METHODS.value
  for batch_size in (int(b) for b in _BATCH_SIZES.value):
    fit, fit_jit = keras_fit_epoch(prepared, tasks, batch_size)
    contestants = {"fit": fit}
    for method, jit in [(m, True) for m in methods] + [("none", False),
                                                               ("pcgrad", False)]:
      contestants[method, jit] = kmtl_epoch(prepared, tasks, batch_size, method,
                                            jit_compile=jit)
    rates = interleaved_rates(contestants, rounds)
    baseline = rates.pop("fit")
    print(f"\nbatch {batch_size}: Keras fit (steps_per_execution=64, jit_compile={fit_jit}): "
          f"{baseline:.0f} steps/s")
    print(f"{'method':<12}{'xla':<6}{'steps/s':>9}{'x fit':>8}{'x none':>8}{'of matmul':>11}")
    plain = rates.get(("none", True), float("nan"))
    for (method, jit), rate in rates.items():
      share = rate * batch_size * FLOP_PER_SAMPLE / (gflops * 1e9)
      print(f"{method:<12}{'on' if jit else 'off':<6}{rate:>9.0f}{rate / baseline:>8.2f}"
            f"{rate / plain:>8.2f}{share:>11.3f}", flush=True)
    if ("pcgrad", True) in rates:
      targets.at_least(f"pcgrad / fit steps/s, batch {batch_size}",
                       rates["pcgrad", True] / baseline, TARGETS["pcgrad_vs_fit"])
    if ("none", True) in rates:
      targets.at_least(f"none / fit steps/s, batch {batch_size}",
                       rates["none", True] / baseline, TARGETS["none_vs_fit"])
    for method in ("gradnorm", "gradscale", "uw"):
      if (method, True) in rates and ("pcgrad", True) in rates:
        targets.at_most(f"{method} / pcgrad step time, batch {batch_size}",
                        rates["pcgrad", True] / rates[method, True],
                        TARGETS["step_time_vs_pcgrad"])
    del contestants

  steps_per_call_and_gradient_modes(prepared, tasks, rounds)
  architectures(prepared, tasks, rounds, targets)


if __name__ == "__main__":
  app.run(main)
