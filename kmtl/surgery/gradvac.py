"""`gradvac`: gradient vaccine (Wang et al., "Gradient Vaccine: Investigating and Improving
Multi-task Optimization in Massively Multilingual Models", ICLR 2021, arXiv:2010.05874)."""

import tensorflow as tf

from kmtl.surgery import base


class GradVac(base.Randomized, base.Method):
  """PCGrad generalised to a target similarity: for each task i and each other task j (in a
  random order drawn per step), if cos(g_i', g_j) = phi is below the target phi_ij, g_i' moves
  towards g_j until the cosine equals the target:
  g_i' += g_j ||g_i'|| (t sqrt(1 - phi^2) - phi sqrt(1 - t^2)) / (||g_j|| sqrt(1 - t^2)),
  t = phi_ij. The target is an exponential moving average of the observed cosines,
  phi_ij <- (1 - beta) phi_ij + beta phi, starting at 0 (then the first step is PCGrad).
  `beta` defaults to 0.01, the paper's; LibMTL's default is 0.5. The rule is applied to the
  whole shared parameter vector, not per layer. Pairs with an absent task are neither adjusted
  nor averaged. Task weights are 1. State: the targets [T, T] and the random generator.

  Example (targets 0): g1 = (1, 0), g2 = (-1, 1): phi = -1/sqrt 2 and the update is PCGrad's,
  g1' = (1/2, 1/2).
  """

  name = "gradvac"
  family = "aggregator"

  def __init__(self, beta=0.01):
    super().__init__()
    base.check_value("beta", beta, 0.0 < beta <= 1.0, "0 < beta <= 1")
    self.beta = float(beta)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.targets = tf.Variable(tf.zeros([num_tasks, num_tasks]), trainable=False,
                               name="targets")

  def reset(self):
    super().reset()
    self.targets.assign(tf.zeros_like(self.targets))

  def _vaccinate(self, g, g_j, target, live):
    """g moved towards g_j up to cosine `target` where it is below it (and `live`); the
    cosine before the move."""
    g_norm, j_norm = tf.norm(g), tf.norm(g_j)
    cosine = tf.math.divide_no_nan(tf.reduce_sum(g * g_j), g_norm * j_norm)
    root_target = tf.sqrt(tf.maximum(1.0 - target * target, 1e-12))
    scale = tf.math.divide_no_nan(
        g_norm * (target * tf.sqrt(tf.maximum(1.0 - cosine * cosine, 0.0)) -
                  cosine * root_target), j_norm * root_target)
    apply = tf.logical_and(live, cosine < target)
    return tf.where(apply, g + scale * g_j, g), cosine

  @base.in_float32
  def combine(self, task_grads, task_losses, present):
    del task_losses
    num_tasks = self.num_tasks
    live = tf.logical_and(present[:, None] * present[None, :] > 0,
                          tf.norm(task_grads, axis=1)[:, None] *
                          tf.norm(task_grads, axis=1)[None, :] > 0)
    targets = tf.identity(self.targets)
    observed, adjusted = tf.zeros_like(targets), []
    for i in range(num_tasks):
      order = self.random_order(i)
      g = task_grads[i]
      for k in range(num_tasks - 1):
        j = order[k]
        # gather, not [i, j]: XLA would take a sliced index as a compile-time constant.
        g, cosine = self._vaccinate(g, tf.gather(task_grads, j), tf.gather(targets[i], j),
                                    tf.gather(live[i], j))
        observed = tf.tensor_scatter_nd_update(observed, [[i, j]], [cosine])
      adjusted.append(g)
    averaged = (1.0 - self.beta) * targets + self.beta * observed
    self.targets.assign(tf.where(live, averaged, targets))
    return tf.add_n(adjusted), tf.ones([num_tasks], task_grads.dtype)

  def __repr__(self):
    return f"GradVac(beta={self.beta})"
