"""`config`: conflict-free inverse gradients, ConFIG (Liu et al., "ConFIG: Towards
Conflict-free Training of Physics Informed Neural Networks", ICLR 2025, arXiv:2408.11104)."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers


class ConFIG(base.GramianAggregator):
  """The update's direction g_u solves u_t . g_u = 1 for every present task's unit gradient u_t
  (the minimum-norm solution, by pseudo-inverse), so it makes the same angle with each; its
  length is sum_t g_t . g_u / ||g_u||, the sum of the task gradients' projections on it. From
  the Gramian: with the cosine matrix C and norms n, c = C^+ 1, beta = c / n, and the weights
  are (1^T G beta / beta^T G beta) beta. Stateless.

  Example: g1 = (1, 0), g2 = (0, 1): g_u = (1, 1); each gradient projects 1/sqrt 2 on it, so
  the update is (1, 1).
  """

  name = "config"

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    g, present = solvers.to_solve_dtype(gramian, present)
    cosines, norms, live = solvers.cosines_of(g, present)
    beta = tf.math.divide_no_nan(
        solvers.psd_solve(cosines, live, live), norms) * live
    g_beta = tf.linalg.matvec(g, beta)
    length = tf.math.divide_no_nan(tf.reduce_sum(g_beta * live), tf.tensordot(beta, g_beta, 1))
    return tf.cast(length * beta, gramian.dtype)
