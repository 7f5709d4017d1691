"""IMTL-L: learned loss scales."""

import numpy as np
import tensorflow as tf

from tests.surgery import common

ON = tf.ones([2])


def test_imtl_l_by_hand():
  method = common.built("imtl_l", 2, learning_rate=0.1)
  w = method.weights(tf.constant([3.0, 1.0]), ON).numpy()
  np.testing.assert_allclose(w, [1.0, 1.0])
  # Gradients exp(s) L - 1 = (2, 0): s1 falls by lr (Adam's first step), s2 stays.
  np.testing.assert_allclose(method.log_scales.numpy(), [-0.1, 0.0], atol=1e-6)


def test_absent_task_keeps_its_scale():
  method = common.built("imtl_l", 2, learning_rate=0.1)
  method.weights(tf.constant([3.0, 2.0]), ON)
  before = method.log_scales.numpy().copy()
  w = method.weights(tf.constant([3.0, 0.0]), tf.constant([1.0, 0.0])).numpy()
  assert w[1] == 0.0 and method.log_scales.numpy()[1] == before[1]
