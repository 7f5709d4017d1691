"""Small quadratic programmes over a task Gramian G [T, T], solved in the training graph.

Aggregators such as MGDA, UPGrad and DualProj need the minimiser of w^T G w over a simplex or
a shifted orthant. These run inside the XLA-compiled step with TF ops only, as accelerated
projected gradient (FISTA with adaptive restart) over a fixed number of iterations. G is first
restricted to the present tasks and divided by its trace, so the problem has unit scale
whatever the gradients' magnitude; an absent task takes no part and gets weight 0. The solvers
are `tf.function`s, inlined into the training step and compiled on their own when called
eagerly.

Accuracy (tests/surgery/test_solvers.py, against scipy on random stacks with T = 2, 3, 5 and
10): after `ITERATIONS` iterations the objective for a trace-normalised G is within 1e-5 of the
exact minimum, and within 1e-3 for ten nearly collinear gradients (a Gramian with eigenvalues
down to 1e-5 of its trace), where the method converges most slowly. The fair solver (Nash-MTL,
FairGrad) meets its equation within 0.2% on well-spread stacks; where 0 lies nearly in the
gradients' hull its weights stay finite and positive but are less exact.
"""

import tensorflow as tf

ITERATIONS = 200


def normalized(gramian, present):
  """G with absent tasks' rows and columns zeroed, divided by its trace (0 stays 0)."""
  g = gramian * present[:, None] * present[None, :]
  return tf.math.divide_no_nan(g, tf.linalg.trace(g))


def norms_of(gramian, present):
  """The gradient norms [T] from a Gramian's diagonal, and [T] 1 for the present tasks with a
  nonzero gradient (0 for the others, which the solvers leave out)."""
  norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0))
  return norms, present * tf.cast(norms > 0, gramian.dtype)


def eigenvalue_bound(gramian):
  """An upper bound on G's largest eigenvalue (positive semi-definite G): the smaller of its
  trace and its largest absolute row sum."""
  return tf.minimum(tf.linalg.trace(gramian),
                    tf.reduce_max(tf.reduce_sum(tf.abs(gramian), axis=-1)))


def project_simplex(v, present):
  """Euclidean projection of v [T] onto {w >= 0, sum w = 1, w_t = 0 for absent t} (the sort
  rule of Held, Wolfe and Crowder 1974)."""
  count = tf.reduce_sum(present)
  floor = tf.reduce_min(v) - 2.0
  u = tf.sort(tf.where(present > 0, v, floor), direction="DESCENDING")
  k = tf.range(1, tf.size(v) + 1, dtype=v.dtype)
  cumulative = tf.cumsum(u)
  positive = tf.logical_and(u - (cumulative - 1.0) / k > 0, k <= count)
  rho = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.int32)), 1)
  tau = (tf.gather(cumulative, rho - 1) - 1.0) / tf.cast(rho, v.dtype)
  return tf.maximum(v - tau, 0.0) * present


def _fista(gradient, project, start, step, iterations):
  """Accelerated projected gradient from `start`, with restart when momentum points uphill."""

  def body(i, x, y, t):
    x_next = project(y - step * gradient(y))
    t_next = 0.5 * (1.0 + tf.sqrt(1.0 + 4.0 * t * t))
    y_next = x_next + ((t - 1.0) / t_next) * (x_next - x)
    uphill = tf.reduce_sum((y - x_next) * (x_next - x)) > 0
    y_next = tf.where(uphill, x_next, y_next)
    t_next = tf.where(uphill, tf.ones_like(t), t_next)
    return i + 1, x_next, y_next, t_next

  _, x, _, _ = tf.while_loop(lambda i, *_: i < iterations, body,
                             (tf.constant(0), start, start, tf.constant(1.0, start.dtype)))
  return x


def simplex_minimum(gradient, present, step, iterations=ITERATIONS):
  """The minimiser over the simplex of present tasks of a smooth convex function, given its
  gradient and a step no larger than 1 / (the gradient's Lipschitz constant)."""
  start = tf.math.divide_no_nan(present, tf.reduce_sum(present))
  return _fista(gradient, lambda w: project_simplex(w, present), start, step, iterations)


