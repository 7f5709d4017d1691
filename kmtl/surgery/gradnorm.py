"""`gradnorm`: gradient normalisation (Chen et al., "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018, arXiv:1711.02257)."""

import tensorflow as tf

from kmtl.surgery import base


class GradNorm(base.Method):
  """Learnable task weights w (start at 1) that balance the tasks' gradient norms.

  Per step, on the last shared layer W: G_i = w_i ||grad_W L_i||; the relative inverse training
  rate r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0)); the target G_bar r_i^alpha is held constant;
  w takes an Adam step on sum_i |G_i - target_i| (whose gradient is
  sign(G_i - target_i) ||grad_W L_i||), is kept positive and renormalised to sum to T. The
  shared gradient of this step is sum_i w_i g_i with the weights before the update.

  L_i(0), the anchor, is the mean loss of task i over its first `anchor_batches` batches with
  labels (a running mean until then), not the loss of one batch: a rare task's first labelled
  batch often holds a single row. Tasks absent from the batch take no part in the means and
  keep their weight exactly: renormalisation rescales only the present tasks' weights, so that
  all T still sum to T. (Adam's moment estimates of an absent weight decay as for a zero
  gradient.) State: w, the anchor sums and counts, the Adam slots.

  Example: g1 = (1, 0), g2 = (-1, 1), w = (1, 1) at the first step: the shared gradient is
  (0, 1); G = (1, sqrt 2), r = (1, 1), target = mean G = 1.207 for both, so the weight
  gradient is (-1, +sqrt 2) and Adam's first step (size lr) gives w = (1 + lr, 1 - lr), which
  already sums to 2.
  """

  name = "gradnorm"

  def __init__(self, alpha=1.5, learning_rate=1e-3, anchor_batches=16):
    super().__init__()
    base.check_value("alpha", alpha, alpha >= 0, ">= 0")
    base.check_value("learning_rate", learning_rate, learning_rate > 0, "> 0")
    base.check_value("anchor_batches", anchor_batches, anchor_batches >= 1, ">= 1")
    self.alpha, self.learning_rate = float(alpha), float(learning_rate)
    self.anchor_batches = int(anchor_batches)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.task_weights = tf.Variable(tf.ones([num_tasks]), trainable=False, name="task_weights")
    self.anchor = base.LossAnchor(num_tasks, self.anchor_batches)
    self.optimizer = base.own_optimizer(self.task_weights, self.learning_rate)

  def reset(self):
    self.task_weights.assign(tf.ones([self.num_tasks]))
    self.anchor.reset()
    base.clear_optimizer(self.optimizer)

  @property
  def initial_losses(self):
    """L(0) [T]: the anchor so far (0 for a task not seen yet)."""
    return self.anchor.losses

  @base.in_float32
  def combine(self, task_grads, task_losses, present):
    w = tf.identity(self.task_weights)
    self.anchor.update(task_losses, present)
    norms = tf.norm(self.norm_block(task_grads), axis=1)
    weighted_norms = w * norms
    count = tf.maximum(tf.reduce_sum(present), 1.0)
    mean_norm = tf.reduce_sum(weighted_norms * present) / count
    ratios = tf.math.divide_no_nan(task_losses, self.initial_losses) * present
    inverse_rate = tf.math.divide_no_nan(ratios, tf.reduce_sum(ratios) / count)
    target = tf.stop_gradient(mean_norm * tf.pow(inverse_rate, self.alpha))
    weight_grad = tf.sign(weighted_norms - target) * norms * present
    self.optimizer.apply([weight_grad], [self.task_weights])

    updated = tf.maximum(self.task_weights, 1e-6) * present
    absent_total = tf.reduce_sum(w * (1.0 - present))
    scale = tf.math.divide_no_nan(self.num_tasks - absent_total, tf.reduce_sum(updated))
    self.task_weights.assign(base.keep_absent(updated * scale, w, present))
    return tf.linalg.matvec(task_grads, w, transpose_a=True), w

  def __repr__(self):
    return (f"GradNorm(alpha={self.alpha}, learning_rate={self.learning_rate}, "
            f"anchor_batches={self.anchor_batches})")
