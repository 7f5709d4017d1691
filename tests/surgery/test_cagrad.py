"""CAGrad: the conflict-averse direction."""

import numpy as np
from scipy import optimize
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  shared, _ = common.combine(common.built("cagrad", 2), [[1.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(shared, [0.6, 0.6], atol=1e-4)


def test_c_zero_is_the_mean():
  grads = common.stack(3).numpy()
  shared, _ = common.combine(common.built("cagrad", 3, c=0.0), grads)
  np.testing.assert_allclose(shared, grads.mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_dual_matches_scipy(num_tasks):
  """The update against the same construction with the dual solved by scipy."""
  grads = common.stack(num_tasks, seed=30 + num_tasks).numpy().astype(np.float64)
  c = 0.5
  g = grads @ grads.T
  mean = np.ones(num_tasks) / num_tasks
  radius = c * np.sqrt(mean @ g @ mean)
  res = optimize.minimize(lambda w: w @ g @ mean + radius * np.sqrt(w @ g @ w + 1e-12),
                          mean, bounds=[(0, 1)] * num_tasks, method="SLSQP",
                          constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                          options={"ftol": 1e-14, "maxiter": 1000})
  gw = res.x @ grads
  expected = (mean @ grads + radius / np.linalg.norm(gw) * gw) / (1 + c * c)
  shared, _ = common.combine(common.built("cagrad", num_tasks, c=c), grads)
  np.testing.assert_allclose(shared, expected, atol=1e-2 * np.linalg.norm(expected))


def test_worst_task_improves_at_least_as_much_as_under_the_mean():
  grads = np.array([[1.0, 0.0], [-0.8, 0.3]])
  shared, _ = common.combine(common.built("cagrad", 2, c=0.8), grads)
  mean = grads.mean(axis=0)
  assert min(grads @ shared / np.linalg.norm(shared)) > min(grads @ mean / np.linalg.norm(mean))


def test_absent_task_and_bad_c():
  (shared, w), (expected, _) = common.without_row("cagrad", common.stack(3).numpy(), 1)
  assert w[1] == 0.0
  np.testing.assert_allclose(shared, expected, atol=1e-5)
  with pytest.raises(ValueError, match="`c`"):
    common.built("cagrad", 2, c=-0.1)
