"""`imtl_g`: the gradient part of impartial multi-task learning (Liu et al., "Towards
Impartial Multi-task Learning", ICLR 2021)."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers


class ImpartialGradient(base.GramianAggregator):
  """Weights alpha (summing to 1) such that the shared gradient g = sum_t alpha_t g_t has the
  same projection on every present task's unit gradient u_t = g_t / ||g_t||. The paper's closed
  form (a reference task r, and the system D U^T with D_i = g_r - g_i, U_i = u_r - u_i) is the
  same solution written without a reference: g . u_t = (C diag(n) alpha)_t with C the cosine
  matrix and n the norms, so equal projections give alpha = C^+ 1 / n, normalised to sum 1.
  Solved in float64 from the cosines, so it does not depend on the gradients' relative scale;
  with linearly dependent gradients the pseudo-inverse gives the least-squares answer.
  Stateless.

  Example: g1 = (2, 0), g2 = (0, 1): alpha = (1/3, 2/3), g = (2/3, 2/3), whose projections on
  u1 = (1, 0) and u2 = (0, 1) are both 2/3.
  """

  name = "imtl_g"

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    g, present = solvers.to_solve_dtype(gramian, present)
    cosines, norms, live = solvers.cosines_of(g, present)
    direction = tf.math.divide_no_nan(
        solvers.psd_solve(cosines, live, live), norms) * live
    alpha = tf.math.divide_no_nan(direction, tf.reduce_sum(direction))
    return tf.cast(alpha, gramian.dtype)
