"""DualProj: the mean gradient projected onto the dual cone."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  # g1 = (1, 0), g2 = (-2, 1): the mean (-1/2, 1/2) conflicts with g1; its projection onto
  # {x1 >= 0, x2 >= 2 x1} is (0, 1/2).
  shared, _ = common.combine(common.built("dualproj", 2), [[1.0, 0.0], [-2.0, 1.0]])
  np.testing.assert_allclose(shared, [0.0, 0.5], atol=1e-4)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_is_the_projection_of_the_mean(num_tasks):
  """In the cone, and no other cone point tried is closer to the mean."""
  grads = common.stack(num_tasks, seed=20 + num_tasks).numpy()
  shared, _ = common.combine(common.built("dualproj", num_tasks), grads)
  scale = np.sum(grads ** 2)
  assert np.all(grads @ shared >= -1e-4 * scale)
  mean = grads.mean(axis=0)
  rng = np.random.default_rng(0)
  for _ in range(200):
    candidate = shared + 0.05 * rng.normal(size=shared.shape) * np.sqrt(scale)
    if np.all(grads @ candidate >= 0):
      assert np.sum((shared - mean) ** 2) <= np.sum((candidate - mean) ** 2) + 1e-4 * scale


def test_order_invariant_and_absent_task():
  grads = common.stack(3, seed=5).numpy()
  common.assert_order_invariant("dualproj", grads, [2, 0, 1], atol=1e-5)
  common.assert_absent_ignored("dualproj", grads, 2, atol=1e-5)
