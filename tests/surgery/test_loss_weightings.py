"""The loss weightings (rlw, dwa, gls, stch, famo, imtl_l, si), each by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests.surgery import common

ON = tf.ones([2])


def _weights(name, losses, present=(1.0, 1.0), **kwargs):
  method = common.built(name, len(losses), **kwargs)
  return method, method.weights(tf.constant(losses), tf.constant(present)).numpy()


def test_rlw_is_softmax_of_normal_draws():
  method, w = _weights("rlw", [1.0, 5.0], seed=4)
  z = tf.random.Generator.from_seed(4).normal([2]).numpy()
  np.testing.assert_allclose(w, np.exp(z) / np.exp(z).sum(), rtol=1e-6)
  _, w = _weights("rlw", [1.0, 5.0, 2.0], present=(1.0, 0.0, 1.0))
  assert w[1] == 0.0 and w.sum() == pytest.approx(1.0)


def test_dwa_by_hand():
  method = common.built("dwa", 2)
  np.testing.assert_allclose(method.weights(tf.ones([2]), ON), [1.0, 1.0])
  method.end_epoch(np.array([1.0, 1.0]))
  np.testing.assert_allclose(method.weights(tf.ones([2]), ON), [1.0, 1.0])  # one epoch only
  method.end_epoch(np.array([0.5, 1.0]))
  e = np.exp([0.25, 0.5])
  np.testing.assert_allclose(method.weights(tf.ones([2]), ON), 2 * e / e.sum(), rtol=1e-6)
  w = method.weights(tf.ones([2]), tf.constant([0.0, 1.0])).numpy()
  np.testing.assert_allclose(w, [0.0, 1.0], rtol=1e-6)


def test_gls_by_hand():
  _, w = _weights("gls", [1.0, 4.0])
  np.testing.assert_allclose(w, [1.0, 0.25], rtol=1e-6)
  _, w = _weights("gls", [1.0, 0.0, 4.0], present=(1.0, 0.0, 1.0))
  np.testing.assert_allclose(w, [1.0, 0.0, 0.25], rtol=1e-6)


def test_si_by_hand():
  _, w = _weights("si", [2.0, 0.5])
  np.testing.assert_allclose(w, [0.5, 2.0])


def test_stch_log_losses_until_the_nadir_then_smooth_max():
  method = common.built("stch", 2, anchor_batches=1)
  np.testing.assert_allclose(method.weights(tf.constant([2.0, 4.0]), ON), [0.5, 0.25])
  # Nadir (2, 4); L = (2, 4e): l = (0, 1), w = 2 softmax(l) / L.
  w = method.weights(tf.constant([2.0, 4.0 * math.e]), ON).numpy()
  soft = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
  np.testing.assert_allclose(w, 2 * soft / [2.0, 4.0 * math.e], rtol=1e-5)


def test_famo_weights_and_logit_step():
  method = common.built("famo", 2)
  w = method.weights(tf.constant([1.0, 3.0]), ON).numpy()
  np.testing.assert_allclose(w, [0.75, 0.25], rtol=1e-6)
  # After the update task 1's loss fell (1 -> 0.5), task 2's did not (3 -> 3): delta =
  # (log 2, 0), whose softmax-Jacobian product (log 2 / 4, -log 2 / 4) is positive for task 1,
  # so Adam's first step lowers task 1's logit and raises task 2's, by the learning rate.
  method.after_update(tf.constant([0.5, 3.0]), ON)
  logits = method.logits.numpy()
  np.testing.assert_allclose(logits, [-0.025, 0.025], atol=1e-6)
  method.after_update(tf.constant([0.5, 0.0]), tf.constant([0.0, 1.0]))
  assert method.logits.numpy()[0] == logits[0]  # absent: kept exactly


def test_imtl_l_by_hand():
  method = common.built("imtl_l", 2, learning_rate=0.1)
  w = method.weights(tf.constant([3.0, 1.0]), ON).numpy()
  np.testing.assert_allclose(w, [1.0, 1.0])
  # Gradients exp(s) L - 1 = (2, 0): s1 falls by lr (Adam's first step), s2 stays.
  np.testing.assert_allclose(method.log_scales.numpy(), [-0.1, 0.0], atol=1e-6)


@pytest.mark.parametrize("name, kwargs", [
    ("dwa", {"temperature": 0.0}), ("stch", {"mu": -1.0}), ("stch", {"anchor_batches": 0}),
    ("famo", {"gamma": -1.0}), ("famo", {"learning_rate": 0.0}),
    ("imtl_l", {"learning_rate": -1.0}), ("gradvac", {"beta": 0.0}),
    ("mgda", {"normalization": "l1"})])
def test_bad_hyper_parameters(name, kwargs):
  with pytest.raises(ValueError, match=next(iter(kwargs))):
    common.built(name, 2, **kwargs)
