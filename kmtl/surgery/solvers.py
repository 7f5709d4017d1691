"""Small problems over a task Gramian G [T, T], solved exactly in the training graph.

MGDA's min-norm point, UPGrad's and DualProj's dual-cone projections and CAGrad's dual are
convex quadratic programmes over the non-negative orthant (the simplex reduces to it, below);
Nash-MTL and FairGrad solve a fixed-point equation. Every solve runs in float64 whatever the
gradients' dtype (a T x T problem costs nothing next to the backward passes) and in scale-free
variables: the Gramian is divided by its diagonal (Jacobi scaling, so task i's variable is in
units of its own gradient norm), so a task 10^4 times smaller than another is solved as
accurately as an equal one.

- `nonnegative_qp`: the Lawson-Hanson active-set method in Gramian form. It is exact once the
  active set is right, which takes at most a few passes per task (capped at
  `active_set_iterations(T)`); its KKT residual says how far from optimal the returned point is.
- `min_norm_weights`: min w^T G w over the simplex, via the non-negative least-squares form
  min_{u >= 0} ||J^T u||^2 + (1^T u - 1)^2, whose solution is w / (1 + ||J^T w||^2).
- `dual_cone_weights`: min v^T G v subject to v >= lower, with v = lower + u, u >= 0.
- `fair_weights`: G x = x^(-1/alpha), by damped Newton steps on a self-concordant potential in
  the same scaled variables, with a ridge relative to each task's own squared norm.

Every solver also returns its residual (0 when exact), which the methods report per epoch in
TensorBoard (`method/solver_residual`). Accuracy against SciPy, for T = 2 to 16 and norm ratios
up to 10^4, is in tests/surgery/test_solvers.py and tests/surgery/test_exact_solutions.py.
"""

import tensorflow as tf

SOLVE_DTYPE = tf.float64
# Added to the diagonal of the scaled (unit-diagonal) systems: 1e-13 of each task's own
# squared norm for the linear solves, and 1e-12 for the fair equation where the cosine matrix
# is singular (finite weights where 0 lies in the gradients' hull, where G x = x^(-1/alpha)
# has no positive solution).
RIDGE = 1e-13
FAIR_RIDGE = 1e-12
# A variable enters the active set when its scaled gradient is below -TOLERANCE.
TOLERANCE = 1e-11
FAIR_ITERATIONS = 100


def active_set_iterations(num_tasks):
  """The cap on Lawson-Hanson iterations for T variables (it rarely needs more than 2T)."""
  return 5 * num_tasks + 10


def to_solve_dtype(*tensors):
  return [tf.cast(t, SOLVE_DTYPE) for t in tensors]


def norms_of(gramian, present):
  """The gradient norms [T] from a Gramian's diagonal, and [T] 1 for the present tasks with a
  nonzero gradient (0 for the others, which the solvers leave out)."""
  norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0))
  return norms, present * tf.cast(norms > 0, gramian.dtype)


def cosines_of(gramian, present):
  """(C, n, live): the cosine matrix of the live tasks' gradients (unit diagonal, 0 outside
  them), their norms n and the live mask, so that G = diag(n) C diag(n) on them."""
  norms, live = norms_of(gramian, present)
  inverse = tf.math.divide_no_nan(live, norms)
  return gramian * inverse[:, None] * inverse[None, :], norms, live


def normalized(gramian, present):
  """G with absent tasks' rows and columns zeroed, divided by its trace (0 stays 0)."""
  g = gramian * present[:, None] * present[None, :]
  return tf.math.divide_no_nan(g, tf.linalg.trace(g))


