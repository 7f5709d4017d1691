"""`gradscale`: gradient-norm loss scaling (Guo et al., "Revisit the Imbalance Optimization in
Multi-task Learning: An Experimental Analysis", 2025, arXiv:2509.23915)."""

import tensorflow as tf

from kmtl.surgery import base

TARGETS = ("mean", "sum")


class GradScale(base.Method):
  """Scales each task's loss so that the task gradient norms on the last shared layer agree.

  The paper's abstract states the rule only as "scaling task losses according to their gradient
  norms"; kmtl implements it as: n_i = an exponential moving average (momentum `momentum`) of
  ||grad_W L_i|| over the steps where task i has labels, and w_i = target / n_i with
  target = mean_j n_j (`target="mean"`, every weighted norm equals the average norm), or
  target = ||sum_j g_j|| of this step (`target="sum"`, the "AvgNorm" rule as reported
  second-hand). Shared gradient = sum_i w_i g_i; tasks absent from the batch get weight 0.
  State: the norm averages.

  Example (momentum 0, target "mean"): g1 = (3, 0), g2 = (0, 1): norms 3 and 1, target 2,
  w = (2/3, 2), shared gradient (2, 2).
  """

  name = "gradscale"

  def __init__(self, momentum=0.9, target="mean"):
    super().__init__()
    base.check_value("momentum", momentum, 0.0 <= momentum < 1.0, "0 <= momentum < 1")
    base.check_value("target", target, target in TARGETS, f"one of {list(TARGETS)}")
    self.momentum, self.target = float(momentum), target

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.norm_average = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="norm_average")

  def reset(self):
    self.norm_average.assign(tf.zeros([self.num_tasks]))

  @base.in_float32
  def combine(self, task_grads, task_losses, present):
    del task_losses
    mask = present
    block = self.norm_block(task_grads)
    norms = tf.norm(block, axis=1)
    previous = self.norm_average
    blended = tf.where(previous > 0, self.momentum * previous + (1 - self.momentum) * norms,
                       norms)
    averaged = tf.where(mask > 0, blended, previous)
    self.norm_average.assign(averaged)
    if self.target == "sum":
      target = tf.norm(tf.reduce_sum(block * mask[:, None], axis=0))
    else:
      target = tf.math.divide_no_nan(tf.reduce_sum(averaged * mask), tf.reduce_sum(mask))
    w = tf.math.divide_no_nan(target, averaged) * mask
    return tf.linalg.matvec(task_grads, w, transpose_a=True), w

  def __repr__(self):
    return f"GradScale(momentum={self.momentum}, target={self.target!r})"
