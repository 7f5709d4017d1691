"""The in-graph QP solvers against scipy on random stacks, T = 2, 3, 5 and 10."""

import numpy as np
import pytest
from scipy import optimize
import tensorflow as tf

from kmtl.surgery import solvers


def _gramians(num_tasks, seed):
  """Random trace-normalised Gramians: well spread, rank-deficient and nearly collinear."""
  rng = np.random.default_rng(seed)
  for case, num_params in enumerate((2 * num_tasks, max(num_tasks - 1, 1), 2 * num_tasks)):
    j = rng.normal(size=(num_tasks, num_params))
    if case == 2:
      j[1:] = j[0] * rng.normal(size=(num_tasks - 1, 1)) + 0.05 * j[1:]
    g = j @ j.T
    yield case, g / np.trace(g)


def _exact_simplex(g):
  n = len(g)
  return optimize.minimize(lambda w: w @ g @ w, np.ones(n) / n, jac=lambda w: 2 * g @ w,
                           bounds=[(0, 1)] * n, method="SLSQP",
                           constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                           options={"ftol": 1e-15, "maxiter": 1000}).fun


def _exact_box(g, lower):
  return optimize.minimize(lambda v: v @ g @ v, lower + 0.1, jac=lambda v: 2 * g @ v,
                           bounds=[(x, None) for x in lower], method="L-BFGS-B",
                           options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000}).fun


def _tolerance(case):
  return 1e-3 if case == 2 else 1e-5  # nearly collinear stacks converge most slowly


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_min_norm_matches_exact(num_tasks):
  for case, g in _gramians(num_tasks, seed=num_tasks):
    w = solvers.min_norm_weights(tf.constant(g, tf.float32), tf.ones([num_tasks])).numpy()
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-5)
    assert w @ g @ w - _exact_simplex(g) <= _tolerance(case)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_dual_cone_matches_exact(num_tasks):
  for case, g in _gramians(num_tasks, seed=100 + num_tasks):
    lower = np.eye(num_tasks)
    v = solvers.dual_cone_weights(tf.constant(g, tf.float32), tf.constant(lower, tf.float32),
                                  tf.ones([num_tasks])).numpy()
    assert np.all(v >= lower - 1e-6)
    for row, bound in zip(v, lower):
      assert row @ g @ row - _exact_box(g, bound) <= _tolerance(case)


def test_simplex_projection_by_hand():
  # (0.5, 0.5, 2) -> tau = 1: (0, 0, 1); with the third task absent -> (0.5, 0.5, 0).
  v = tf.constant([0.5, 0.5, 2.0])
  np.testing.assert_allclose(solvers.project_simplex(v, tf.ones([3])), [0.0, 0.0, 1.0])
  np.testing.assert_allclose(solvers.project_simplex(v, tf.constant([1.0, 1.0, 0.0])),
                             [0.5, 0.5, 0.0])
  np.testing.assert_allclose(solvers.project_simplex(v, tf.zeros([3])), [0.0, 0.0, 0.0])


def test_pseudo_inverse_of_a_singular_matrix():
  m = np.array([[1.0, 1.0], [1.0, 1.0]])
  np.testing.assert_allclose(solvers.psd_pseudo_inverse(tf.constant(m, tf.float32)),
                             np.linalg.pinv(m), atol=1e-6)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
def test_fair_weights_solve_their_equation(num_tasks):
  """(G + ridge I) x = x^(-1/alpha), the ridge in units of the trace. Where 0 lies (nearly) in
  the gradients' hull, x is finite and positive, but the fixed iterations in float32 do not
  solve the equation closely: only well-spread stacks are held to 0.2%."""
  for case, g in _gramians(num_tasks, seed=200 + num_tasks):
    ridged = g + solvers.FAIR_RIDGE * np.trace(g) * np.eye(num_tasks)
    for alpha in (0.5, 1.0, 2.0):
      x = solvers.fair_weights(tf.constant(g, tf.float32), tf.ones([num_tasks]), alpha).numpy()
      assert np.all(x > 0) and np.all(np.isfinite(x))
      if case == 0:
        np.testing.assert_allclose(ridged @ x, x ** (-1 / alpha), rtol=2e-3)
