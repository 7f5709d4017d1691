"""`dwa`: dynamic weight average (Liu, Johns and Davison, "End-to-End Multi-Task Learning with
Attention", CVPR 2019, arXiv:1803.10704, equation 7)."""

import tensorflow as tf

from kmtl.surgery import base


class DynamicWeightAverage(base.LossWeighting):
  """w_t = n exp(r_t / T) / sum_s exp(r_s / T) over the n present tasks, where
  r_t = L_t(e-1) / L_t(e-2) is the ratio of the task's mean training loss over the last two
  epochs (the `end_epoch` hook records them) and T the `temperature` (default 2, as the paper).
  For the first two epochs w_t = 1. A task with no training loss in one of those epochs gets
  r_t = 0. State: the last two epochs' mean losses and the epoch count.

  Example (temperature 2): losses (1, 1) then (0.5, 1): r = (0.5, 1),
  w = 2 (e^0.25, e^0.5) / (e^0.25 + e^0.5).
  """

  name = "dwa"

  def __init__(self, temperature=2.0):
    super().__init__()
    base.check_value("temperature", temperature, temperature > 0, "> 0")
    self.temperature = float(temperature)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.epoch_losses = tf.Variable(tf.zeros([2, num_tasks]), trainable=False,
                                    name="epoch_losses")
    self.epochs_seen = tf.Variable(0, trainable=False, name="epochs_seen")

  def reset(self):
    self.epoch_losses.assign(tf.zeros_like(self.epoch_losses))
    self.epochs_seen.assign(0)

  def end_epoch(self, mean_task_losses):
    latest = tf.constant(mean_task_losses, tf.float32)
    self.epoch_losses.assign(tf.stack([self.epoch_losses[1], latest]))
    self.epochs_seen.assign_add(1)

  @base.in_float32
  def weights(self, task_losses, present):
    del task_losses
    ratios = tf.math.divide_no_nan(self.epoch_losses[1], self.epoch_losses[0])
    scores = tf.exp((ratios - tf.reduce_max(ratios)) / self.temperature) * present
    count = tf.reduce_sum(present)
    balanced = tf.math.divide_no_nan(count * scores, tf.reduce_sum(scores))
    return tf.where(self.epochs_seen >= 2, balanced, present)

  def __repr__(self):
    return f"DynamicWeightAverage(temperature={self.temperature})"
