"""Properties every registered method must have: shapes, finiteness, absent tasks, scales,
eager == graph, a checkpoint round trip of its state."""

import numpy as np
import pytest
import tensorflow as tf

from kmtl.surgery import registry

NAMES = sorted(registry.METHODS)
ALL = tf.ones([3])  # every task present


def _stack(num_tasks, num_params=6, seed=0):
  return tf.constant(np.random.default_rng(seed).normal(size=(num_tasks, num_params)),
                     tf.float32)


def _built(name, num_tasks, seed=0):
  method = registry.create(name)
  method.build(num_tasks, norm_columns=(2, 6), seed=seed, num_params=6)
  return method


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_tasks", [1, 2, 5])
def test_shape_and_finite(name, num_tasks):
  method = _built(name, num_tasks)
  for step in range(3):
    shared, w = method.combine(_stack(num_tasks, seed=step), tf.ones([num_tasks]) * (step + 1),
                               tf.ones([num_tasks]))
    assert shared.shape == (6,) and w.shape == (num_tasks,)
    assert np.all(np.isfinite(shared)) and np.all(np.isfinite(w))


@pytest.mark.parametrize("name", NAMES)
def test_runs_in_float64_with_the_float32_answer(name):
  """A float64 stack gives float64 results, equal to the float32 ones to float32 rounding
  (methods with float32 state compute in float32; the solvers run in float64 either way)."""
  grads, losses = _stack(3).numpy(), np.array([1.0, 2.0, 0.5])
  wide = _built(name, 3).combine(tf.constant(grads, tf.float64), tf.constant(losses),
                                 tf.ones([3], tf.float64))
  narrow = _built(name, 3).combine(tf.constant(grads), tf.constant(losses, tf.float32), ALL)
  for a, b in zip(wide, narrow):
    assert a.dtype == tf.float64
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_absent_task_contributes_nothing(name):
  method = _built(name, 3)
  grads = _stack(3).numpy()
  grads[1] = 0.0
  losses = tf.constant([1.0, 0.0, 2.0])
  for _ in range(3):
    shared, w = method.combine(tf.constant(grads), losses, tf.constant([1.0, 0.0, 1.0]))
    assert np.all(np.isfinite(shared)) and np.all(np.isfinite(w))
  # The same result as if the absent row were not there at all, up to task weights.
  reference = _built(name, 2)
  for _ in range(3):
    expected, _ = reference.combine(tf.constant(grads[[0, 2]]), tf.constant([1.0, 2.0]),
                                    tf.ones([2]))
  if name == "rlw":  # one random draw per task: T = 3 and T = 2 draw differently
    assert w.numpy()[1] == 0.0 and w.numpy().sum() == pytest.approx(1.0)
  elif name != "gradnorm":  # GradNorm keeps T = 3 weights summing to 3: its scale differs.
    np.testing.assert_allclose(shared, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_all_zero_stack(name):
  method = _built(name, 3)
  shared, w = method.combine(tf.zeros([3, 6]), tf.zeros([3]), tf.zeros([3]))
  np.testing.assert_array_equal(shared, np.zeros(6))
  assert np.all(np.isfinite(w))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [0.0, 1e-10, 1e-3, 1.0, 1e3, 1e10])
def test_scales(name, scale):
  method = _built(name, 3)
  shared, w = method.combine(_stack(3) * scale, tf.ones([3]), tf.ones([3]))
  assert np.all(np.isfinite(shared)) and np.all(np.isfinite(w))


@pytest.mark.parametrize("name", NAMES)
def test_eager_equals_graph(name):
  eager, graph = _built(name, 3, seed=7), _built(name, 3, seed=7)
  combine = tf.function(graph.combine)
  for step in range(3):
    grads, losses = _stack(3, seed=step), tf.constant([1.0, 0.5, 2.0]) * (step + 1)
    e_shared, e_w = eager.combine(grads, losses, ALL)
    g_shared, g_w = combine(grads, losses, ALL)
    np.testing.assert_allclose(e_shared, g_shared, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e_w, g_w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_compiles_under_xla(name):
  """What the training step runs: the combination (and, for a loss weighting, its weights)
  in one XLA cluster, with the same numbers as eager execution."""
  eager, compiled = _built(name, 3, seed=2), _built(name, 3, seed=2)
  part = "combine" if registry.method_class(name).needs_task_grads else "weights"
  args = ((_stack(3), tf.constant([1.0, 0.5, 2.0]), tf.constant([1.0, 0.0, 1.0]))
          if part == "combine" else (tf.constant([1.0, 0.5, 2.0]), tf.constant([1.0, 0.0, 1.0])))
  result = tf.function(getattr(compiled, part), jit_compile=True)(*args)
  if name not in ("pcgrad", "gradvac", "graddrop", "rlw"):  # XLA draws other random numbers
    for u, v in zip(tf.nest.flatten(getattr(eager, part)(*args)), tf.nest.flatten(result)):
      np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in NAMES if not registry.method_class(n).needs_task_grads])
