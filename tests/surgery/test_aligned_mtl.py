"""Aligned-MTL: a stack whose singular values all equal the smallest one."""

import numpy as np
import pytest

from tests.surgery import common


def test_two_tasks_by_hand():
  shared, w = common.combine(common.built("aligned_mtl", 2), [[2.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(w, [0.5, 1.0], atol=1e-5)
  np.testing.assert_allclose(shared, [1.0, 1.0], atol=1e-5)


@pytest.mark.parametrize("num_tasks", [2, 3, 5])
def test_aligned_stack_is_a_scaled_isometry(num_tasks):
  """The aligned stack B J (B from the weights' construction) has equal singular values:
  checked through its Gramian B G B = l_min * I on the stack's row space."""
  grads = common.stack(num_tasks, num_params=12, seed=50 + num_tasks).numpy().astype(float)
  g = grads @ grads.T
  values, vectors = np.linalg.eigh(g)
  b = np.sqrt(values.min()) * vectors @ np.diag(values ** -0.5) @ vectors.T
  np.testing.assert_allclose(b @ g @ b, values.min() * np.eye(num_tasks), atol=1e-8)
  shared, w = common.combine(common.built("aligned_mtl", num_tasks), grads)
  np.testing.assert_allclose(w, b.sum(axis=0), rtol=1e-3)
  np.testing.assert_allclose(shared, b.sum(axis=0) @ grads, rtol=1e-3, atol=1e-4)


def test_orthogonal_equal_norms_are_left_alone():
  shared, w = common.combine(common.built("aligned_mtl", 3), 2.0 * np.eye(3))
  np.testing.assert_allclose(w, np.ones(3), atol=1e-5)


def test_order_invariant_and_absent_task():
  grads = common.stack(3, seed=7).numpy()
  common.assert_order_invariant("aligned_mtl", grads, [2, 1, 0], atol=1e-4)
  common.assert_absent_ignored("aligned_mtl", grads, 1, atol=1e-4)
