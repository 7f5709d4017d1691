"""`uw`: homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, "Multi-Task Learning
Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018,
arXiv:1705.07115)."""

import tensorflow as tf

from kmtl.surgery import base


class UncertaintyWeighting(base.LearnedLossScales):
  """Learnable log-variances s_t = log sigma_t^2 (start at 0); the objective is
  sum_t (exp(-s_t) L_t / 2 + s_t / 2), the paper's regression form used for every task, so
  w_t = exp(-s_t) / 2. s takes an Adam step on that objective each step (gradient
  (1 - exp(-s_t) L_t) / 2); a task without labels in the batch keeps its s_t exactly.
  `learning_rate` defaults to 1e-3. State: s and the Adam slots.

  Example: s = (0, 0) gives w = (0.5, 0.5); with losses (1, 1) s does not move.
  """

  name = "uw"

  @property
  def log_variances(self):
    return self.values

  def weights_and_gradient(self, values, task_losses, present):
    del present
    precision = tf.exp(-values)
    return 0.5 * precision, 0.5 * (1.0 - precision * task_losses)
