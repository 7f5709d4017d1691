"""`mgda`: the multiple-gradient descent algorithm (Sener and Koltun, "Multi-Task Learning as
Multi-Objective Optimization", NeurIPS 2018, arXiv:1810.04650)."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA(base.SolverAggregator):
  """The shared gradient is the min-norm point of the convex hull of the present tasks'
  gradients: sum_t w_t g_t with w on the simplex minimising w^T G w (Desideri's MGDA, the
  paper's equation 3). The paper solves it by Frank-Wolfe; kmtl solves the same problem exactly
  by an active-set method over the Gramian in float64 (kmtl/surgery/solvers.py), in each task's
  own norm units, so a gradient 10^4 times smaller than another is handled as accurately as an
  equal one. Where 0 lies in the hull (a Pareto-stationary point) the update is 0.

  `normalization` rescales each gradient before the solve, as the paper's section 3.3 and
  LibMTL's `mgda_gn` allow: "none" (default, as in the paper's main algorithm), "l2"
  (g_t / ||g_t||), "loss" (g_t / L_t) or "loss+" (g_t / (L_t ||g_t||)); the weights returned
  apply to the original gradients. The weights sum to 1, so the update's scale is that of one
  task's gradient (LibMTL's convention), not the sum of T. A task whose weight is 0 still
  trains its head (aggregator family). Stateless.

  Example: g1 = (1, 0), g2 = (0, 1): w = (1/2, 1/2), shared gradient (1/2, 1/2).
  """

  name = "mgda"

  def __init__(self, normalization="none"):
    super().__init__()
    base.check_value("normalization", normalization, normalization in NORMALIZATIONS,
                     f"one of {list(NORMALIZATIONS)}")
    self.normalization = normalization

  def _scales(self, gramian, task_losses, present):
    """1 / the normalising factor of each task's gradient (0 for an absent task)."""
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0))
    losses = tf.abs(task_losses)
    factor = {"none": tf.ones_like(norms), "l2": norms, "loss": losses,
              "loss+": losses * norms}[self.normalization]
    return tf.math.divide_no_nan(present, factor)

  def weights_from_gramian(self, gramian, task_losses, present):
    scales = self._scales(gramian, task_losses, present)
    usable = tf.cast(scales > 0, gramian.dtype)
    scaled = gramian * scales[:, None] * scales[None, :]
    w, residual = solvers.min_norm_weights(scaled, usable)
    self.note_residual(residual)
    return w * scales

  def __repr__(self):
    return f"MGDA(normalization={self.normalization!r})"
