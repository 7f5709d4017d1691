"""Training throughput: kmtl's loop per surgery method against Keras `fit`, side by side.

    python tools/bench_train.py [--batch_sizes=32,256] [--epochs=4] [--methods=...]

On the embedded default (reference data shape) and the reference shared model, each
configuration trains one warm-up epoch (tracing) and then `--epochs` timed epochs; the median
epoch gives steps/s. The baseline is plain Keras `model.fit` with `steps_per_execution=64` on the
same model with the summed masked loss (masks as per-output sample weights). Ratios are against
that baseline in the same run; a large float32 matmul's GFLOP/s is printed as a yardstick.
"""

import os
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
from kmtl import train
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits
from kmtl.surgery import registry

_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32", "256"], "Batch sizes to measure.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "Timed epochs per configuration (median taken).")
_METHODS = flags.DEFINE_list("methods", ["none", "pcgrad", "gradnorm", "gradscale", "uw"],
                             "Surgery methods to measure.")
_GRAD_MODES = flags.DEFINE_list("grad_modes", ["loop", "jacobian"],
                                "Per-task gradient modes to measure for pcgrad.")
_ARCH = flags.DEFINE_enum("arch", "shared", list(config_lib.ARCHITECTURES), "Architecture.")
_REPEATS = flags.DEFINE_integer("overhead_repeats", 3,
                                "Alternating off/on measurements per method.")
_OVERHEAD_METHODS = flags.DEFINE_list(
    "overhead_methods", ["none", "pcgrad"],
    "Methods whose whole-epoch time is compared with summaries on and off (batch 32).")


def matmul_gflops(n=2048, repeats=10):
  a = tf.random.normal([n, n])
  b = tf.random.normal([n, n])
  tf.matmul(a, b).numpy()
  start = time.perf_counter()
  for _ in range(repeats):
    c = tf.matmul(a, b)
  c.numpy()
  return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def kmtl_steps_per_second(prepared, tasks, batch_size, method, grad_mode, epochs):
  net = models.build_model(_ARCH.value, [t.name for t in tasks], prepared.train.features.shape[1])
  cfg = config_lib.TrainConfig(arch=_ARCH.value, surgery=method, batch_size=batch_size,
                               grad_mode=grad_mode)
  trainer = train.Trainer(cfg, net, tasks, prepared, registry.create(method))
  trainer._train_epoch(tf.constant(1, tf.int64))  # pylint: disable=protected-access
  times = []
  for epoch in range(epochs):
    start = time.perf_counter()
    trainer._train_epoch(tf.constant(epoch + 2, tf.int64))  # pylint: disable=protected-access
    times.append(time.perf_counter() - start)
  return (prepared.train.num_rows // batch_size) / statistics.median(times)


class _EpochTimer(keras.callbacks.Callback):

  def on_train_begin(self, logs=None):
    self.times = []

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.times.append(time.perf_counter() - self._start)


def keras_fit_steps_per_second(prepared, tasks, batch_size, epochs):
  net = models.build_model("shared", [t.name for t in tasks], prepared.train.features.shape[1])
  loss = {t.name: (keras.losses.BinaryCrossentropy(from_logits=True)
                   if t.kind == schema.BINARY else keras.losses.MeanSquaredError())
          for t in tasks}
  net.model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, steps_per_execution=64)
  train_split = prepared.train
  timer = _EpochTimer()
  net.model.fit(train_split.features, dict(train_split.labels),
                sample_weight=dict(train_split.masks), batch_size=batch_size,
                epochs=epochs + 1, shuffle=True, verbose=0, callbacks=[timer])
  steps = int(np.ceil(train_split.num_rows / batch_size))
  return steps / statistics.median(timer.times[1:])


def epoch_seconds_with_and_without_summaries(prepared, tasks, method, epochs):
  """Median whole-epoch wall time (training, validation, metrics, summaries) with summaries
  and gradient statistics off, then on."""
  out = []
  for on in (False, True):
    keras.utils.set_random_seed(0)
    net = models.build_model(_ARCH.value, [t.name for t in tasks],
                             prepared.train.features.shape[1])
    cfg = config_lib.TrainConfig(arch=_ARCH.value, surgery=method, epochs=epochs + 1,
                                 patience=epochs + 1, summaries=on, grad_stats=on)
    trainer = train.Trainer(cfg, net, tasks, prepared, registry.create(method))
    ends = []
    with tempfile.TemporaryDirectory() as logdir:
      writer = summaries.Writer(logdir, tasks, {"method": method}) if on else None

      def on_epoch_end(record, writer=writer):
        if writer is not None:
          writer.write_epoch(record)
        ends.append(time.perf_counter())
      trainer.fit(on_epoch_end=on_epoch_end)
      if writer is not None:
        writer.close()
    out.append(statistics.median(np.diff(ends)))
  return out


def main(argv):
  del argv
  keras.utils.set_random_seed(0)
  data = io.load_from_config(config_lib.DataConfig())
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  gflops = matmul_gflops()
  print(f"float32 matmul 2048^3: {gflops:.1f} GFLOP/s; train rows {prepared.train.num_rows}; "
        f"arch {_ARCH.value}")
  for batch_size in (int(b) for b in _BATCH_SIZES.value):
    baseline = keras_fit_steps_per_second(prepared, data.tasks, batch_size, _EPOCHS.value)
    print(f"\nbatch {batch_size}: Keras fit (steps_per_execution=64): {baseline:.0f} steps/s")
    print(f"{'method':<12}{'grad_mode':<11}{'steps/s':>9}{'x fit':>8}{'of matmul':>11}")
    runs = [(m, "loop") for m in _METHODS.value]
    runs += [("pcgrad", mode) for mode in _GRAD_MODES.value if mode != "loop"]
    for method, mode in runs:
      rate = kmtl_steps_per_second(prepared, data.tasks, batch_size, method, mode,
                                   _EPOCHS.value)
      # 258 kFLOP per sample for forward + backward of the reference shared model.
      share = rate * batch_size * 258e3 / (gflops * 1e9)
      print(f"{method:<12}{mode:<11}{rate:>9.0f}{rate / baseline:>8.2f}{share:>11.3f}",
            flush=True)

  print("\nsummaries overhead, batch 32, whole epochs (train + validation + metrics + writing):")
  for method in _OVERHEAD_METHODS.value:
    pairs = [epoch_seconds_with_and_without_summaries(prepared, data.tasks, method,
                                                      _EPOCHS.value)
             for _ in range(_REPEATS.value)]
    ratios = [on / off for off, on in pairs]
    print(f"{method:<12} off {statistics.median(p[0] for p in pairs):.2f} s  "
          f"on {statistics.median(p[1] for p in pairs):.2f} s  "
          f"ratio median {statistics.median(ratios):.3f} "
          f"(pairs: {', '.join(f'{r:.3f}' for r in ratios)})", flush=True)


if __name__ == "__main__":
  app.run(main)