def nonnegative_qp(h, c, live):
  """argmin_x 1/2 x^T H x + c_k^T x subject to x >= 0 and x_t = 0 where `live` is 0, for each
  row c_k of c [K, T] (H [T, T] positive semi-definite, the problem bounded below).

  Returns (x [K, T], residual [K]): the residual is the largest violation of the optimality
  conditions (a zero gradient on the free variables, a non-negative one on the others) in the
  scaled problem, relative to the largest |c|. Float64 throughout."""
  h, c, live = to_solve_dtype(h, c, live)
  num = tf.shape(h)[0]
  diagonal = tf.linalg.diag_part(h)
  live = live * tf.cast(diagonal > 0, SOLVE_DTYPE)
  scale = tf.math.divide_no_nan(live, tf.sqrt(diagonal))
  h = h * scale[:, None] * scale[None, :]
  c = c * scale[None, :]
  size = tf.reduce_max(tf.abs(c), axis=1, keepdims=True)
  c = tf.math.divide_no_nan(c, size)
  eye = tf.eye(num, dtype=SOLVE_DTYPE)
  rows = tf.shape(c)[0]
  inf = tf.constant(float("inf"), SOLVE_DTYPE)

  def solve_on(passive):
    system = (h[None] * passive[:, :, None] * passive[:, None, :]
              + tf.linalg.diag(1.0 - passive + RIDGE * passive))
    return tf.linalg.solve(system, -(c * passive)[:, :, None])[:, :, 0] * passive

  def body(i, x, passive, accepted, done):
    gradient = tf.matmul(x, h) + c
    candidate = (live[None] > 0) & (passive < 1) & (gradient < -TOLERANCE)
    optimal = accepted & ~tf.reduce_any(candidate, axis=1)
    done = done | optimal
    add = accepted & ~done
    entering = tf.one_hot(tf.argmin(tf.where(candidate, gradient, inf), axis=1), num,
                          dtype=SOLVE_DTYPE) * tf.cast(add, SOLVE_DTYPE)[:, None]
    passive = passive + entering
    z = solve_on(passive)
    # A variable that enters and at once solves to <= 0 makes no progress (numerically
    # optimal): leave it out and stop.
    stalled = add & tf.reduce_any((entering > 0) & (z <= 0), axis=1)
    passive = tf.where(stalled[:, None], passive - entering, passive)
    done = done | stalled
    positive = tf.reduce_all((z > 0) | (passive < 1), axis=1)
    blocking = (passive > 0) & (z <= 0)
    ratio = tf.where(blocking, x / tf.where(blocking, x - z, 1.0), inf)
    alpha = tf.minimum(tf.reduce_min(ratio, axis=1, keepdims=True), 1.0)
    stepped = x + alpha * (z - x)
    leaving = (passive > 0) & ((blocking & (ratio <= alpha)) | (
        stepped <= 1e-15 * tf.reduce_max(tf.abs(stepped), axis=1, keepdims=True)))
    stepped = tf.where(leaving, tf.zeros_like(stepped), stepped)
    moving = ~done
    x = tf.where((moving & positive)[:, None], z,
                 tf.where(moving[:, None], stepped, x))
    passive = tf.where((moving & ~positive)[:, None] & leaving, tf.zeros_like(passive), passive)
    accepted = tf.where(moving, positive, accepted)
    return i + 1, x, passive, accepted, done

  zeros = tf.zeros_like(c)
  _, y, passive, _, _ = tf.while_loop(
      lambda i, *state: (i < active_set_iterations(num)) & ~tf.reduce_all(state[-1]),
      body, (tf.constant(0), zeros, zeros, tf.ones([rows], tf.bool), tf.zeros([rows], tf.bool)))
  gradient = (tf.matmul(y, h) + c) * live[None]
  residual = tf.reduce_max(tf.where(passive > 0, tf.abs(gradient), tf.maximum(-gradient, 0.0)),
                           axis=1)
  return y * scale[None] * size, residual


