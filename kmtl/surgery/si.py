"""`si`: scale-invariant loss, the sum of the log losses (as in Navon et al., "Multi-Task
Learning as a Bargaining Game", ICML 2022, arXiv:2202.01017, section 6, and LibMTL)."""

import tensorflow as tf

from kmtl.surgery import base


class ScaleInvariant(base.LossWeighting):
  """The objective is sum_t log L_t over present tasks, invariant to rescaling any task's
  loss; its gradient weights each loss by w_t = 1 / L_t. A present task with loss 0 (a perfect
  fit) gets weight 0 rather than infinity. Stateless.

  Example: L = (2, 0.5): w = (0.5, 2).
  """

  name = "si"

  def weights(self, task_losses, present):
    return tf.math.divide_no_nan(present, tf.maximum(task_losses, 0.0))
