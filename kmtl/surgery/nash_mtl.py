"""`nash_mtl`: multi-task learning as a bargaining game (Navon et al., "Multi-Task Learning as
a Bargaining Game", ICML 2022, arXiv:2202.01017)."""

from kmtl.surgery import base
from kmtl.surgery import solvers


class NashMTL(base.SolverAggregator):
  """The Nash bargaining solution: weights alpha > 0 with G alpha = 1 / alpha (each task's
  utility g_t . d equals 1 / alpha_t), found in-graph by damped Newton steps on a convex
  potential (kmtl/surgery/solvers.py) instead of the paper's sequence of convex programmes.
  The update d = sum_t alpha_t g_t has ||d||^2 = n for n present tasks whatever the gradients'
  scale, as in the paper (kmtl adds no max-norm clipping; the paper's experiments clip at 1).
  The equation is solved in each task's own norm units; where the gradients can cancel, a
  ridge of 1e-12 of each task's squared norm keeps the solution finite.
  Weights are solved every step (the paper's `update_weights_every=1`). With one task the
  update is its unit gradient. Stateless.

  Example: g1 = (2, 0), g2 = (0, 1): alpha = (1/2, 1), d = (1, 1), and g_t . d = 1 / alpha_t.
  """

  name = "nash_mtl"

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    w, residual = solvers.fair_weights(gramian, present, 1.0)
    self.note_residual(residual)
    return w
