"""bfloat16 against float32, side by side in one run.

    python tools/bench_precision.py [--batch_sizes=32,256,1024] [--epochs=5]

On the embedded default (reference data shape) and the reference shared model: the rate of a
2048-cube matmul in float32 and in bfloat16; then, per batch size, one epoch of `none` and of
`pcgrad` in each precision in turn for `--epochs` rounds (median epoch, steps/s), with and
without XLA; the target is bfloat16 at 2x float32's steps/s at batch 256. Last, whether oneDNN
runs the bfloat16 matmuls on AMX: a subprocess with ONEDNN_VERBOSE=1 multiplies in bfloat16 and
trains one eager step, and the ISA of every oneDNN matmul it reports is counted.
"""

import collections
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import tensorflow as tf

from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import splits
from tools import bench_train
from tools import targets as targets_lib

_BATCHES = flags.DEFINE_list("precision_batch_sizes", ["32", "256", "1024"],
                             "Batch sizes to measure.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Timed epochs per configuration (median).")
TARGET_AT_256 = 2.0

_PROBE = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import tensorflow as tf
a = tf.random.normal([1024, 1024], dtype=tf.bfloat16)
tf.matmul(a, a).numpy()
from kmtl import config as config_lib, models
net = models.build_model("shared", ["a", "b", "c"], 21,
                         config_lib.ModelConfig(precision="bfloat16"))
net.model(tf.random.normal([256, 21]), training=True)
"""


def onednn_isas():
  """(the ISA oneDNN reports for this CPU, {implementation: count} of the matmul and
  inner-product primitives the probe ran, e.g. `brg_matmul:avx512_core_amx`)."""
  env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                       env=env, check=False,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  isa, counts = "not reported", collections.Counter()
  for line in out.stdout.splitlines():
    fields = line.split(",")
    if line.startswith("onednn_verbose") and "isa:" in line:
      isa = line.split("isa:", 1)[1]
    elif line.startswith("onednn_verbose") and len(fields) > 5 and fields[3] == "exec":
      if fields[5] in ("matmul", "inner_product"):
        counts[fields[6]] += 1
  return isa, counts


def main(argv):
  del argv
  data = io.load_from_config(config_lib.DataConfig())
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  f32 = bench_train.matmul_gflops()
  bf16 = bench_train.matmul_gflops(dtype=tf.bfloat16)
  print(f"matmul 2048^3: float32 {f32:.0f} GFLOP/s, bfloat16 {bf16:.0f} GFLOP/s "
        f"({bf16 / f32:.2f}x); medians of {_ROUNDS.value} interleaved epochs")
  targets = targets_lib.Targets()
  for batch in (int(b) for b in _BATCHES.value):
    contestants = {(m, p, jit): bench_train.kmtl_epoch(prepared, data.tasks, batch, m,
                                                       model_kwargs={"precision": p},
                                                       jit_compile=jit)
                   for m in ("none", "pcgrad") for p in ("float32", "bfloat16")
                   for jit in (True, False)}
    rates = bench_train.interleaved_rates(contestants, _ROUNDS.value)
    print(f"\nbatch {batch}:  method   xla   float32  bfloat16  (steps/s)  ratio")
    for m in ("none", "pcgrad"):
      for jit in (True, False):
        a, b = rates[m, "float32", jit], rates[m, "bfloat16", jit]
        print(f"           {m:<8} {'on' if jit else 'off':<4}{a:>9.0f}{b:>10.0f}{b / a:>17.2f}")
    if batch == 256:
      best = max(rates["none", "bfloat16", j] / rates["none", "float32", j] for j in (True, False))
      targets.at_least("bfloat16 / float32 steps/s, none, batch 256", best, TARGET_AT_256)
  isa, counts = onednn_isas()
  print(f"\noneDNN: CPU ISA {isa}; matmul primitives of a bfloat16 probe by implementation: "
        f"{dict(counts) or 'none reported'} (AMX kernels are named *amx*)")
  targets.print()


if __name__ == "__main__":
  app.run(main)
