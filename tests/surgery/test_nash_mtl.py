"""Nash-MTL: the bargaining solution G alpha = 1 / alpha."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  shared, w = common.combine(common.built("nash_mtl", 2), [[2.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(w, [0.5, 1.0], rtol=1e-3)
  np.testing.assert_allclose(shared, [1.0, 1.0], rtol=1e-3)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_bargaining_condition_and_norm(num_tasks):
  """Each task's utility g_t . d is 1 / alpha_t, so ||d||^2 = T, at any gradient scale."""
  for scale in (1e-3, 1.0, 1e3):
    grads = common.stack(num_tasks, num_params=3 * num_tasks, seed=70 + num_tasks).numpy()
    shared, w = common.combine(common.built("nash_mtl", num_tasks), grads * scale)
    assert np.all(w > 0)
    np.testing.assert_allclose(grads * scale @ shared, 1.0 / w, rtol=1e-3)
    assert np.sum(shared ** 2) == pytest.approx(num_tasks, rel=1e-3)


def test_order_invariant_and_absent_task():
  grads = common.stack(3, seed=9).numpy()
  common.assert_order_invariant("nash_mtl", grads, [2, 0, 1], rtol=1e-4, atol=1e-5)
  common.assert_absent_ignored("nash_mtl", grads, 0, rtol=1e-4, atol=1e-5)


def test_cancelling_gradients_give_no_update():
  shared, w = common.combine(common.built("nash_mtl", 2), [[1.0, 2.0], [-1.0, -2.0]])
  assert np.all(np.isfinite(w))
  np.testing.assert_allclose(shared, [0.0, 0.0], atol=1e-3)
