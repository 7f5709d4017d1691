"""`fairgrad`: alpha-fair resource allocation (Ban and Ji, "Fair Resource Allocation in
Multi-Task Learning", ICML 2024, arXiv:2402.15638)."""

from kmtl.surgery import base
from kmtl.surgery import solvers


class FairGrad(base.SolverAggregator):
  """Weights w > 0 with G w = w^(-1/alpha): each task's utility g_t . d is w_t^(-1/alpha), the
  optimality condition of alpha-fair allocation (alpha = 1 is Nash-MTL's proportional
  fairness; larger alpha favours the worst-served task, towards max-min fairness). The paper
  and LibMTL solve it with scipy's least squares; kmtl by damped Newton steps in-graph
  (kmtl/surgery/solvers.py). `alpha` defaults to 1. Stateless.

  Example (alpha = 2): g1 = (1, 0), g2 = (0, 4): G = diag(1, 16), w_t^(3/2) = 1 / G_tt, so
  w = (1, 16^(-2/3)).
  """

  name = "fairgrad"

  def __init__(self, alpha=1.0):
    super().__init__()
    base.check_value("alpha", alpha, alpha > 0, "> 0")
    self.alpha = float(alpha)

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    w, residual = solvers.fair_weights(gramian, present, self.alpha)
    self.note_residual(residual)
    return w

  def __repr__(self):
    return f"FairGrad(alpha={self.alpha})"
