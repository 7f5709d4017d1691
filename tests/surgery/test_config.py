"""ConFIG: equal angles with every task gradient."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  shared, w = common.combine(common.built("config", 2), [[1.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(shared, [1.0, 1.0], atol=1e-5)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_equal_cosines_and_length(num_tasks):
  grads = common.stack(num_tasks, num_params=16, seed=60 + num_tasks).numpy()
  shared, _ = common.combine(common.built("config", num_tasks), grads)
  units = grads / np.linalg.norm(grads, axis=1, keepdims=True)
  cosines = units @ shared / np.linalg.norm(shared)
  np.testing.assert_allclose(cosines, cosines.mean(), rtol=1e-3)
  assert cosines.min() > 0
  direction = shared / np.linalg.norm(shared)
  assert np.linalg.norm(shared) == pytest.approx(np.sum(grads @ direction), rel=1e-4)


def test_order_invariant_and_absent_task():
  grads = common.stack(3, seed=8).numpy()
  common.assert_order_invariant("config", grads, [1, 0, 2], atol=1e-4)
  common.assert_absent_ignored("config", grads, 2, atol=1e-4)
