"""`famo`: fast adaptive multitask optimisation (Liu et al., "FAMO: Fast Adaptive Multitask
Optimization", NeurIPS 2023, arXiv:2306.03792)."""

import tensorflow as tf

from kmtl.surgery import base


class FAMO(base.LossWeighting):
  """Logits xi (start at 0), z = softmax(xi) over the present tasks. The step descends
  sum_t z_t log L_t / c with c = sum_t z_t / L_t, so w_t = z_t / (c L_t): a weighted sum of
  log losses, rescaled to the loss's own scale. After the update the method sees the batch's
  losses again (one more forward pass) and moves xi so that the tasks' log losses fall at
  equal rates: the gradient of xi is the softmax Jacobian times
  delta_t = log L_t(before) - log L_t(after), plus weight decay `gamma` xi, with Adam at
  `learning_rate`. Defaults (0.025, 1e-3) are the paper's and LibMTL's. A task without labels
  in the batch keeps its logit exactly. State: xi, the last losses and the Adam slots.

  Example: xi = (0, 0), L = (1, 3): z = (1/2, 1/2), c = 1/2 + 1/6 = 2/3, w = (3/4, 1/4).
  """

  name = "famo"
  needs_losses_after_update = True

  def __init__(self, learning_rate=0.025, gamma=1e-3):
    super().__init__()
    base.check_value("learning_rate", learning_rate, learning_rate > 0, "> 0")
    base.check_value("gamma", gamma, gamma >= 0, ">= 0")
    self.learning_rate, self.gamma = float(learning_rate), float(gamma)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.logits = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="logits")
    self.last_losses = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="last_losses")
    self.optimizer = base.own_optimizer(self.logits, self.learning_rate)

  def reset(self):
    self.logits.assign(tf.zeros([self.num_tasks]))
    self.last_losses.assign(tf.zeros([self.num_tasks]))
    base.clear_optimizer(self.optimizer)

  def _softmax(self, present):
    scores = tf.exp(self.logits - tf.reduce_max(self.logits)) * present
    return tf.math.divide_no_nan(scores, tf.reduce_sum(scores))

  @base.in_float32
  def weights(self, task_losses, present):
    self.last_losses.assign(base.keep_absent(task_losses, self.last_losses, present))
    z = self._softmax(present)
    losses = tf.where(present > 0, tf.maximum(task_losses, 1e-8), tf.ones_like(task_losses))
    c = tf.reduce_sum(z / losses)
    return tf.math.divide_no_nan(z / losses, c)

  def after_update(self, task_losses, present):
    floor = 1e-8
    delta = (tf.math.log(tf.maximum(self.last_losses, floor)) -
             tf.math.log(tf.maximum(task_losses, floor))) * present
    z = self._softmax(present)
    jacobian_product = z * (delta - tf.reduce_sum(z * delta))
    previous = tf.identity(self.logits)
    self.optimizer.apply([(jacobian_product + self.gamma * previous) * present],
                         [self.logits])
    self.logits.assign(base.keep_absent(self.logits, previous, present))

  def __repr__(self):
    return f"FAMO(learning_rate={self.learning_rate}, gamma={self.gamma})"