def simplex_weights(gramian, present):
  """(weights, residual): argmin w^T G w over the simplex of the live tasks, from the
  non-negative least-squares form (G in float64, divided by the smallest live task's squared
  norm so that the added all-ones term is on the scale of the gradients)."""
  _, live = norms_of(gramian, present)
  diagonal = tf.linalg.diag_part(gramian)
  smallest = tf.reduce_min(tf.where(live > 0, diagonal, tf.reduce_max(diagonal)))
  g = tf.math.divide_no_nan(gramian, smallest) * live[:, None] * live[None, :]
  ones = live[:, None] * live[None, :]
  u, residual = nonnegative_qp(2.0 * (g + ones), -2.0 * live[None], live)
  return tf.math.divide_no_nan(u[0], tf.reduce_sum(u[0])), residual[0]


def zero_in_hull(gramian, w, eps):
  """True when ||sum_t w_t g_t|| is at the level of rounding in the gradients (eps) relative to
  sum_t w_t ||g_t||: the combination cancels, 0 is in the hull."""
  norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0))
  squared = tf.tensordot(w, tf.linalg.matvec(gramian, w), 1)
  return squared <= 16.0 * eps * tf.square(tf.tensordot(w, norms, 1))


def min_norm_weights(gramian, present):
  """(w, residual): the simplex weights of the min-norm point of the convex hull of the present
  tasks' gradients, in the Gramian's dtype. A present task with a zero gradient is itself the
  min-norm point, and where 0 lies in the hull (to the gradients' rounding) w is 0."""
  eps = rounding(gramian.dtype)
  g, present = to_solve_dtype(gramian, present)
  norms, live = norms_of(g, present)
  zero_task = present * tf.cast(norms <= 0, SOLVE_DTYPE)
  w, residual = simplex_weights(g, present)
  cancels = zero_in_hull(g, w, eps) | (tf.reduce_sum(zero_task) > 0)
  w = tf.where(cancels, tf.zeros_like(w), w)
  return tf.cast(w, gramian.dtype), tf.cast(residual, gramian.dtype)


def rounding(dtype):
  """The relative rounding of the gradients' dtype (bfloat16 and float16 count as float32:
  the stack is float32 in mixed precision)."""
  return {tf.float64: 2.2e-16}.get(tf.as_dtype(dtype), 1.2e-7)


def dual_cone_weights(gramian, lower, present):
  """(v [K, T], residual [K]): argmin v^T G v subject to v >= lower, for each row of `lower`
  [K, T]. With J the gradient stack, J^T v is the projection of J^T lower onto the dual cone
  {x : J x >= 0} of the present tasks' gradients. A task with a zero gradient keeps its lower
  bound; an absent one gets 0."""
  dtype = gramian.dtype
  g, lower, present = to_solve_dtype(gramian, lower, present)
  _, live = norms_of(g, present)
  g = g * live[:, None] * live[None, :]
  lower = lower * present[None]
  u, residual = nonnegative_qp(g, tf.matmul(lower, g), live)
  return tf.cast(lower + u, dtype), tf.cast(residual, dtype)


def psd_pseudo_inverse(matrix, relative_tolerance=1e-12):
  """Moore-Penrose inverse of a symmetric positive semi-definite matrix, from its eigen-
  decomposition in float64; eigenvalues below `relative_tolerance` times the largest count
  as 0."""
  values, vectors = tf.linalg.eigh(tf.cast(matrix, SOLVE_DTYPE))
  keep = values > relative_tolerance * tf.reduce_max(values)
  inverse = tf.where(keep, 1.0 / tf.where(keep, values, tf.ones_like(values)), 0.0)
  return tf.cast(tf.matmul(vectors * inverse[None, :], vectors, transpose_b=True), matrix.dtype)


def psd_solve(matrix, rhs, live):
  """M^+ rhs for a positive semi-definite M [T, T] that is nonzero only on the `live` tasks'
  rows and columns, in float64: by Cholesky where M is well conditioned there (eigenvalues
  above 1e-10 of the largest; an eigensolver's rounding would be amplified by the condition
  number), by the pseudo-inverse where it is singular."""
  m, rhs, live = to_solve_dtype(matrix, rhs, live)
  outside = tf.linalg.diag(1.0 - live)
  values = tf.linalg.eigvalsh(m + outside)
  regular = tf.reduce_min(values) > 1e-10 * tf.reduce_max(values)
  direct = tf.linalg.cholesky_solve(tf.linalg.cholesky(m + outside), rhs[:, None])[:, 0]
  direct = tf.where(regular, direct, tf.zeros_like(direct))
  fallback = tf.linalg.matvec(psd_pseudo_inverse(m), rhs)
  return tf.where(regular, direct, fallback) * live


