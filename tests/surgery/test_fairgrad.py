"""FairGrad: alpha-fair weights, G w = w^(-1/alpha)."""

import numpy as np
import pytest
from scipy import optimize

from tests.surgery import common


def test_two_tasks_by_hand():
  _, w = common.combine(common.built("fairgrad", 2, alpha=2.0), [[1.0, 0.0], [0.0, 4.0]])
  np.testing.assert_allclose(w, [1.0, 16 ** (-2 / 3)], rtol=1e-3)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_matches_scipy_least_squares(num_tasks, alpha):
  grads = common.stack(num_tasks, num_params=3 * num_tasks, seed=80 + num_tasks).numpy()
  g = grads.astype(np.float64) @ grads.T.astype(np.float64)
  exact = optimize.least_squares(lambda x: g @ x - x ** (-1 / alpha), np.ones(num_tasks),
                                 bounds=(1e-12, np.inf), xtol=1e-15, ftol=1e-15).x
  _, w = common.combine(common.built("fairgrad", num_tasks, alpha=alpha), grads)
  np.testing.assert_allclose(w, exact, rtol=2e-3)


def test_alpha_one_is_nash_mtl_and_absent_task():
  grads = common.stack(3, seed=11).numpy()
  _, w = common.combine(common.built("fairgrad", 3, alpha=1.0), grads)
  _, nash = common.combine(common.built("nash_mtl", 3), grads)
  np.testing.assert_allclose(w, nash, rtol=1e-6)
  common.assert_absent_ignored("fairgrad", grads, 2, alpha=2.0, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="alpha"):
    common.built("fairgrad", 2, alpha=0.0)
