"""ExcessMTL: exponentiated weights from excess-risk estimates."""

import numpy as np
import pytest

from tests.surgery import common


def test_by_hand():
  method = common.built("excess_mtl", 2, num_params=2, step_size=0.5)
  grads = [[3.0, 0.0], [0.0, 1.0]]
  shared, w = common.combine(method, grads)
  np.testing.assert_allclose(w, [1.0, 1.0])  # the first step only fixes the references
  np.testing.assert_allclose(method.reference.numpy(), [3.0, 1.0], rtol=1e-5)
  # Second step, same gradients: h = sqrt(2) g, e = g^2 / (sqrt 2 |g|) = |g| / sqrt 2, so both
  # ratios are 1 / sqrt 2 and the equal factors renormalise away.
  _, w = common.combine(method, grads)
  np.testing.assert_allclose(w, [1.0, 1.0], rtol=1e-5)
  # Third step, task 1's gradient doubles: h1^2 = 9 + 9 + 36, its ratio (36 / sqrt 54) / 3
  # beats task 2's (1 / sqrt 3), and it gains weight.
  _, w = common.combine(method, [[6.0, 0.0], [0.0, 1.0]])
  r = np.array([36 / np.sqrt(54) / 3, 1 / np.sqrt(3)])
  factors = np.exp(0.5 * r)
  np.testing.assert_allclose(w, 2 * factors / factors.sum(), rtol=1e-4)


def test_absent_task_keeps_its_weight_and_bad_step():
  method = common.built("excess_mtl", 3, num_params=8)
  for seed in range(3):
    common.combine(method, common.stack(3, seed=seed).numpy())
  before = method.task_weights.numpy().copy()
  grads = common.stack(3, seed=5).numpy()
  grads[0] = 0.0
  _, w = common.combine(method, grads, present=[0.0, 1.0, 1.0])
  after = method.task_weights.numpy()
  assert w[0] == 0.0 and after[0] == before[0]
  assert after.sum() == pytest.approx(3.0, rel=1e-5)
  with pytest.raises(ValueError, match="step_size"):
    common.built("excess_mtl", 2, num_params=2, step_size=0.0)
