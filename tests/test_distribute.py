"""Training under MirroredStrategy on 2 logical CPU devices against one device.

The logical devices must be configured before TensorFlow starts, so the checks run in a fresh
interpreter that prints its measurements as JSON.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from kmtl import config as config_lib
from tests import helpers

CHECK = r"""
import contextlib, dataclasses, json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from kmtl import config as config_lib, distribute, experiment, gradients, models
from kmtl import trainer as trainer_lib
from kmtl.data import io, splits
from kmtl.surgery import registry

data = io.load_from_config(config_lib.DataConfig(path=sys.argv[1]))
prepared = splits.prepare(data, 0.1, 0.2, seed=0)
names = [t.name for t in data.tasks]
strategy = distribute.make_strategy("mirrored")
out = {"replicas": strategy.num_replicas_in_sync}

def trainer(arch, method, distributed):
  keras.utils.set_random_seed(0)
  with strategy.scope() if distributed else contextlib.nullcontext():
    net = models.build_model(arch, names, prepared.train.features.shape[1])
    cfg = config_lib.TrainConfig(arch=arch, surgery=method, batch_size=32)
    return trainer_lib.Trainer(cfg, net, data.tasks, prepared, registry.create(method),
                         strategy=strategy if distributed else None)

# One hand-made batch of 8 rows: hardness labelled on row 0 (replica 0 takes rows 0, 2, 4, 6)
# and rows 1, 3, 5 (replica 1), so the mean over labelled rows differs from the mean of the
# two replicas' means.
single = trainer("shared", "none", False)
x, y, m, sw = (t[:8].numpy() for t in single.train_tensors)
h = names.index("hardness")
m[:, h] = 0.0
m[[0, 1, 3, 5], h] = 1.0
predictions = single.model(x, training=True)
errors = (np.asarray(predictions["hardness"]) - y[:, h]) ** 2
out["by_hand"] = float(errors[[0, 1, 3, 5]].mean())
out["mean_of_means"] = float((errors[0] + errors[[1, 3, 5]].mean()) / 2)
per_replica = strategy.run(distribute.replica_sums, args=(single.update, x, y, m, sw))
sums, counts, stack, _ = (strategy.reduce("SUM", v, axis=None) for v in per_replica)
out["reduced"] = float(sums[h] / counts[h])
with tf.GradientTape(persistent=True) as tape:
  raw = single.update.task_losses(tf.constant(y), single.model(x, training=True),
                                  tf.constant(m), tf.constant(sw))
  stacked = tf.stack(raw)
expected = gradients.task_gradients(tape, raw, stacked, single.shared_vars)[0].numpy()
got = (stack.numpy() / np.maximum(counts.numpy(), 1)[:, None])[:, :expected.shape[1]]
out["stack_max_abs_diff"] = float(np.abs(got - expected).max())
out["stack_max_abs"] = float(np.abs(expected).max())

for arch, method in [("structured", "gradnorm"), ("shared", "uw")]:
  weights = []
  for distributed in (False, True):
    t = trainer(arch, method, distributed)
    t._train_epoch(tf.constant(1, tf.int64))
    weights.append([v.numpy() for v in t.model.trainable_variables])
  out[f"{arch}:{method}"] = max(float(np.abs(a - b).max()) for a, b in zip(*weights))

for name in ("default", "mirrored"):
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=sys.argv[1]),
      train=config_lib.TrainConfig(surgery="uw", epochs=1, strategy=name, jit_compile=False),
      seed=0, workdir=f"{sys.argv[2]}/{name}"))
  out[f"run_{name}"] = result["test"]
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
  root = tmp_path_factory.mktemp("distribute")
  path = root / "tiny.parquet"
  helpers.tiny_frame().to_parquet(path)
  proc = subprocess.run([sys.executable, "-c", CHECK, str(path), str(root / "run")],
                        capture_output=True, text=True, timeout=600, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  return json.loads(lines[-1][len("RESULT "):])


def test_two_replicas(measured):
  assert measured["replicas"] == 2


def test_task_loss_is_the_mean_over_all_labelled_rows(measured):
  assert measured["reduced"] == pytest.approx(measured["by_hand"], rel=1e-5)
  assert abs(measured["mean_of_means"] - measured["by_hand"]) > 1e-3 * measured["by_hand"]


def test_all_reduced_task_gradients_match_one_device(measured):
  assert measured["stack_max_abs"] > 0
  assert measured["stack_max_abs_diff"] <= 1e-5 * max(1.0, measured["stack_max_abs"])


@pytest.mark.parametrize("key", ["structured:gradnorm", "shared:uw"])
def test_an_epoch_matches_one_device(measured, key):
  # Float sums in another order, through about ten Adam steps of size 1e-3: well inside 1e-4.
  assert measured[key] <= 1e-4


@pytest.mark.parametrize("task", ["resistivity", "hardness"])
def test_a_mirrored_run_reports_the_metrics_of_one_device(measured, task):
  """A whole run with checkpoints and a saved model: the test metrics agree with the same run
  on one device to float rounding."""
  one, mirrored = measured["run_default"][task], measured["run_mirrored"][task]
  for metric in ("r2", "mae", "rmse"):
    assert np.isfinite(one[metric])
    assert mirrored[metric] == pytest.approx(one[metric], rel=1e-3, abs=1e-4), metric


def test_whole_batch_imbalance_methods_are_refused():
  with pytest.raises(ValueError, match="--strategy=mirrored cannot split --imbalance=fds"):
    config_lib.RunConfig(train=config_lib.TrainConfig(strategy="mirrored"),
                         imbalance=config_lib.ImbalanceConfig(methods=("fds",)))
