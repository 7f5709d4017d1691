"""`dualproj`: projection of the mean gradient onto the dual cone of the task gradients, as GEM
does for past tasks (Lopez-Paz and Ranzato, "Gradient Episodic Memory for Continual Learning",
NeurIPS 2017, arXiv:1706.08840); TorchJD's `DualProj`."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers


class DualProj(base.SolverAggregator):
  """The mean of the present tasks' gradients, projected onto the dual cone
  {x : g_t . x >= 0 for every present t}: weights v = argmin_{v >= 1/T} v^T G v
  (kmtl/surgery/solvers.py). Without conflict the result is the mean itself. Stateless.

  Example: g1 = (1, 0), g2 = (0, 1): no conflict, the shared gradient is the mean (1/2, 1/2).
  """

  name = "dualproj"

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    mean = tf.math.divide_no_nan(present, tf.reduce_sum(present))
    v, residual = solvers.dual_cone_weights(gramian, mean[None, :], present)
    self.note_residual(residual[0])
    return v[0]
