"""RLW: softmax of normal draws over the present tasks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.surgery import common


def test_rlw_is_softmax_of_normal_draws():
  method, w = common.weights("rlw", [1.0, 5.0], seed=4)
  z = tf.random.Generator.from_seed(4).normal([2]).numpy()
  np.testing.assert_allclose(w, np.exp(z) / np.exp(z).sum(), rtol=1e-6)
  _, w = common.weights("rlw", [1.0, 5.0, 2.0], present=(1.0, 0.0, 1.0))
  assert w[1] == 0.0 and w.sum() == pytest.approx(1.0)
