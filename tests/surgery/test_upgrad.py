"""UPGrad: the mean of the projections onto the dual cone."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  shared, w = common.combine(common.built("upgrad", 2), [[1.0, 0.0], [-1.0, 1.0]])
  np.testing.assert_allclose(w, [1.0, 0.75], atol=1e-4)
  np.testing.assert_allclose(shared, [0.25, 0.75], atol=1e-4)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_non_conflicting_with_every_task(num_tasks):
  grads = common.stack(num_tasks, seed=10 + num_tasks).numpy()
  shared, _ = common.combine(common.built("upgrad", num_tasks), grads)
  assert np.all(grads @ shared >= -1e-4 * np.sum(grads ** 2))


def test_no_conflict_gives_the_mean():
  grads = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.3, 0.1, 2.0]])
  assert np.all(grads @ grads.T > 0)
  shared, _ = common.combine(common.built("upgrad", 3), grads)
  np.testing.assert_allclose(shared, grads.mean(axis=0), atol=1e-5)


def test_order_invariant():
  grads = common.stack(4, seed=2).numpy()
  order = [3, 1, 0, 2]
  shared, _ = common.combine(common.built("upgrad", 4), grads)
  shared_p, _ = common.combine(common.built("upgrad", 4), grads[order])
  np.testing.assert_allclose(shared, shared_p, atol=1e-5)


def test_absent_task():
  (shared, w), (expected, _) = common.without_row("upgrad", common.stack(3, seed=4).numpy(), 0)
  assert w[0] == 0.0
  np.testing.assert_allclose(shared, expected, atol=1e-5)
