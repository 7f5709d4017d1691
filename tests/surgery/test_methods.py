"""Each method on a 2-task example worked out by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kmtl.surgery import registry

G = tf.constant([[1.0, 0.0], [-1.0, 1.0]])
LOSSES = tf.constant([1.0, 1.0])
ON = tf.ones([2])  # both tasks present


def _method(name, **kwargs):
  method = registry.create(name, **kwargs)
  method.build(2, seed=0)
  return method


def test_none_sums():
  shared, w = _method("none").combine(G, LOSSES, ON)
  np.testing.assert_allclose(shared, [0.0, 1.0])
  np.testing.assert_allclose(w, [1.0, 1.0])


def test_pcgrad_two_tasks_by_hand():
  # g1.g2 = -1: g1' = g1 - (-1 / 2) g2 = (0.5, 0.5); g2' = g2 - (-1 / 1) g1 = (0, 1).
  shared, w = _method("pcgrad").combine(G, LOSSES, ON)
  np.testing.assert_allclose(shared, [0.5, 1.5], rtol=1e-6)
  np.testing.assert_allclose(w, [1.0, 1.0])


def test_pcgrad_matches_torchjd_pinned_values():
  # J = [[-4, 1, 1], [6, 1, 1]]: g1.g2 = -22, |g1|^2 = 18, |g2|^2 = 38.
  shared, _ = _method("pcgrad").combine(tf.constant([[-4.0, 1, 1], [6.0, 1, 1]]), LOSSES, ON)
  np.testing.assert_allclose(shared, [0.5848, 3.8012, 3.8012], atol=1e-4)


def test_pcgrad_leaves_agreeing_gradients_alone():
  g = tf.constant([[1.0, 2.0], [2.0, 1.0]])
  shared, _ = _method("pcgrad").combine(g, LOSSES, ON)
  np.testing.assert_allclose(shared, [3.0, 3.0])


def test_pcgrad_equals_sequential_projection_in_its_orders():
  # Five random gradients, projected one task at a time in NumPy in the orders the method's
  # generator draws (a twin seeded alike gives them).
  g = np.random.default_rng(3).normal(size=(5, 7)).astype(np.float32)
  method, twin = registry.create("pcgrad"), registry.create("pcgrad")
  method.build(5, seed=11)
  twin.build(5, seed=11)
  orders = [twin.random_order(i).numpy() for i in range(5)]
  expected = np.zeros(7)
  for i in range(5):
    v = g[i].astype(np.float64)
    for j in orders[i]:
      dot = v @ g[j]
      if dot < 0:
        v = v - dot / (g[j] @ g[j]) * g[j]
    expected += v
  shared, _ = method.combine(tf.constant(g), tf.ones([5]), tf.ones([5]))
  np.testing.assert_allclose(shared.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_pcgrad_order_is_random_per_step_but_seeded():
  # Three mutually conflicting gradients: the result depends on the visiting order.
  g = tf.constant([[1.0, 0.0], [-0.8, 0.6], [-0.6, -0.8]])
  losses = tf.ones([3])

  def results(seed, steps=8):
    method = registry.create("pcgrad")
    method.build(3, seed=seed)
    return np.stack([method.combine(g, losses, ON)[0].numpy() for _ in range(steps)])
  first = results(0)
  np.testing.assert_array_equal(first, results(0))
  assert len({tuple(np.round(r, 6)) for r in first}) > 1


def test_gradnorm_first_step_by_hand():
  method = _method("gradnorm", alpha=1.5, learning_rate=0.1)
  shared, w = method.combine(G, LOSSES, ON)
  np.testing.assert_allclose(shared, [0.0, 1.0])
  np.testing.assert_allclose(w, [1.0, 1.0])
  # G = (1, sqrt 2), target 1.207 for both: w1 grows, w2 shrinks, by lr (Adam's first step).
  np.testing.assert_allclose(method.task_weights, [1.1, 0.9], rtol=1e-5)
  np.testing.assert_allclose(method.initial_losses, [1.0, 1.0])


def test_gradnorm_inverse_training_rate_with_alpha():
  method = _method("gradnorm", alpha=1.0, learning_rate=0.1, anchor_batches=1)
  g = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  method.combine(g, tf.constant([2.0, 2.0]), ON)  # L(0) = (2, 2); equal norms: w stays (1, 1).
  np.testing.assert_allclose(method.task_weights, [1.0, 1.0], atol=1e-6)
  # Task 1 has trained faster (ratio 0.5 vs 1): r = (2/3, 4/3), target = 1 * r, G = (1, 1).
  # sign(G - target) = (+1, -1): task 1's weight falls, task 2's rises.
  method.combine(g, tf.constant([1.0, 2.0]), ON)
  w = method.task_weights.numpy()
  assert w[0] < 1.0 < w[1] and w.sum() == pytest.approx(2.0)


def test_gradscale_by_hand():
  method = _method("gradscale", momentum=0.0)
  shared, w = method.combine(tf.constant([[3.0, 0.0], [0.0, 1.0]]), LOSSES, ON)
  np.testing.assert_allclose(w, [2.0 / 3.0, 2.0], rtol=1e-6)
  np.testing.assert_allclose(shared, [2.0, 2.0], rtol=1e-6)
  summed = _method("gradscale", momentum=0.0, target="sum")
  _, w = summed.combine(tf.constant([[3.0, 0.0], [0.0, 1.0]]), LOSSES, ON)
  np.testing.assert_allclose(w, [math.sqrt(10) / 3, math.sqrt(10)], rtol=1e-6)


def test_gradscale_moving_average():
  method = _method("gradscale", momentum=0.5)
  method.combine(tf.constant([[2.0, 0.0], [0.0, 2.0]]), LOSSES, ON)
  _, w = method.combine(tf.constant([[4.0, 0.0], [0.0, 2.0]]), LOSSES, ON)
  # Averages (0.5 * 2 + 0.5 * 4, 2) = (3, 2); target 2.5.
  np.testing.assert_allclose(method.norm_average, [3.0, 2.0])
  np.testing.assert_allclose(w, [2.5 / 3.0, 2.5 / 2.0], rtol=1e-6)


def test_uw_by_hand():
  method = _method("uw", learning_rate=0.1)
  shared, w = method.combine(G, tf.constant([3.0, 1.0]), ON)
  np.testing.assert_allclose(w, [0.5, 0.5])
  np.testing.assert_allclose(shared, [0.0, 0.5])
  # Gradients (1 - L) / 2 = (-1, 0): s1 rises by lr (Adam's first step), s2 stays.
  np.testing.assert_allclose(method.log_variances, [0.1, 0.0], atol=1e-6)


def test_unknown_method_lists_the_registered_ones():
  with pytest.raises(ValueError, match=r"Expected one of \['none', 'pcgrad'"):
    registry.create("pcgard")


@pytest.mark.parametrize("name, kwargs", [
    ("gradnorm", {"alpha": -1.0}), ("gradscale", {"target": "max"}),
    ("gradscale", {"momentum": 1.0}), ("uw", {"learning_rate": 0.0}),
    ("dwa", {"temperature": 0.0}), ("stch", {"mu": -1.0}), ("stch", {"anchor_batches": 0}),
    ("famo", {"gamma": -1.0}), ("famo", {"learning_rate": 0.0}),
    ("imtl_l", {"learning_rate": -1.0}), ("gradvac", {"beta": 0.0}),
    ("mgda", {"normalization": "l1"}), ("cagrad", {"c": -0.5})])
def test_bad_hyper_parameters_are_one_line_naming_them(name, kwargs):
  key = next(iter(kwargs))
  with pytest.raises(ValueError, match=f"--surgery_args: invalid value for {name}: .*{key}"):
    registry.create(name, **kwargs)


def test_gradnorm_anchor_is_the_mean_of_the_first_labelled_batches():
  method = _method("gradnorm", anchor_batches=3)
  present = tf.constant([1.0, 0.0])
  for loss in (4.0, 2.0):
    method.combine(G, tf.constant([loss, 0.0]), present)
  np.testing.assert_allclose(method.initial_losses, [3.0, 0.0])
  for loss in (0.0, 5.0, 7.0):  # a labelled batch with loss 0 counts; the fourth does not
    method.combine(G, tf.constant([loss, 1.0]), ON)
  np.testing.assert_allclose(method.initial_losses, [2.0, (1.0 + 1.0 + 1.0) / 3])


def test_gradnorm_renormalises_present_weights_only():
  method = registry.create("gradnorm", learning_rate=0.1)
  method.build(3, seed=0)
  g = tf.constant([[1.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
  method.combine(g, tf.constant([1.0, 0.0, 1.0]), tf.constant([1.0, 0.0, 1.0]))
  w = method.task_weights.numpy()
  assert w[1] == 1.0 and w[0] > 1.0 > w[2]
  assert w.sum() == pytest.approx(3.0)


def test_hyper_parameters_from_text_reach_the_method():
  from kmtl import parsing  # pylint: disable=g-import-not-at-top
  args = parsing.parse_surgery_args("target=sum,momentum=0.5")
  assert args == (("target", "sum"), ("momentum", 0.5))
  method = registry.create("gradscale", **dict(args))
  assert (method.target, method.momentum) == ("sum", 0.5)
  assert registry.create("gradnorm", **dict(parsing.parse_surgery_args(
      "alpha=2;anchor_batches=4"))).anchor_batches == 4
  with pytest.raises(ValueError, match=r"gradnorm takes \['alpha', 'learning_rate', "
                                       r"'anchor_batches'\], not \['beta'\]"):
    registry.create("gradnorm", beta=1.0)
  with pytest.raises(ValueError, match="pcgrad takes no hyper-parameters"):
    registry.create("pcgrad", alpha=1.0)
  for bad in ("alpha", "alpha=1,alpha=2", "=3"):
    with pytest.raises(ValueError, match="--surgery_args"):
      parsing.parse_surgery_args(bad)


def test_hyper_parameters_read_from_source_match_the_constructors():
  """`registry.hyper_parameters` reads each method's defaults without importing it (so a bad
  --surgery_args is refused before TensorFlow loads); they equal the imported signatures."""
  import inspect  # pylint: disable=g-import-not-at-top
  for name in registry.METHODS:
    signature = inspect.signature(registry.method_class(name)).parameters
    assert registry.hyper_parameters(name) == {k: p.default for k, p in signature.items()}, name
  with pytest.raises(ValueError, match=r"^--surgery_args: cagrad's c takes a number\. "
                                       r"Received: 'half'$"):
    registry.check_arguments("cagrad", {"c": "half"})
  with pytest.raises(ValueError, match=r"^--surgery_args: mgda takes \['normalization'\], "
                                       r"not \['alpha'\]$"):
    registry.check_arguments("mgda", {"alpha": 1.0})