def fair_weights(gramian, present, alpha=1.0, iterations=FAIR_ITERATIONS):
  """(x, residual): the positive x with G x = x^(-1/alpha) over the present tasks with a
  nonzero gradient (Nash-MTL for alpha = 1, FairGrad's alpha-fairness otherwise); 0 for the
  others. The residual is max_t |(G x)_t x_t^(1/alpha) - 1|.

  In the variables y = n x (n the gradient norms) the equation is C y = a y^(-1/alpha) with C
  the cosine matrix and a_t = m_t^(1/alpha - 1), m = n / max(n); its solution minimises the
  strictly convex 1/2 y^T (C + ridge I) y - sum_t a_t u(y_t) (the ridge only where C is
  singular) with u' = y^(-1/alpha), found by
  damped Newton steps that keep y positive, stopping once the Newton decrement vanishes. The
  max(n) scaling is undone after (y scales as max(n)^((1 - alpha) / (1 + alpha)))."""
  dtype = gramian.dtype
  g, present = to_solve_dtype(gramian, present)
  alpha = tf.cast(alpha, SOLVE_DTYPE)
  cosines, norms, live = cosines_of(g, present)
  largest = tf.reduce_max(norms * live)
  relative = tf.math.divide_no_nan(norms, largest)
  weight = tf.where(live > 0, tf.pow(tf.where(live > 0, relative, 1.0), 1.0 / alpha - 1.0), 0.0)
  num = tf.shape(g)[0]
  eye = tf.eye(num, dtype=SOLVE_DTYPE)
  outside = 1.0 - live
  system = cosines * live[:, None] * live[None, :]
  values = tf.linalg.eigvalsh(system + eye * outside[:, None])
  singular = tf.reduce_min(values) <= 1e-10 * tf.reduce_max(values)
  system += tf.linalg.diag(tf.cast(singular, SOLVE_DTYPE) * FAIR_RIDGE * live)

  def newton(y):
    power = weight * tf.pow(y, -1.0 / alpha)
    gradient = (tf.linalg.matvec(system, y) - power) * live
    hessian = system + tf.linalg.diag(power / (alpha * y) * live) + eye * outside[:, None]
    step = tf.linalg.solve(hessian, gradient[:, None])[:, 0]
    return step, tf.sqrt(tf.maximum(tf.tensordot(gradient, step, 1), 0.0))

  def body(i, y, _):
    step, decrement = newton(y)
    ratio = tf.where(step > 0, y / tf.where(step > 0, step, 1.0), 1e300)
    size = tf.minimum(1.0 / (1.0 + decrement), 0.99 * tf.reduce_min(ratio))
    return i + 1, y - tf.minimum(size, 1.0) * step, decrement

  _, y, _ = tf.while_loop(lambda i, _, decrement: (i < iterations) & (decrement > 1e-15), body,
                          (tf.constant(0), tf.ones_like(live), tf.constant(1.0, SOLVE_DTYPE)))
  y = y * live
  residual = tf.reduce_max(tf.abs(tf.math.divide_no_nan(
      tf.linalg.matvec(cosines, y) * tf.pow(tf.where(live > 0, y, 1.0), 1.0 / alpha),
      weight) - 1.0) * live)
  rescale = tf.pow(tf.maximum(largest, 1e-300), (1.0 - alpha) / (1.0 + alpha))
  x = tf.math.divide_no_nan(y * rescale, norms) * live
  return tf.cast(x, dtype), tf.cast(residual, dtype)
