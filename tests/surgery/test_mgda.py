"""MGDA: the min-norm point of the convex hull."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  # min over w2 of (1 - 2 w2)^2 + w2^2: w2 = 0.4, point (0.2, 0.4).
  shared, w = common.combine(common.built("mgda", 2), [[1.0, 0.0], [-1.0, 1.0]])
  np.testing.assert_allclose(w, [0.6, 0.4], atol=1e-5)
  np.testing.assert_allclose(shared, [0.2, 0.4], atol=1e-5)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_min_norm_element_of_the_hull(num_tasks):
  """No point of the hull (random simplex weights, vertices) is shorter, and the result is
  the hull's point where every gradient's inner product is at least ||d||^2 (optimality)."""
  grads = common.stack(num_tasks, seed=num_tasks).numpy()
  shared, w = common.combine(common.built("mgda", num_tasks), grads)
  assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-5)
  best = np.sum(shared ** 2)
  rng = np.random.default_rng(0)
  for candidate in list(rng.dirichlet(np.ones(num_tasks), 200)) + list(np.eye(num_tasks)):
    assert best <= np.sum((candidate @ grads) ** 2) + 1e-5
  assert np.all(grads @ shared >= best - 1e-3 * np.sum(grads ** 2) / num_tasks)


def test_order_invariant():
  grads = common.stack(4, seed=1).numpy()
  order = [2, 0, 3, 1]
  shared, w = common.combine(common.built("mgda", 4), grads)
  shared_p, w_p = common.combine(common.built("mgda", 4), grads[order])
  np.testing.assert_allclose(shared, shared_p, atol=1e-5)
  np.testing.assert_allclose(w[order], w_p, atol=1e-5)


def test_absent_task_is_not_the_min_norm_point():
  """A zero row of an absent task would be the hull's min-norm point (0); absent, it takes no
  part."""
  (shared, w), (expected, _) = common.without_row("mgda", common.stack(3).numpy(), 1)
  assert w[1] == 0.0 and np.linalg.norm(shared) > 0.1
  np.testing.assert_allclose(shared, expected, atol=1e-5)


def test_l2_normalization_weights_unit_gradients():
  # g1 = (4, 0), g2 = (0, 1): on unit gradients w' = (1/2, 1/2); on the originals (1/8, 1/2).
  _, w = common.combine(common.built("mgda", 2, normalization="l2"),
                        [[4.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(w, [0.125, 0.5], atol=1e-5)


def test_single_task_is_plain_training():
  shared, w = common.combine(common.built("mgda", 1), [[3.0, -1.0]])
  np.testing.assert_allclose(w, [1.0])
  np.testing.assert_allclose(shared, [3.0, -1.0])


def test_bad_normalization():
  with pytest.raises(ValueError, match="normalization"):
    common.built("mgda", 2, normalization="max")
