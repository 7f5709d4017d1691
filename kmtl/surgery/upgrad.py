"""`upgrad`: unconflicting projection of gradients (Quinton and Rey, "Jacobian Descent for
Multi-Objective Optimization", 2024, arXiv:2406.16232)."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers


class UPGrad(base.SolverAggregator):
  """Each present task's gradient is projected onto the dual cone {x : g_s . x >= 0 for every
  present s} of the present gradients, and the shared gradient is the mean of the projections
  (the paper's preference vector 1/T, as TorchJD's default). In the Gramian's terms the
  projection of g_t is J^T v_t with v_t = argmin_{v >= e_t} v^T G v, so the weights are the
  mean of the v_t (kmtl/surgery/solvers.py solves the T problems at once, exactly, by an
  active-set method). The result has a non-negative inner product with every task gradient.
  Stateless.

  Example: g1 = (1, 0), g2 = (-1, 1) conflict. g1 projects to (1/2, 1/2) (v = (1, 1/2)), g2
  to (0, 1) (v = (1, 1)); the weights are (1, 3/4) and the shared gradient (1/4, 3/4).
  """

  name = "upgrad"

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    count = tf.reduce_sum(present)
    v, residual = solvers.dual_cone_weights(
        gramian, tf.eye(self.num_tasks, dtype=gramian.dtype) * present[:, None], present)
    self.note_residual(tf.reduce_max(residual))
    return tf.math.divide_no_nan(tf.reduce_sum(v * present[:, None], axis=0), count)
