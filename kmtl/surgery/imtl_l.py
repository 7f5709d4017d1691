"""`imtl_l`: the loss part of impartial multi-task learning (Liu et al., "Towards Impartial
Multi-task Learning", ICLR 2021)."""

import tensorflow as tf

from kmtl.surgery import base


class ImpartialLoss(base.LossWeighting):
  """Learnable scales s_t (start at 0): the objective is sum_t (exp(s_t) L_t - s_t), so
  w_t = exp(s_t), and s takes an Adam step on it each step (gradient exp(s_t) L_t - 1), which
  drives every scaled loss exp(s_t) L_t towards 1. A task without labels in the batch keeps
  its s_t exactly. State: s and the Adam slots.

  Example: s = (0, 0) gives w = (1, 1); with losses (1, 1) s does not move.
  """

  name = "imtl_l"

  def __init__(self, learning_rate=1e-3):
    super().__init__()
    if learning_rate <= 0:
      raise ValueError(f"`learning_rate` must be > 0. Received: {learning_rate}")
    self.learning_rate = float(learning_rate)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.log_scales = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="log_scales")
    self.optimizer = base.own_optimizer(self.log_scales, self.learning_rate)

  def reset(self):
    self.log_scales.assign(tf.zeros([self.num_tasks]))
    base.clear_optimizer(self.optimizer)

  def weights(self, task_losses, present):
    previous = tf.identity(self.log_scales)
    w = tf.exp(previous)
    self.optimizer.apply([(w * task_losses - 1.0) * present], [self.log_scales])
    self.log_scales.assign(base.keep_absent(self.log_scales, previous, present))
    return w * present

  def __repr__(self):
    return f"ImpartialLoss(learning_rate={self.learning_rate})"
