"""DB-MTL: log-loss gradients, averaged, rescaled to the largest norm."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  method = common.built("db_mtl", 2, num_params=2)
  shared, w = common.combine(method, [[2.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(w, [1.0, 2.0], rtol=1e-6)
  np.testing.assert_allclose(shared, [0.2, 0.2], rtol=1e-5)
  # Second step, beta_2 = 0.9 / sqrt 2; losses (2, 1) halve the first task's log gradient.
  shared, _ = common.combine(method, [[2.0, 0.0], [0.0, 1.0]], losses=[2.0, 1.0])
  rate = 0.9 / np.sqrt(2)
  m1 = np.array([1.0, 0.0]) + rate * (np.array([0.2, 0.0]) - [1.0, 0.0])
  m2 = np.array([0.0, 1.0]) + rate * (np.array([0.0, 0.1]) - [0.0, 1.0])
  top = max(np.linalg.norm(m1), np.linalg.norm(m2))
  np.testing.assert_allclose(shared, top / np.linalg.norm(m1) * m1 + top / np.linalg.norm(m2)
                             * m2, rtol=1e-5)


def test_balanced_norms_and_loss_scale_invariance():
  """Every rescaled average has the largest norm; multiplying a task's loss by c (and so its
  gradient) changes nothing."""
  grads = common.stack(3, seed=12).numpy()
  losses = np.array([1.0, 0.5, 2.0], np.float32)
  a = common.built("db_mtl", 3, num_params=8)
  shared, w = common.combine(a, grads, losses)
  norms = np.linalg.norm(a.averages.numpy(), axis=1) * w
  np.testing.assert_allclose(norms, norms.max(), rtol=1e-5)
  b = common.built("db_mtl", 3, num_params=8)
  scaled, _ = common.combine(b, grads * [[10.0], [1.0], [1.0]], losses * [10.0, 1.0, 1.0])
  np.testing.assert_allclose(scaled, shared, rtol=1e-4)


def test_absent_task_keeps_its_average_and_needs_the_width():
  method = common.built("db_mtl", 3, num_params=8)
  common.combine(method, common.stack(3).numpy())
  before = method.averages.numpy()[1].copy()
  grads = common.stack(3, seed=1).numpy()
  grads[1] = 0.0
  _, w = common.combine(method, grads, present=[1.0, 0.0, 1.0])
  assert w[1] == 0.0 and np.array_equal(method.averages.numpy()[1], before)
  with pytest.raises(ValueError, match="number of shared parameters"):
    common.built("db_mtl", 2)
