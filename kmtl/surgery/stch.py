"""`stch`: smooth Tchebycheff scalarisation (Lin et al., "Smooth Tchebycheff Scalarization for
Multi-Objective Optimization", ICML 2024, arXiv:2402.19078)."""

import tensorflow as tf

from kmtl.surgery import base


class SmoothTchebycheff(base.LossWeighting):
  """The objective is n mu log sum_t exp(l_t / mu) over the n present tasks, a smooth maximum
  of the normalised log losses l_t = log(L_t / N_t), where N_t, the nadir, is the task's mean
  loss over its first `anchor_batches` labelled batches. Its gradient weights each loss by
  w_t = n softmax(l / mu)_t / L_t. Until a task's nadir is complete the method minimises the
  sum of log losses (w_t = 1 / L_t), as the authors' multi-task code does over its warm-up
  epochs; kmtl counts each task's own labelled batches instead of epochs, so a rare task gets
  a nadir from as many batches as a common one. `mu` (default 1) is the smoothing: small mu
  approaches the Tchebycheff maximum. State: the nadir sums and counts.

  Example (nadir complete, N = (1, 1), mu = 1): L = (1, e): l = (0, 1), softmax
  (1/(1+e), e/(1+e)), w = 2 (1/(1+e), 1/(1+e)).
  """

  name = "stch"

  def __init__(self, mu=1.0, anchor_batches=16):
    super().__init__()
    base.check_value("mu", mu, mu > 0, "> 0")
    base.check_value("anchor_batches", anchor_batches, anchor_batches >= 1, ">= 1")
    self.mu, self.anchor_batches = float(mu), int(anchor_batches)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.nadir = base.LossAnchor(num_tasks, self.anchor_batches)

  def reset(self):
    self.nadir.reset()

  @base.in_float32
  def weights(self, task_losses, present):
    ready = tf.reduce_all(self.nadir.complete * present >= present)
    self.nadir.update(task_losses, present)
    losses = tf.where(present > 0, tf.maximum(task_losses, 1e-20), tf.ones_like(task_losses))
    scores = tf.math.divide_no_nan(tf.math.log(losses / tf.maximum(self.nadir.losses, 1e-20)),
                                   self.mu)
    scores = tf.where(present > 0, scores, tf.reduce_min(scores) - 1e3)
    smooth = tf.nn.softmax(scores - tf.reduce_max(scores)) * present
    count = tf.reduce_sum(present)
    smoothed = count * smooth / losses
    return tf.where(ready, smoothed, present / losses)

  def __repr__(self):
    return f"SmoothTchebycheff(mu={self.mu}, anchor_batches={self.anchor_batches})"
