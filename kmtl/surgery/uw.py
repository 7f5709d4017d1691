"""`uw`: homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, "Multi-Task Learning
Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018,
arXiv:1705.07115)."""

import tensorflow as tf

from kmtl.surgery import base


class UncertaintyWeighting(base.LossWeighting):
  """Learnable log-variances s_t = log sigma_t^2 (start at 0); the objective is
  sum_t (exp(-s_t) L_t / 2 + s_t / 2), the paper's regression form used for every task, so
  w_t = exp(-s_t) / 2. s takes an Adam step on that objective each step (gradient
  (1 - exp(-s_t) L_t) / 2). A task without labels in the batch keeps its s_t exactly: its
  gradient is 0 and its value is restored after the step, although Adam's moment estimates of
  it decay as they do for any zero gradient. State: s and the Adam slots.

  Example: s = (0, 0) gives w = (0.5, 0.5); with losses (1, 1) s does not move.
  """

  name = "uw"

  def __init__(self, learning_rate=1e-3):
    super().__init__()
    if learning_rate <= 0:
      raise ValueError(f"`learning_rate` must be > 0. Received: {learning_rate}")
    self.learning_rate = float(learning_rate)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.log_variances = tf.Variable(tf.zeros([num_tasks]), trainable=False,
                                     name="log_variances")
    self.optimizer = base.own_optimizer(self.log_variances, self.learning_rate)

  def reset(self):
    self.log_variances.assign(tf.zeros([self.num_tasks]))
    base.clear_optimizer(self.optimizer)

  def weights(self, task_losses, present):
    previous = tf.identity(self.log_variances)
    w = 0.5 * tf.exp(-previous)
    grad = 0.5 * (1.0 - tf.exp(-previous) * task_losses) * present
    self.optimizer.apply([grad], [self.log_variances])
    self.log_variances.assign(base.keep_absent(self.log_variances, previous, present))
    return w

  def __repr__(self):
    return f"UncertaintyWeighting(learning_rate={self.learning_rate})"