def test_loss_weighting_path_equals_combine(name):
  a, b = _built(name, 3), _built(name, 3)
  grads, losses = _stack(3), tf.constant([1.0, 0.5, 2.0])
  shared, w = a.combine(grads, losses, ALL)
  w_only = b.weights(losses, ALL)
  np.testing.assert_allclose(w, w_only)
  np.testing.assert_allclose(shared, tf.linalg.matvec(grads, w_only, transpose_a=True),
                             rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, tmp_path):
  method = _built(name, 3, seed=1)
  for step in range(2):
    method.combine(_stack(3, seed=step), tf.constant([1.0, 0.5, 2.0]), ALL)
  path = tf.train.Checkpoint(method=method).write(str(tmp_path / "ckpt"))
  expected = method.combine(_stack(3, seed=9), tf.constant([1.0, 0.5, 2.0]), ALL)

  restored = _built(name, 3, seed=1)
  tf.train.Checkpoint(method=restored).read(path).assert_consumed()
  result = restored.combine(_stack(3, seed=9), tf.constant([1.0, 0.5, 2.0]), ALL)
  for u, v in zip(expected, result):
    np.testing.assert_allclose(u, v, rtol=1e-6)

  restored.reset()
  fresh = _built(name, 3, seed=1)
  for u, v in zip(restored.combine(_stack(3), tf.ones([3]), ALL),
                  fresh.combine(_stack(3), tf.ones([3]), ALL)):
    np.testing.assert_allclose(u, v, rtol=1e-6)


def _state(method):
  """Every per-task variable of the method's own state (not optimizer slots)."""
  return {v.name: v.numpy().copy() for v in method.variables
          if v.shape == (3,) and "adam" not in v.name.lower()}


@pytest.mark.parametrize("name", NAMES)
def test_absent_task_state_does_not_move(name):
  """A task without labels in a batch keeps its learned state exactly, even after steps with
  momentum in the method's own optimizer."""
  method = _built(name, 3)
  for step in range(3):
    method.combine(_stack(3, seed=step), tf.constant([1.0, 0.5, 2.0]) * (step + 1), ALL)
  before = _state(method)
  grads = _stack(3, seed=5).numpy()
  grads[1] = 0.0
  for _ in range(4):
    method.combine(tf.constant(grads), tf.constant([3.0, 0.0, 0.2]),
                   tf.constant([1.0, 0.0, 1.0]))
  for key, value in _state(method).items():
    assert value[1] == before[key][1], (key, value, before[key])


@pytest.mark.parametrize("name", ["uw", "gradnorm", "gradscale"])
def test_present_task_with_zero_loss_is_present(name):
  """Presence comes from the mask, not from loss != 0: a perfectly fitted task still moves
  (or, for gradient scaling, is weighted)."""
  method = _built(name, 3)
  grads = _stack(3).numpy()
  before = _state(method)
  _, w = method.combine(tf.constant(grads), tf.constant([1.0, 0.0, 2.0]), ALL)
  moved = any(value[1] != before[key][1] for key, value in _state(method).items())
  assert moved or w.numpy()[1] > 0


@pytest.mark.parametrize("name", ["uw", "gradnorm"])
def test_reset_keeps_the_learning_rate(name):
  method = _built(name, 3)
  method.combine(_stack(3), tf.ones([3]), ALL)
  learning_rate = float(method.optimizer.learning_rate.numpy())
  method.reset()
  assert float(method.optimizer.learning_rate.numpy()) == learning_rate
  assert learning_rate == pytest.approx(method.learning_rate)
  assert int(method.optimizer.iterations.numpy()) == 0
  assert all(not np.any(v.numpy()) for v in method.optimizer.variables
             if v is not method.optimizer.learning_rate)
