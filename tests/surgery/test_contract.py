"""The method contract: Gramian aggregators, how heads are updated by family, and the hooks."""

import numpy as np
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import models
from kmtl import trainer as trainer_lib
from kmtl.data import io
from kmtl.data import splits
from kmtl.surgery import base
from tests import helpers


class _UnitNorm(base.GramianAggregator):
  """Test aggregator: w_t = 1 / ||g_t|| from the Gramian's diagonal."""
  name = "unit_norm"

  def weights_from_gramian(self, gramian, task_losses, present):
    return tf.math.divide_no_nan(present, tf.sqrt(tf.linalg.diag_part(gramian)))


def test_gramian_aggregator_forms_the_combination_by_hand():
  method = _UnitNorm()
  method.build(2)
  # g1 = (3, 4) (norm 5), g2 = (0, 2) (norm 2): w = (1/5, 1/2), shared = (0.6, 0.8) + (0, 1).
  shared, w = method.combine(tf.constant([[3.0, 4.0], [0.0, 2.0]]), tf.ones([2]), tf.ones([2]))
  np.testing.assert_allclose(w, [0.2, 0.5], rtol=1e-6)
  np.testing.assert_allclose(shared, [0.6, 1.8], rtol=1e-6)


class _FirstOnly(base.Method):
  """Test method: the shared update follows task 0 alone (weights 1, 0, 0)."""
  name = "first_only"

  def __init__(self, family):
    super().__init__()
    self.family = family
    self.epoch_losses = []

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.after_calls = tf.Variable(0, trainable=False)
    self.after_losses = tf.Variable(tf.zeros([num_tasks]), trainable=False)

  def combine(self, task_grads, task_losses, present):
    w = tf.one_hot(0, self.num_tasks)
    return tf.linalg.matvec(task_grads, w, transpose_a=True), w

  def end_epoch(self, mean_task_losses):
    self.epoch_losses.append(np.asarray(mean_task_losses).tolist())

  def after_update(self, task_losses, present):
    self.after_calls.assign_add(1)
    self.after_losses.assign(task_losses)


def _trainer(tmp_path, method, epochs=1):
  path = tmp_path / "tiny.parquet"
  helpers.tiny_frame(per_task=40).to_parquet(path)
  data = io.load_from_config(config_lib.DataConfig(path=str(path)))
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  net = models.build_model("shared", [t.name for t in data.tasks], len(data.feature_names))
  cfg = config_lib.TrainConfig(epochs=epochs, batch_size=64, jit_compile=False,
                               summaries=False, grad_stats=False)
  return trainer_lib.Trainer(cfg, net, data.tasks, prepared, method), net


def test_aggregator_heads_take_their_own_gradient_weightings_their_weighted_one(tmp_path):
  """Weight 0 for hardness in the shared combination: an aggregator still trains its head, a
  loss weighting does not."""
  for family, head_moves in (("aggregator", True), ("weighting", False)):
    trainer, net = _trainer(tmp_path, _FirstOnly(family))
    before = [v.numpy().copy() for v in net.task_variables["hardness"]]
    trainer._train_epoch(tf.constant(1, tf.int64))  # pylint: disable=protected-access
    after = [v.numpy() for v in net.task_variables["hardness"]]
    moved = any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert moved == head_moves, family


def test_end_epoch_sees_each_epochs_mean_losses_and_after_update_every_step(tmp_path):
  method = _FirstOnly("aggregator")
  method.needs_losses_after_update = True
  trainer, _ = _trainer(tmp_path, method, epochs=2)
  history = trainer.fit()
  assert len(method.epoch_losses) == 2
  for logged, record in zip(method.epoch_losses, history):
    np.testing.assert_allclose(logged, list(record["train_loss"].values()), rtol=1e-6)
  assert int(method.after_calls.numpy()) == 2 * (trainer.num_train // 64)
  assert np.all(np.isfinite(method.after_losses.numpy()))
