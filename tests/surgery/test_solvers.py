"""The in-graph solvers themselves: by hand, and against SciPy on random and scaled problems.
The methods built on them are held to the exact updates in test_exact_solutions.py."""

import numpy as np
import pytest
from scipy import optimize
import tensorflow as tf

from kmtl.surgery import solvers


def test_nonnegative_qp_by_hand():
  """min 1/2 x^T x + c^T x, x >= 0, is x = max(-c, 0); a dead variable stays 0; a second
  row of c is solved alongside."""
  x, residual = solvers.nonnegative_qp(tf.eye(3, dtype=tf.float64),
                                       tf.constant([[-1.0, 2.0, -3.0], [1.0, -0.5, 0.0]],
                                                   tf.float64),
                                       tf.constant([1.0, 1.0, 0.0], tf.float64))
  np.testing.assert_allclose(x, [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]], atol=1e-14)
  assert np.all(residual.numpy() < 1e-12)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10, 16])
def test_nonnegative_qp_matches_bounded_least_squares(num_tasks):
  """H = A^T A and c = -A^T b with rows of A scaled over four orders of magnitude: the same x
  as SciPy's bounded-variable least squares."""
  rng = np.random.default_rng(num_tasks)
  a = rng.normal(size=(2 * num_tasks, num_tasks)) * np.geomspace(1e-2, 1e2, num_tasks)
  b = rng.normal(size=2 * num_tasks)
  expected = optimize.lsq_linear(a, b, bounds=(0, np.inf), method="bvls", tol=1e-15).x
  x, residual = solvers.nonnegative_qp(tf.constant(a.T @ a), tf.constant(-(a.T @ b))[None],
                                       tf.ones([num_tasks], tf.float64))
  np.testing.assert_allclose(x[0], expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())
  assert float(residual[0]) < 1e-9


def test_min_norm_weights_by_hand():
  # g1 = (1, 0), g2 = (-1, 1): min over w2 of (1 - 2 w2)^2 + w2^2 gives w = (0.6, 0.4).
  j = np.array([[1.0, 0.0], [-1.0, 1.0]])
  w, residual = solvers.min_norm_weights(tf.constant(j @ j.T), tf.ones([2], tf.float64))
  np.testing.assert_allclose(w, [0.6, 0.4], atol=1e-14)
  assert float(residual) < 1e-12


def test_dual_cone_weights_by_hand():
  # g1 = (1, 0), g2 = (-1, 1): g1 projects onto the cone as (1/2, 1/2), v = (1, 1/2).
  j = np.array([[1.0, 0.0], [-1.0, 1.0]])
  v, _ = solvers.dual_cone_weights(tf.constant(j @ j.T), tf.eye(2, dtype=tf.float64),
                                   tf.ones([2], tf.float64))
  np.testing.assert_allclose(v, [[1.0, 0.5], [1.0, 1.0]], atol=1e-14)


def test_pseudo_inverse_and_solve_of_a_singular_matrix():
  m = np.array([[1.0, 1.0], [1.0, 1.0]])
  np.testing.assert_allclose(solvers.psd_pseudo_inverse(tf.constant(m)), np.linalg.pinv(m),
                             atol=1e-12)
  live = tf.ones([2], tf.float64)
  np.testing.assert_allclose(solvers.psd_solve(tf.constant(m), tf.constant([1.0, 1.0],
                                                                           tf.float64), live),
                             [0.5, 0.5], atol=1e-12)
  regular = np.array([[2.0, 1.0], [1.0, 2.0]])
  np.testing.assert_allclose(solvers.psd_solve(tf.constant(regular),
                                               tf.constant([1.0, 0.0], tf.float64), live),
                             np.linalg.solve(regular, [1.0, 0.0]), atol=1e-14)


@pytest.mark.parametrize("num_tasks", [2, 5, 16])
def test_fair_weights_solve_their_equation_at_any_scale(num_tasks):
  """G x = x^(-1/alpha) to 1e-8 for alpha = 0.5, 1 and 2 on gradients whose norms span 10^4,
  and the residual says so."""
  rng = np.random.default_rng(200 + num_tasks)
  j = rng.normal(size=(num_tasks, 2 * num_tasks)) * np.geomspace(1e2, 1e-2, num_tasks)[:, None]
  g = j @ j.T
  for alpha in (0.5, 1.0, 2.0):
    x, residual = solvers.fair_weights(tf.constant(g), tf.ones([num_tasks], tf.float64), alpha)
    x = x.numpy()
    assert np.all(x > 0)
    np.testing.assert_allclose(g @ x, x ** (-1 / alpha), rtol=1e-8)
    assert float(residual) < 1e-8
