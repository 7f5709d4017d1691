"""`excess_mtl`: robust multi-task learning with excess risks (He et al., "Robust Multi-Task
Learning with Excess Risks", ICML 2024, arXiv:2402.02009)."""

import tensorflow as tf

from kmtl.surgery import base


class ExcessMTL(base.Method):
  """Weights tasks by how far each is from convergence, its excess risk, estimated from its
  gradient: e_t = g_t^T diag(1 / h_t) g_t with h_t = sqrt(sum of g_t^2 so far), an
  Adagrad-style diagonal curvature. e_t is divided by its value at the task's first labelled
  step, and the weights take an exponentiated-gradient step, w_t <- w_t exp(eta e_t), and are
  renormalised to sum to T. `step_size` eta defaults to 1e-2 (LibMTL requires it as an
  argument). Absent tasks keep their weight and accumulators; renormalisation rescales only
  the present tasks' weights, so all T still sum to T. Heads take the gradient of the weighted
  loss (a loss weighting). State: h^2 [T, P], the first estimates, the weights.

  Example: the first labelled step fixes the reference e_t(1) and leaves w = 1; a later step
  whose e_t equals the reference multiplies every weight by exp(eta), which renormalises
  back to 1.
  """

  name = "excess_mtl"

  def __init__(self, step_size=1e-2):
    super().__init__()
    base.check_value("step_size", step_size, step_size > 0, "> 0")
    self.step_size = float(step_size)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.squares = base.per_parameter_state(self, "squares")
    self.reference = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="reference")
    self.task_weights = tf.Variable(tf.ones([num_tasks]), trainable=False, name="task_weights")

  def reset(self):
    self.squares.assign(tf.zeros_like(self.squares))
    self.reference.assign(tf.zeros_like(self.reference))
    self.task_weights.assign(tf.ones_like(self.task_weights))

  @base.in_float32
  def combine(self, task_grads, task_losses, present):
    del task_losses
    self.squares.assign_add(task_grads * task_grads * present[:, None])
    excess = tf.reduce_sum(task_grads * task_grads / tf.sqrt(self.squares + 1e-7), axis=1)
    first = tf.logical_and(present > 0, tf.equal(self.reference, 0.0))
    self.reference.assign(tf.where(first, excess, self.reference))
    stepping = present * (1.0 - tf.cast(first, present.dtype))
    w = tf.identity(self.task_weights)
    moved = w * tf.exp(self.step_size * tf.math.divide_no_nan(excess, self.reference) * stepping)
    absent_total = tf.reduce_sum(w * (1.0 - present))
    scale = tf.math.divide_no_nan(self.num_tasks - absent_total, tf.reduce_sum(moved * present))
    self.task_weights.assign(base.keep_absent(moved * scale, w, present))
    applied = self.task_weights * present
    return tf.linalg.matvec(task_grads, applied, transpose_a=True), applied

  def __repr__(self):
    return f"ExcessMTL(step_size={self.step_size})"
