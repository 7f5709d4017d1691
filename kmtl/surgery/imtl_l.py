"""`imtl_l`: the loss part of impartial multi-task learning (Liu et al., "Towards Impartial
Multi-task Learning", ICLR 2021)."""

import tensorflow as tf

from kmtl.surgery import base


class ImpartialLoss(base.LearnedLossScales):
  """Learnable scales s_t (start at 0): the objective is sum_t (exp(s_t) L_t - s_t), so
  w_t = exp(s_t), and s takes an Adam step on it each step (gradient exp(s_t) L_t - 1), which
  drives every scaled loss exp(s_t) L_t towards 1; a task without labels in the batch keeps its
  s_t exactly. `learning_rate` defaults to 1e-3. State: s and the Adam slots.

  Example: s = (0, 0) gives w = (1, 1); with losses (1, 1) s does not move.
  """

  name = "imtl_l"

  @property
  def log_scales(self):
    return self.values

  def weights_and_gradient(self, values, task_losses, present):
    w = tf.exp(values)
    return w * present, w * task_losses - 1.0
