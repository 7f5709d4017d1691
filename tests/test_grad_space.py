"""Representation-space task gradients (`--grad_space=representation`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import losses as losses_lib
from kmtl import models
from kmtl import step as step_lib
from kmtl.data import schema
from kmtl.surgery import base
from kmtl.surgery import registry

TASKS = (schema.TaskSpec("a", schema.REGRESSION), schema.TaskSpec("b", schema.REGRESSION))


class _Sum(base.Method):
  """An aggregator that adds the task gradients: representation and parameter space agree."""
  name = "sum"
  family = "aggregator"

  def combine(self, task_grads, task_losses, present):
    return tf.reduce_sum(task_grads, axis=0), tf.ones_like(task_losses)


def _update(method, space, seed=0, mode="loop", num_params=4 * 6):
  keras.utils.set_random_seed(seed)
  net = models.build_model("shared", [t.name for t in TASKS], 5,
                           config_lib.ModelConfig(trunk_units=(8, 6), head_units=(4,)))
  method.build(2, num_params=num_params)
  optimizer = keras.optimizers.SGD(learning_rate=0.1)
  task_vars = [v for t in TASKS for v in net.task_variables[t.name]]
  optimizer.build(list(net.shared_variables) + task_vars)
  return step_lib.UpdateStep(net, TASKS, method, optimizer, list(net.shared_variables), task_vars,
                             tf.ones([2]), tf.Variable(tf.ones([2])), config_lib.LossConfig(),
                             grad_mode=mode, grad_space=space)


def _batch():
  rng = np.random.default_rng(1)
  x = tf.constant(rng.normal(size=(4, 5)), tf.float32)
  y = tf.constant(rng.normal(size=(4, 2)), tf.float32)
  m = tf.constant([[1, 1], [1, 0], [0, 1], [1, 1]], tf.float32)
  return x, y, m, tf.ones([4, 2])


def test_a_plain_sum_gives_the_same_update_in_both_spaces():
  steps = [_update(_Sum(), space) for space in ("parameters", "representation")]
  for update in steps:
    update(*_batch(), tf.constant(1, tf.int64), False)
  for a, b in zip(steps[0].net.model.weights, steps[1].net.model.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_the_stack_holds_each_task_gradient_of_the_representation():
  update = _update(registry.create("pcgrad"), "representation")
  x, y, m, sw = _batch()
  with tf.GradientTape(persistent=True) as tape:
    activations, predictions = update.net.trunk_activations(x, training=True)
    z = activations[-1]
    per_task = losses_lib.task_loss_list(TASKS, {"a": y[:, 0], "b": y[:, 1]}, predictions,
                                         {"a": m[:, 0], "b": m[:, 1]})
  expected = np.stack([tape.gradient(loss, z).numpy().ravel() for loss in per_task])
  shared_before = [v.numpy() for v in update.shared_vars]
  _, _, finite, _, stack, shared_grads = update(x, y, m, sw, tf.constant(1, tf.int64), False)
  assert bool(finite)
  np.testing.assert_allclose(stack.numpy(), expected, rtol=1e-5, atol=1e-7)
  # PCGrad on these two vectors by hand, then back through the trunk once.
  g = expected.copy()
  for i, j in ((0, 1), (1, 0)):
    dot = expected[i] @ expected[j]
    if dot < 0:
      g[i] = g[i] - dot / (expected[j] @ expected[j]) * expected[j]
  combined = tf.reshape(tf.constant(g.sum(axis=0), tf.float32), z.shape)
  want = tape.gradient(z, update.shared_vars, output_gradients=combined)
  for got, w in zip(shared_grads, want):
    np.testing.assert_allclose(got.numpy(), w.numpy(), rtol=1e-4, atol=1e-6)
  assert any(not np.allclose(v.numpy(), b) for v, b in zip(update.shared_vars, shared_before))


@pytest.mark.parametrize("method", ["pcgrad", "mgda", "upgrad"])
def test_the_batched_trunk_backward_gives_the_exact_stack(method):
  num_params = 5 * 8 + 8 + 8 * 6 + 6
  runs = [_update(registry.create(method), "parameters", mode=mode, num_params=num_params)
          for mode in ("loop", "batched")]
  stacks = [update(*_batch(), tf.constant(1, tf.int64), False)[4] for update in runs]
  np.testing.assert_allclose(stacks[1].numpy(), stacks[0].numpy(), rtol=1e-5, atol=1e-7)
  for a, b in zip(runs[0].net.model.weights, runs[1].net.model.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("train, message", [
    (dict(arch="mmoe", surgery="pcgrad"), "--arch=mmoe has none"),
    (dict(surgery="moco"), "--surgery=moco keeps a running state per parameter"),
    (dict(surgery="pcgrad", strategy="mirrored"), "runs on one device"),
    (dict(surgery="pcgrad", grad_space="parameters", grad_mode="batched", arch="structured"),
     "--grad_mode=batched needs one trunk"),
])
def test_settings_it_cannot_serve_are_refused(train, message):
  with pytest.raises(ValueError, match=message):
    config_lib.RunConfig(train=config_lib.TrainConfig(**{"grad_space": "representation",
                                                         **train}))


@pytest.mark.parametrize("space, mode", [("representation", "loop"), ("parameters", "batched")])
def test_bfloat16_stacks_reach_the_method_in_float32(space, mode):
  keras.utils.set_random_seed(0)
  net = models.build_model("shared", [t.name for t in TASKS], 5, config_lib.ModelConfig(
      trunk_units=(8, 6), head_units=(4,), precision="bfloat16"))
  method = registry.create("pcgrad")
  method.build(2, num_params=4 * 6 if space == "representation" else 5 * 8 + 8 + 8 * 6 + 6)
  optimizer = keras.optimizers.SGD(learning_rate=0.1)
  task_vars = [v for t in TASKS for v in net.task_variables[t.name]]
  optimizer.build(list(net.shared_variables) + task_vars)
  update = step_lib.UpdateStep(net, TASKS, method, optimizer, list(net.shared_variables),
                               task_vars, tf.ones([2]), tf.Variable(tf.ones([2])),
                               config_lib.LossConfig(), grad_mode=mode, grad_space=space)
  before = [v.numpy() for v in update.shared_vars]
  _, _, finite, _, stack, _ = update(*_batch(), tf.constant(1, tf.int64), False)
  assert bool(finite) and stack.dtype == tf.float32
  assert any(not np.allclose(v.numpy(), b) for v, b in zip(update.shared_vars, before))
