"""`moco`: multi-objective gradient correction (Fernando et al., "Mitigating Gradient Bias in
Multi-objective Learning: A Provably Convergent Approach", ICLR 2023)."""

import tensorflow as tf

from kmtl.surgery import base


class MoCo(base.Method):
  """Tracks each task's gradient with a moving average y_t, which removes the bias that
  stochastic gradients give MGDA-like weightings, and updates the weights lambda by a
  projected-gradient step on the tracked Gramian:
  y_t <- y_t - beta_k (y_t - L_t g_t / ||g_t||), lambda <- softmax(lambda - gamma_k (Y Y^T +
  rho I) lambda), with beta_k = beta / k^beta_sigma and gamma_k = gamma / k^gamma_sigma at step
  k; the shared gradient is Y^T lambda. Defaults as LibMTL's: beta 0.5, beta_sigma 0.5,
  gamma 0.1, gamma_sigma 0.5, rho 0 (the gradient normalised and scaled by its loss, as
  LibMTL's implementation does; the softmax stands in for the simplex projection, as there).
  A task's y_t and its own step count move only on steps with its labels; the softmax runs over
  the present tasks (their lambdas renormalised to sum to 1 first), and an absent task keeps
  its lambda. State: Y [T, P], lambda, the counts.

  Example (first step, beta_1 = 0.5): y_t = L_t g_t / (2 ||g_t||); g1 = (2, 0), g2 = (0, 3),
  L = (1, 1): Y = I / 2, lambda stays (1/2, 1/2) (equal scores), the update is (1/4, 1/4).
  """

  name = "moco"
  family = "aggregator"

  def __init__(self, beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0):
    super().__init__()
    for key, value in (("beta", beta), ("gamma", gamma)):
      base.check_value(key, value, 0.0 < value <= 1.0, f"0 < {key} <= 1")
    for key, value in (("beta_sigma", beta_sigma), ("gamma_sigma", gamma_sigma), ("rho", rho)):
      base.check_value(key, value, value >= 0, ">= 0")
    self.beta, self.beta_sigma = float(beta), float(beta_sigma)
    self.gamma, self.gamma_sigma, self.rho = float(gamma), float(gamma_sigma), float(rho)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.tracked = base.per_parameter_state(self, "tracked")
    self.task_weights = tf.Variable(tf.fill([num_tasks], 1.0 / num_tasks), trainable=False,
                                    name="task_weights")
    self.steps = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="steps")

  def reset(self):
    self.tracked.assign(tf.zeros_like(self.tracked))
    self.task_weights.assign(tf.fill([self.num_tasks], 1.0 / self.num_tasks))
    self.steps.assign(tf.zeros_like(self.steps))

  @base.in_float32
  def combine(self, task_grads, task_losses, present):
    self.steps.assign_add(present)
    k = tf.maximum(self.steps, 1.0)
    scaled = task_grads * tf.math.divide_no_nan(task_losses * present,
                                                tf.norm(task_grads, axis=1))[:, None]
    rate = (self.beta / tf.pow(k, self.beta_sigma))[:, None]
    moved = self.tracked - rate * (self.tracked - scaled)
    self.tracked.assign(tf.where(present[:, None] > 0, moved, self.tracked))
    y = self.tracked * present[:, None]
    step = self.gamma / tf.pow(tf.reduce_max(k), self.gamma_sigma)
    previous = tf.identity(self.task_weights)
    current = tf.math.divide_no_nan(previous * present, tf.reduce_sum(previous * present))
    descent = (tf.linalg.matvec(tf.matmul(y, y, transpose_b=True), current)
               + self.rho * current)
    scores = current - step * descent
    top = tf.reduce_max(tf.where(present > 0, scores, tf.reduce_min(scores)))
    scores = tf.where(present > 0, tf.exp(tf.where(present > 0, scores - top, 0.0)), 0.0)
    updated = tf.math.divide_no_nan(scores, tf.reduce_sum(scores))
    self.task_weights.assign(base.keep_absent(updated, previous, present))
    w = updated * present
    return tf.linalg.matvec(y, w, transpose_a=True), w

  def __repr__(self):
    return (f"MoCo(beta={self.beta}, beta_sigma={self.beta_sigma}, gamma={self.gamma}, "
            f"gamma_sigma={self.gamma_sigma}, rho={self.rho})")
