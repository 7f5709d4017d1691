"""STCH: log losses until the nadir, then a smooth maximum."""

import math

import numpy as np
import tensorflow as tf

from tests.surgery import common

ON = tf.ones([2])


def test_stch_log_losses_until_the_nadir_then_smooth_max():
  method = common.built("stch", 2, anchor_batches=1)
  np.testing.assert_allclose(method.weights(tf.constant([2.0, 4.0]), ON), [0.5, 0.25])
  # Nadir (2, 4); L = (2, 4e): l = (0, 1), w = 2 softmax(l) / L.
  w = method.weights(tf.constant([2.0, 4.0 * math.e]), ON).numpy()
  soft = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
  np.testing.assert_allclose(w, 2 * soft / [2.0, 4.0 * math.e], rtol=1e-5)


def test_absent_task_takes_no_part():
  method = common.built("stch", 3, anchor_batches=1)
  method.weights(tf.constant([2.0, 1.0, 4.0]), tf.ones([3]))
  w = method.weights(tf.constant([2.0, 0.0, 4.0 * math.e]), tf.constant([1.0, 0.0, 1.0]))
  soft = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
  np.testing.assert_allclose(w.numpy(), [2 * soft[0] / 2.0, 0.0, 2 * soft[1] / (4 * math.e)],
                             rtol=1e-5)
