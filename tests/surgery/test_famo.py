"""FAMO: loss weights from logits moved by the losses' fall after the update."""

import numpy as np
import tensorflow as tf

from tests.surgery import common

ON = tf.ones([2])


def test_famo_weights_and_logit_step():
  method = common.built("famo", 2)
  w = method.weights(tf.constant([1.0, 3.0]), ON).numpy()
  np.testing.assert_allclose(w, [0.75, 0.25], rtol=1e-6)
  # After the update task 1's loss fell (1 -> 0.5), task 2's did not (3 -> 3): delta =
  # (log 2, 0), whose softmax-Jacobian product (log 2 / 4, -log 2 / 4) is positive for task 1,
  # so Adam's first step lowers task 1's logit and raises task 2's, by the learning rate.
  method.after_update(tf.constant([0.5, 3.0]), ON)
  logits = method.logits.numpy()
  np.testing.assert_allclose(logits, [-0.025, 0.025], atol=1e-6)
  method.after_update(tf.constant([0.5, 0.0]), tf.constant([0.0, 1.0]))
  assert method.logits.numpy()[0] == logits[0]  # absent: kept exactly
