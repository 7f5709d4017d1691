"""`cagrad`: conflict-averse gradient descent (Liu et al., "Conflict-Averse Gradient Descent
for Multi-task Learning", NeurIPS 2021, arXiv:2110.14048)."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers

# The root search on log ||g_w||: at most this many steps, stopping once the bracket is this
# narrow (relative).
SEARCH_STEPS = 100
SEARCH_WIDTH = 1e-13


class CAGrad(base.SolverAggregator):
  """The update d maximises the worst task's improvement within a ball of radius
  r = c ||g0|| around the mean gradient g0 of the n present tasks. By the paper's dual, w on
  the simplex minimises F(w) = g_w . g0 + r ||g_w|| (g_w = sum_t w_t g_t), and
  d = g0 + (r / ||g_w||) g_w, divided by 1 + c^2 (LibMTL's default rescaling, `rescale=1`).
  `c` defaults to 0.5, LibMTL's `calpha`; c = 0 gives the mean gradient. Stateless.

  The dual is solved exactly: with r ||g_w|| = min_{s > 0} r (||g_w||^2 / s + s) / 2, the
  minimiser for a fixed s is the min-norm point of the hull of the shifted gradients
  g_t + (s / r) g0 (an exact simplex solve, kmtl/surgery/solvers.py), and the optimal s is the
  fixed point s = ||g_w(s)||, found by regula falsi (Illinois) on log s, where
  log ||g_w(s)|| - log s decreases. Where 0 lies in the hull of the gradients (a Pareto-
  stationary point: every direction worsens some task, so the best worst-case improvement
  in any ball is at most 0) the update is 0, as MGDA's; the paper's formula would instead
  take a step that worsens some task, or divide by ||g_w|| = 0.

  Example: g1 = (1, 0), g2 = (0, 1), c = 0.5: by symmetry w = (1/2, 1/2), g0 = g_w = (1/2, 1/2),
  ||g0|| = ||g_w||, so d = (1 + 0.5) g0 / 1.25 = (0.6, 0.6).
  """

  name = "cagrad"

  def __init__(self, c=0.5):
    super().__init__()
    base.check_value("c", c, c >= 0, ">= 0")
    self.c = float(c)

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    w, residual = conflict_averse_weights(gramian, present, self.c)
    self.note_residual(residual)
    return w

  def __repr__(self):
    return f"CAGrad(c={self.c})"


def conflict_averse_weights(gramian, present, c):
  """(weights [T], residual): d = sum_t weights_t g_t is CAGrad's rescaled update; the residual
  is the relative error of the fixed point s = ||g_w(s)|| and of the simplex solves."""
  dtype = gramian.dtype
  eps = solvers.rounding(dtype)
  g, present = solvers.to_solve_dtype(gramian, present)
  g = g * present[:, None] * present[None, :]
  mean = tf.math.divide_no_nan(present, tf.reduce_sum(present))
  b = tf.linalg.matvec(g, mean)
  mean_sq = tf.maximum(tf.tensordot(mean, b, 1), 0.0)
  radius = c * tf.sqrt(mean_sq)
  pair = present[:, None] * present[None, :]

  def hull_point(s):
    """(w(s), ||g_w(s)||, solve residual)."""
    k = s / radius
    shifted = g + (k * (b[:, None] + b[None, :]) + k * k * mean_sq) * pair
    w, residual = solvers.simplex_weights(shifted, present)
    return w, tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(g, w), 1), 0.0)), residual

  def excess(t):
    """log ||g_w(e^t)|| - t: decreasing in t, 0 at the optimum."""
    _, norm, _ = hull_point(tf.exp(t))
    return tf.math.log(tf.maximum(norm, 1e-300)) - t

  def search():
    w0, norm0, _ = hull_point(tf.constant(0.0, solvers.SOLVE_DTYPE))
    in_hull = solvers.zero_in_hull(g, w0, eps)
    # ||g_w(s)|| lies between the min-norm point's norm and the largest gradient's.
    lo = tf.math.log(tf.where(in_hull, tf.ones_like(norm0), norm0))
    hi = tf.math.log(tf.sqrt(tf.reduce_max(tf.linalg.diag_part(g))))
    f_lo, f_hi = tf.maximum(excess(lo), 0.0), tf.minimum(excess(hi), 0.0)

    def step(i, a, fa, b, fb, side):
      t = tf.where(tf.equal(fa, fb), 0.5 * (a + b), (a * fb - b * fa) / (fb - fa))
      ft = excess(t)
      same_as_b = ft * fb > 0
      same_as_a = ft * fa > 0
      fa_next = tf.where(same_as_b & tf.equal(side, -1), 0.5 * fa, fa)
      fb_next = tf.where(same_as_a & tf.equal(side, 1), 0.5 * fb, fb)
      a_next = tf.where(same_as_a, t, a)
      fa_next = tf.where(same_as_a, ft, fa_next)
      b_next = tf.where(same_as_b, t, b)
      fb_next = tf.where(same_as_b, ft, fb_next)
      exact = ~same_as_a & ~same_as_b
      a_next = tf.where(exact, t, a_next)
      b_next = tf.where(exact, t, b_next)
      side = tf.where(same_as_b, -1, tf.where(same_as_a, 1, side))
      return i + 1, a_next, fa_next, b_next, fb_next, side

    def going(i, a, fa, b, fb, side):
      del fa, fb, side
      return (i < SEARCH_STEPS) & (b - a > SEARCH_WIDTH * (1.0 + tf.abs(b)))

    _, a, fa, b, fb, _ = tf.while_loop(going, step, (tf.constant(0), lo, f_lo, hi, f_hi,
                                                      tf.constant(0)))
    t = tf.where(tf.abs(fa) <= tf.abs(fb), a, b)
    w, norm, solve_residual = hull_point(tf.exp(t))
    fixed_point = tf.abs(tf.math.log(tf.maximum(norm, 1e-300)) - t)
    weights = (mean + tf.math.divide_no_nan(radius, norm) * w) / (1.0 + c * c)
    weights = tf.where(in_hull, tf.zeros_like(weights), weights)
    residual = tf.where(in_hull, solve_residual, tf.maximum(fixed_point, solve_residual))
    return weights, residual

  weights, residual = tf.cond(radius > 0, search,
                              lambda: (mean, tf.constant(0.0, solvers.SOLVE_DTYPE)))
  return tf.cast(weights, dtype), tf.cast(residual, dtype)
