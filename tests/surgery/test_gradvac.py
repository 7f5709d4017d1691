"""GradVac: moves gradients to a target cosine, which tracks the observed ones."""

import numpy as np
import pytest

from tests.surgery import common


def test_first_step_is_pcgrad():
  shared, w = common.combine(common.built("gradvac", 2), [[1.0, 0.0], [-1.0, 1.0]])
  pcgrad, _ = common.combine(common.built("pcgrad", 2), [[1.0, 0.0], [-1.0, 1.0]])
  np.testing.assert_allclose(shared, pcgrad, atol=1e-6)
  np.testing.assert_allclose(w, [1.0, 1.0])


def test_reaches_the_target_cosine_and_averages_the_observed_one():
  method = common.built("gradvac", 2, beta=0.5)
  grads = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
  common.combine(method, grads)  # cosine 0 = target 0: no change; targets stay 0
  np.testing.assert_allclose(method.targets.numpy(), 0.0, atol=1e-7)
  method.targets.assign([[0.0, 0.5], [0.5, 0.0]])
  shared, _ = common.combine(method, grads)
  # g1 moves towards g2 until cos = 0.5, and g2 towards g1 likewise.
  g1 = np.array([1.0, 0.0]) + (1.0 * 0.5 / np.sqrt(0.75)) * np.array([0.0, 1.0])
  assert np.dot(g1, [0.0, 1.0]) / np.linalg.norm(g1) == pytest.approx(0.5)
  np.testing.assert_allclose(shared, g1 + g1[::-1], atol=1e-5)
  np.testing.assert_allclose(method.targets.numpy(), [[0.0, 0.25], [0.25, 0.0]], atol=1e-6)


def test_absent_task_pairs_keep_their_targets():
  grads = common.stack(3).numpy()
  (shared, _), (expected, _) = common.without_row("gradvac", grads, 1)
  np.testing.assert_allclose(shared, expected, atol=1e-5)
  method = common.built("gradvac", 3, beta=0.5)
  grads[1] = 0.0
  common.combine(method, grads, present=[1.0, 0.0, 1.0])
  targets = method.targets.numpy()
  assert np.all(targets[1] == 0) and np.all(targets[:, 1] == 0) and targets[0, 2] != 0
