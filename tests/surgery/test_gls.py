"""GLS: the geometric mean of the losses."""

import numpy as np

from tests.surgery import common


def test_gls_by_hand():
  _, w = common.weights("gls", [1.0, 4.0])
  np.testing.assert_allclose(w, [1.0, 0.25], rtol=1e-6)
  _, w = common.weights("gls", [1.0, 0.0, 4.0], present=(1.0, 0.0, 1.0))
  np.testing.assert_allclose(w, [1.0, 0.0, 0.25], rtol=1e-6)
