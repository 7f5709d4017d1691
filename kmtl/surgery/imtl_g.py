"""`imtl_g`: the gradient part of impartial multi-task learning (Liu et al., "Towards
Impartial Multi-task Learning", ICLR 2021)."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers


class ImpartialGradient(base.GramianAggregator):
  """Weights alpha (summing to 1) such that the shared gradient g = sum_t alpha_t g_t has the
  same projection on every present task's unit gradient u_t = g_t / ||g_t||: with the first
  present task r as reference, alpha_{-r} solves (g_r U^T) = alpha_{-r} (D U^T) with rows
  D_i = g_r - g_i and U_i = u_r - u_i (the paper's closed form), all from the Gramian. A
  least-squares solve with a tiny ridge keeps collinear gradients finite. Stateless.

  Example: g1 = (2, 0), g2 = (0, 1): alpha = (1/3, 2/3), g = (2/3, 2/3), whose projections on
  u1 = (1, 0) and u2 = (0, 1) are both 2/3.
  """

  name = "imtl_g"

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    g = solvers.normalized(gramian, present)
    norms, live = solvers.norms_of(g, present)
    reference = tf.one_hot(tf.argmax(live), self.num_tasks, dtype=g.dtype) * live
    others = live - reference
    on_unit = tf.math.divide_no_nan(g, norms[None, :])  # [a, b] = g_a . u_b
    r_row = tf.linalg.matvec(on_unit, reference, transpose_a=True)  # g_r . u_b
    r_col = tf.linalg.matvec(on_unit, reference)  # g_a . u_r
    r_r = tf.tensordot(reference, r_col, 1)  # g_r . u_r
    system = r_r - r_row[None, :] - r_col[:, None] + on_unit  # [i, j] = D_i . U_j
    pair = others[:, None] * others[None, :]
    system = system * pair + tf.linalg.diag(1.0 - others)
    target = (r_r - r_row) * others  # g_r . U_j
    alpha = tf.linalg.lstsq(tf.transpose(system), target[:, None], l2_regularizer=1e-9)[:, 0]
    alpha = alpha * others
    return alpha + reference * (1.0 - tf.reduce_sum(alpha))
