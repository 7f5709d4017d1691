"""SI: the sum of log losses."""

import numpy as np

from tests.surgery import common


def test_si_by_hand():
  _, w = common.weights("si", [2.0, 0.5])
  np.testing.assert_allclose(w, [0.5, 2.0])


def test_absent_and_perfectly_fitted_tasks_get_weight_zero():
  _, w = common.weights("si", [2.0, 0.0, 0.0], present=(1.0, 0.0, 1.0))
  np.testing.assert_allclose(w, [0.5, 0.0, 0.0])
