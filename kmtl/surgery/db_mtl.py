"""`db_mtl`: dual-balancing multi-task learning (Lin et al., "Dual-Balancing for Multi-Task
Learning", 2023, arXiv:2308.12029)."""

import tensorflow as tf

from kmtl.surgery import base


class DualBalancing(base.Method):
  """Balances losses and gradients at once. Loss scale: each task's gradient is that of
  log L_t, g_t / L_t. Gradient magnitude: an exponential moving average m_t of those
  gradients, m_t <- g_t / L_t + beta_k (m_t - g_t / L_t) with beta_k = beta / k^sigma at the
  task's k-th labelled step, and every m_t rescaled to the largest norm among the present
  tasks: shared gradient = sum_t (max_s ||m_s|| / ||m_t||) m_t. `beta` = 0.9 and
  `sigma` = 0.5 by default (LibMTL requires both as arguments). Each task's average and step
  count move only on steps with its labels, and only present tasks enter the sum. The task
  weights reported are the norm ratios max_s ||m_s|| / ||m_t||. State: the averages [T, P]
  and the per-task step counts.

  Example (first step, beta_1 = 0.9): m_t = 0.1 g_t / L_t; g1 = (2, 0), g2 = (0, 1),
  L = (1, 1) give ratios (1, 2) and the update (0.2, 0.2).
  """

  name = "db_mtl"
  family = "aggregator"

  def __init__(self, beta=0.9, sigma=0.5):
    super().__init__()
    base.check_value("beta", beta, 0.0 <= beta < 1.0, "0 <= beta < 1")
    base.check_value("sigma", sigma, sigma >= 0, ">= 0")
    self.beta, self.sigma = float(beta), float(sigma)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.averages = base.per_parameter_state(self, "averages")
    self.steps = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="steps")

  def reset(self):
    self.averages.assign(tf.zeros_like(self.averages))
    self.steps.assign(tf.zeros_like(self.steps))

  @base.in_float32
  def combine(self, task_grads, task_losses, present):
    self.steps.assign_add(present)
    log_grads = task_grads * tf.math.divide_no_nan(present, task_losses + 1e-8)[:, None]
    rate = self.beta / tf.pow(tf.maximum(self.steps, 1.0), self.sigma)
    blended = log_grads + rate[:, None] * (self.averages - log_grads)
    self.averages.assign(tf.where(present[:, None] > 0, blended, self.averages))
    norms = tf.norm(self.averages, axis=1) * present
    ratios = tf.math.divide_no_nan(tf.reduce_max(norms) * present, norms)
    return tf.linalg.matvec(self.averages, ratios, transpose_a=True), ratios

  def __repr__(self):
    return f"DualBalancing(beta={self.beta}, sigma={self.sigma})"
