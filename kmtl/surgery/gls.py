"""`gls`: the geometric loss strategy (Chennupati et al., "MultiNet++: Multi-Stream Feature
Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019,
arXiv:1904.08492)."""

import tensorflow as tf

from kmtl.surgery import base


class GeometricLoss(base.LossWeighting):
  """The objective is the geometric mean of the present tasks' losses, (prod_t L_t)^(1/n) with
  n present tasks. Its gradient is sum_t (GM / (n L_t)) grad L_t, so w_t = GM / (n L_t). A
  present task with loss 0 makes the geometric mean 0, and every weight 0 for that step.
  Stateless.

  Example: L = (1, 4): GM = 2, w = (2 / (2 * 1), 2 / (2 * 4)) = (1, 1/4).
  """

  name = "gls"

  def weights(self, task_losses, present):
    count = tf.reduce_sum(present)
    safe = tf.where(present > 0, tf.maximum(task_losses, 0.0), tf.ones_like(task_losses))
    log_mean = tf.math.divide_no_nan(tf.reduce_sum(tf.math.log(safe) * present), count)
    geometric = tf.where(count > 0, tf.exp(log_mean), 0.0)
    return tf.math.divide_no_nan(geometric * present, count * safe)
