"""XLA-compiled training steps against plain graph execution, steps per graph call, and the
logged fallback when XLA refuses an op."""

import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import models
from kmtl import trainer as trainer_lib
from kmtl.data import io
from kmtl.data import splits
from kmtl.imbalance import fds
from kmtl.imbalance import parts
from kmtl.surgery import registry
from kmtl.surgery import weighted_sum
from tests import helpers


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.parquet"
  helpers.tiny_frame().to_parquet(path)
  data = io.load_from_config(config_lib.DataConfig(path=str(path)))
  return data, splits.prepare(data, 0.1, 0.2, seed=0)


def _trained(tiny, method, arch="shared", imbalance=(), epochs=1, **train_kwargs):
  """(trainer, [weights]) after `epochs` epochs of `method` on the tiny data."""
  data, prepared = tiny
  experiment.set_seeds(0)
  net = models.build_model(arch, [t.name for t in data.tasks], prepared.train.features.shape[1])
  cfg = config_lib.TrainConfig(arch=arch, batch_size=32, learning_rate=3e-3, **train_kwargs)
  if isinstance(method, str):
    method = registry.create(method)
  extra = parts.imbalance_parts(config_lib.ImbalanceConfig(methods=imbalance,
                                                            fds_start_epoch=1),
                                data.tasks, prepared, 64)
  trainer = trainer_lib.Trainer(cfg, net, data.tasks, prepared, method, **extra)
  for epoch in range(1, epochs + 1):
    trainer._train_epoch(tf.constant(epoch, tf.int64))  # pylint: disable=protected-access
    if trainer.feature_smoothing is not None:
      fds.update_from_split(trainer.feature_smoothing, net, data.tasks, prepared.train)
  return trainer, [v.numpy() for v in net.model.trainable_variables]


# PCGrad is left out: XLA's random-number kernels give other numbers than TensorFlow's for the
# same seed, so its task orders differ (each is a valid draw). Its XLA runs are deterministic
# (tests/test_train.py) and it projects as by hand under XLA (below).
@pytest.mark.parametrize("arch, method, imbalance", [
    ("shared", "gradnorm", ()), ("structured", "gradscale", ()),
    ("independent", "none", ()), ("shared", "none", ("lds", "fds")),
    ("shared", "none", ("bmse",)),
])
def test_xla_compiles_and_matches_graph_execution(tiny, arch, method, imbalance):
  xla, with_xla = _trained(tiny, method, arch, imbalance, epochs=2, jit_compile=True)
  assert xla.xla_refused is None and xla.jit_compile
  _, without = _trained(tiny, method, arch, imbalance, epochs=2, jit_compile=False)
  # Same ops, fused differently: float rounding only, through 22 Adam steps of 3e-3.
  assert max(float(np.abs(a - b).max()) for a, b in zip(with_xla, without)) < 1e-3


def test_xla_pcgrad_projects_by_hand():
  method = registry.create("pcgrad")
  method.build(2)
  combine = tf.function(method.combine, jit_compile=True)
  shared, weights = combine(tf.constant([[1.0, 0.0], [-1.0, 1.0]]), tf.constant([1.0, 1.0]),
                            tf.ones([2]))
  np.testing.assert_allclose(shared.numpy(), [0.5, 1.5], atol=1e-6)
  np.testing.assert_array_equal(weights.numpy(), [1.0, 1.0])


def test_steps_per_call_changes_nothing(tiny):
  _, whole = _trained(tiny, "pcgrad", jit_compile=False)
  _, chunked = _trained(tiny, "pcgrad", jit_compile=False, steps_per_call=3)
  for a, b in zip(whole, chunked):
    np.testing.assert_array_equal(a, b)


class _HostSide(weighted_sum.WeightedSum):
  """`none` computed through a host-side NumPy call, which XLA cannot compile."""

  def weights(self, task_losses, present):
    del present
    ones = tf.numpy_function(lambda x: np.ones_like(x), [task_losses], tf.float32)
    return tf.reshape(ones, tf.shape(task_losses))


def test_xla_refusal_falls_back_with_a_log_line(tiny, caplog):
  refused, weights = _trained(tiny, _HostSide(), jit_compile=True)
  assert refused.xla_refused and not refused.jit_compile
  assert any("XLA cannot compile the training steps" in r.getMessage() for r in caplog.records)
  _, plain = _trained(tiny, "none", jit_compile=False)
  for a, b in zip(weights, plain):
    np.testing.assert_allclose(a, b, atol=1e-6)
