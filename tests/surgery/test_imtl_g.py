"""IMTL-G: equal projections on every task's unit gradient."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  shared, w = common.combine(common.built("imtl_g", 2), [[2.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(w, [1 / 3, 2 / 3], atol=1e-5)
  np.testing.assert_allclose(shared, [2 / 3, 2 / 3], atol=1e-5)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_equal_projections_and_weights_sum_to_one(num_tasks):
  grads = common.stack(num_tasks, num_params=16, seed=40 + num_tasks).numpy()
  shared, w = common.combine(common.built("imtl_g", num_tasks), grads)
  units = grads / np.linalg.norm(grads, axis=1, keepdims=True)
  projections = units @ shared
  # float32 least squares: with 10 tasks in 16 dimensions the projections agree to ~1e-3.
  np.testing.assert_allclose(projections, projections.mean(), rtol=3e-3)
  assert w.sum() == pytest.approx(1.0, abs=1e-5)


def test_order_invariant_and_absent_task():
  grads = common.stack(3, seed=6).numpy()
  common.assert_order_invariant("imtl_g", grads, [1, 2, 0], atol=1e-4)
  for absent in (0, 1):  # the reference task itself absent, and another one
    (shared, w), (expected, _) = common.without_row("imtl_g", grads, absent)
    assert w[absent] == 0.0
    np.testing.assert_allclose(shared, expected, atol=1e-4)


def test_single_task_is_plain_training():
  shared, w = common.combine(common.built("imtl_g", 1), [[3.0, -1.0]])
  np.testing.assert_allclose(w, [1.0])
  np.testing.assert_allclose(shared, [3.0, -1.0], rtol=1e-6)
