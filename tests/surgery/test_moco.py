"""MoCo: tracked gradients and weights by a step on their Gramian."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  method = common.built("moco", 2, num_params=2)
  shared, w = common.combine(method, [[2.0, 0.0], [0.0, 3.0]])
  np.testing.assert_allclose(w, [0.5, 0.5], rtol=1e-6)
  np.testing.assert_allclose(shared, [0.25, 0.25], rtol=1e-6)


def test_weights_favour_the_smaller_tracked_gradient():
  """lambda <- softmax(lambda - gamma Y Y^T lambda): the task with the smaller tracked
  gradient gains weight, as the min-norm direction does."""
  method = common.built("moco", 2, num_params=2, beta=1.0)
  _, w = common.combine(method, [[1.0, 0.0], [0.0, 1.0]], losses=[2.0, 1.0])
  # Y = diag(2, 1): scores 1/2 - 0.1 (2, 0.5) = (0.3, 0.45).
  expected = np.exp([0.3, 0.45]) / np.exp([0.3, 0.45]).sum()
  np.testing.assert_allclose(w, expected, rtol=1e-5)
  assert w[1] > w[0]


def test_absent_task_and_bad_values():
  grads = common.stack(3, seed=13).numpy()
  common.assert_absent_ignored("moco", grads, 1, rtol=1e-5, atol=1e-6)
  for kwargs in ({"beta": 0.0}, {"gamma": 2.0}, {"rho": -1.0}):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
      common.built("moco", 2, num_params=2, **kwargs)
