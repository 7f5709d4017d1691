"""GradDrop: sign purity and random sign selection."""

import numpy as np
import pytest
import tensorflow as tf

from tests.surgery import common


def test_keeps_one_sign_per_parameter_by_the_draw():
  """Each parameter keeps the positive parts where purity > draw, else the negative ones,
  with the draws reproduced from the same seed."""
  grads = np.array([[3.0, -1.0, 0.5, 0.0], [-1.0, -2.0, 0.5, 0.0]], np.float32)
  method = common.built("graddrop", 2, seed=3)
  shared, w = common.combine(method, grads)
  draw = tf.random.Generator.from_seed(3).uniform([4]).numpy()
  purity = 0.5 * (1 + grads.sum(0) / np.maximum(np.abs(grads).sum(0), 1e-30))
  purity[3] = 0.5
  expected = np.where(purity > draw, np.maximum(grads, 0).sum(0), np.minimum(grads, 0).sum(0))
  np.testing.assert_allclose(shared, expected)
  np.testing.assert_allclose(w, [1.0, 1.0])
  assert shared[1] == -3.0 and shared[2] == 1.0  # pure signs are always kept


def test_frequency_follows_purity():
  """Over many draws the positive part of (3, -1) is kept with probability 3/4."""
  method = common.built("graddrop", 2, seed=0)
  grads = np.tile(np.array([[3.0], [-1.0]], np.float32), (1, 4000))
  shared, _ = common.combine(method, grads)
  assert np.mean(shared == 3.0) == pytest.approx(0.75, abs=0.03)


def test_leak_one_is_the_sum_and_absent_task():
  grads = common.stack(3).numpy()
  shared, _ = common.combine(common.built("graddrop", 3, leak=1.0), grads)
  np.testing.assert_allclose(shared, grads.sum(0), rtol=1e-6)
  (shared, _), (expected, _) = common.without_row("graddrop", grads, 0)
  np.testing.assert_allclose(shared, expected, rtol=1e-6)
  with pytest.raises(ValueError, match="leak"):
    common.built("graddrop", 2, leak=2.0)
