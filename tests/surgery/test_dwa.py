"""DWA: weights from the last two epochs' loss ratios."""

import numpy as np
import tensorflow as tf

from tests.surgery import common

ON = tf.ones([2])


def test_dwa_by_hand():
  method = common.built("dwa", 2)
  np.testing.assert_allclose(method.weights(tf.ones([2]), ON), [1.0, 1.0])
  method.end_epoch(np.array([1.0, 1.0]))
  np.testing.assert_allclose(method.weights(tf.ones([2]), ON), [1.0, 1.0])  # one epoch only
  method.end_epoch(np.array([0.5, 1.0]))
  e = np.exp([0.25, 0.5])
  np.testing.assert_allclose(method.weights(tf.ones([2]), ON), 2 * e / e.sum(), rtol=1e-6)
  w = method.weights(tf.ones([2]), tf.constant([0.0, 1.0])).numpy()
  np.testing.assert_allclose(w, [0.0, 1.0], rtol=1e-6)