@tf.function
def min_norm_weights(gramian, present, iterations=ITERATIONS):
  """argmin of w^T G w over the simplex of present tasks: the weights of the min-norm point of
  the convex hull of their gradients."""
  g = normalized(gramian, present)
  step = tf.math.divide_no_nan(0.5, eigenvalue_bound(g))
  return simplex_minimum(lambda w: 2.0 * tf.linalg.matvec(g, w), present, step, iterations)


@tf.function
def dual_cone_weights(gramian, lower, present, iterations=ITERATIONS):
  """argmin of v^T G v subject to v >= lower, for each row of `lower` [K, T] at once. With
  J the gradient stack, J^T v is the projection of J^T lower onto the dual cone
  {x : J x >= 0} of the present tasks' gradients. Solved in the variables z = D^(1/2) v, with
  D the diagonal of G (Jacobi scaling), so gradients of very different norms converge alike."""
  g = normalized(gramian, present)
  scale, live = norms_of(g, present)
  inverse = tf.math.divide_no_nan(live, scale)
  cosines = g * inverse[:, None] * inverse[None, :]
  lower_z = lower * scale * live
  step = tf.math.divide_no_nan(1.0, eigenvalue_bound(cosines))
  z = _fista(lambda z: tf.matmul(z, cosines), lambda z: tf.maximum(z, lower_z) * live,
             lower_z, step, iterations)
  return z * inverse + lower * present * (1.0 - live)


def psd_pseudo_inverse(matrix, relative_tolerance=1e-6):
  """Moore-Penrose inverse of a symmetric positive semi-definite matrix, from its eigen-
  decomposition; eigenvalues below `relative_tolerance` times the largest count as 0."""
  values, vectors = tf.linalg.eigh(matrix)
  keep = values > relative_tolerance * tf.reduce_max(values)
  inverse = tf.where(keep, 1.0 / tf.where(keep, values, tf.ones_like(values)), 0.0)
  return tf.matmul(vectors * inverse[None, :], vectors, transpose_b=True)


# Added to the trace-normalised Gramian's diagonal for the fair solvers: when 0 lies in the
# hull of the gradients, G x = x^(-1/alpha) has no positive solution without it.
FAIR_RIDGE = 1e-6
FAIR_ITERATIONS = 30


@tf.function
def fair_weights(gramian, present, alpha=1.0, iterations=FAIR_ITERATIONS):
  """The positive x with G x = x^(-1/alpha) over the present tasks with a nonzero gradient
  (Nash-MTL for alpha = 1, FairGrad's alpha-fairness otherwise); 0 for the others.

  x minimises the strictly convex 1/2 x^T G x - sum_t u(x_t) with u' = x^(-1/alpha), solved by
  damped Newton steps that keep x positive, on the trace-normalised G plus `FAIR_RIDGE` I,
  then rescaled to the original G (x scales as trace^(-alpha / (alpha + 1)))."""
  g = normalized(gramian, present)
  trace = tf.linalg.trace(gramian * present[:, None] * present[None, :])
  _, live = norms_of(g, present)
  g = g + tf.linalg.diag(FAIR_RIDGE * live)
  eye = tf.eye(tf.shape(g)[0], dtype=g.dtype)
  outside = 1.0 - live

  def body(i, x):
    power = tf.pow(x, -1.0 / alpha)
    gradient = (tf.linalg.matvec(g, x) - power) * live
    hessian = (g * live[:, None] * live[None, :] + tf.linalg.diag(power / (alpha * x) * live)
               + eye * outside[:, None])
    step = tf.linalg.solve(hessian, gradient[:, None])[:, 0]
    decrement = tf.sqrt(tf.maximum(tf.tensordot(gradient, step, 1), 0.0))
    ratio = tf.where(step > 0, x / tf.where(step > 0, step, 1.0), 1e30)
    size = tf.minimum(1.0 / (1.0 + decrement), 0.99 * tf.reduce_min(ratio))
    return i + 1, x - tf.minimum(size, 1.0) * step

  _, x = tf.while_loop(lambda i, _: i < iterations, body, (tf.constant(0), tf.ones_like(live)))
  scale = tf.pow(tf.maximum(trace, 1e-30), -alpha / (alpha + 1.0))
  return tf.where(trace > 0, x * live * scale, tf.zeros_like(x))
