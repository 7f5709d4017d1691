"""Masked losses against hand-computed values; empty tasks give 0 and finite zero gradients."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import losses
from kmtl.data import schema

REG = schema.TaskSpec("hardness", schema.REGRESSION)
BIN = schema.TaskSpec("amorphous", schema.BINARY)


def test_masked_mse_by_hand():
  # 4 rows, rows 1 and 3 labelled: errors 2 and -1 -> (4 + 1) / 2 = 2.5. Masked rows hold
  # wild values that must not count.
  y = tf.constant([0.0, 1.0, 99.0, 2.0])
  pred = tf.constant([5.0, 3.0, -50.0, 1.0])
  mask = tf.constant([0.0, 1.0, 0.0, 1.0])
  loss = losses.task_losses([REG], {"hardness": y}, {"hardness": pred}, {"hardness": mask})
  assert float(loss[0]) == pytest.approx(2.5)


def test_sample_weights_and_huber_by_hand():
  y = tf.constant([0.0, 0.0, 0.0, 0.0])
  pred = tf.constant([2.0, 0.5, 7.0, 1.0])
  mask = tf.constant([1.0, 1.0, 0.0, 0.0])
  weights = tf.constant([0.5, 1.5, 3.0, 3.0])
  mse = losses.task_losses([REG], {"hardness": y}, {"hardness": pred}, {"hardness": mask},
                           {"hardness": weights})
  assert float(mse[0]) == pytest.approx((0.5 * 4.0 + 1.5 * 0.25) / 2)
  huber = losses.per_row_loss(REG, y, pred, config_lib.LossConfig(regression="huber"))
  # |e| = 2 > 1: 0.5 + (2 - 1) = 1.5; |e| = 0.5: 0.125.
  np.testing.assert_allclose(huber.numpy()[:2], [1.5, 0.125])


def test_binary_cross_entropy_with_pos_weight_by_hand():
  y = tf.constant([1.0, 0.0, 1.0, 0.0])
  logits = tf.constant([0.0, 0.0, 2.0, 9.0])
  mask = tf.constant([1.0, 1.0, 1.0, 0.0])
  config = config_lib.LossConfig(pos_weight=(("amorphous", 2.0),))
  loss = losses.task_losses([BIN], {"amorphous": y}, {"amorphous": logits}, {"amorphous": mask},
                            config=config)
  expected = (2 * math.log(2) + math.log(2) + 2 * math.log(1 + math.exp(-2))) / 3
  assert float(loss[0]) == pytest.approx(expected, rel=1e-6)


def test_all_masked_task_gives_zero_loss_and_finite_zero_gradient():
  pred_var = tf.Variable([1.0, 2.0, 3.0, 4.0])
  tasks = [REG, BIN]
  labels = {"hardness": tf.constant([1.0, 2.0, 0.0, 0.0]), "amorphous": tf.zeros(4)}
  masks = {"hardness": tf.constant([1.0, 1.0, 0.0, 0.0]), "amorphous": tf.zeros(4)}
  with tf.GradientTape(persistent=True) as tape:
    preds = {"hardness": pred_var * 1.0, "amorphous": pred_var * 2.0}
    task_loss = losses.task_losses(tasks, labels, preds, masks)
    labelled, empty = task_loss[0], task_loss[1]
    total = tf.reduce_sum(task_loss)
  assert float(empty) == 0.0
  grad = tape.gradient(empty, pred_var)
  assert np.all(np.isfinite(grad)) and np.all(grad.numpy() == 0.0)
  full = tape.gradient(labelled, pred_var)
  np.testing.assert_allclose(full, [0.0, 0.0, 0.0, 0.0])  # predictions equal labels
  assert np.all(np.isfinite(tape.gradient(total, pred_var)))


def test_inverse_count_weights_reproduce_the_reference():
  weights = losses.task_weights("inverse_count", [52_388, 800, 840])
  assert [round(w) for w in weights] == [1, 65, 62]
  np.testing.assert_allclose(weights, [1.0, 52_388 / 800, 52_388 / 840])
  np.testing.assert_allclose(losses.task_weights("equal", [5, 7]), [1.0, 1.0])
  np.testing.assert_allclose(losses.task_weights([1.0, 0.5], [5, 7]), [1.0, 0.5])
  with pytest.raises(ValueError, match="Expected 2 non-negative"):
    losses.task_weights([1.0], [5, 7])
  with pytest.raises(ValueError, match="Invalid task weighting"):
    losses.task_weights("inverse", [5, 7])
