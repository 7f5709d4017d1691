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
  shared gradient of this step is sum_i w_i g_i with the weights before the update. L_i(0) is a
  task's loss at the first step where it has labels. Tasks absent from the batch take no part in
  the means and keep their weight. State: w, L(0), the Adam slots.

  Example: g1 = (1, 0), g2 = (-1, 1), w = (1, 1) at the first step: the shared gradient is
  (0, 1); G = (1, sqrt 2), r = (1, 1), target = mean G = 1.207 for both, so the weight
  gradient is (-1, +sqrt 2) and Adam's first step (size lr) gives w = (1 + lr, 1 - lr), which
  already sums to 2.
  """

  name = "gradnorm"

  def __init__(self, alpha=1.5, learning_rate=1e-3):
    super().__init__()
    if alpha < 0:
      raise ValueError(f"Invalid value for `alpha`. Expected >= 0. Received: {alpha}")
    if learning_rate <= 0:
      raise ValueError(f"`learning_rate` must be > 0. Received: {learning_rate}")
    self.alpha, self.learning_rate = float(alpha), float(learning_rate)

  def build(self, num_tasks, norm_columns=None, seed=0):
    super().build(num_tasks, norm_columns, seed)
    self.task_weights = tf.Variable(tf.ones([num_tasks]), trainable=False, name="task_weights")
    self.initial_losses = tf.Variable(tf.zeros([num_tasks]), trainable=False,
                                      name="initial_losses")
    self.optimizer = base.own_optimizer(self.task_weights, self.learning_rate)

  def reset(self):
    self.task_weights.assign(tf.ones([self.num_tasks]))
    self.initial_losses.assign(tf.zeros([self.num_tasks]))
    base.clear_optimizer(self.optimizer)

  def combine(self, task_grads, task_losses):
    w = tf.identity(self.task_weights)
    mask = base.present(task_losses)
    first = tf.logical_and(mask > 0, tf.equal(self.initial_losses, 0.0))
    self.initial_losses.assign(tf.where(first, task_losses, self.initial_losses))

    norms = tf.norm(self.norm_block(task_grads), axis=1)
    weighted_norms = w * norms
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    mean_norm = tf.reduce_sum(weighted_norms * mask) / count
    ratios = tf.math.divide_no_nan(task_losses, self.initial_losses) * mask
    inverse_rate = tf.math.divide_no_nan(ratios, tf.reduce_sum(ratios) / count)
    target = tf.stop_gradient(mean_norm * tf.pow(inverse_rate, self.alpha))
    weight_grad = tf.sign(weighted_norms - target) * norms * mask
    self.optimizer.apply([weight_grad], [self.task_weights])

    updated = tf.maximum(self.task_weights, 1e-6)
    self.task_weights.assign(updated * self.num_tasks / tf.reduce_sum(updated))
    return tf.linalg.matvec(task_grads, w, transpose_a=True), w

  def __repr__(self):
    return f"GradNorm(alpha={self.alpha}, learning_rate={self.learning_rate})"
