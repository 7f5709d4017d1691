"""Helpers shared by the method test files: a built method, random stacks, presence masks."""

import numpy as np
import tensorflow as tf

from kmtl.surgery import registry


def built(name, num_tasks, seed=0, num_params=None, **kwargs):
  method = registry.create(name, **kwargs)
  method.build(num_tasks, seed=seed, num_params=num_params)
  return method


def stack(num_tasks, num_params=8, seed=0):
  return tf.constant(np.random.default_rng(seed).normal(size=(num_tasks, num_params)),
                     tf.float32)


def combine(method, grads, losses=None, present=None):
  """(shared gradient, weights) as NumPy, every task present and losses 1 by default."""
  grads = tf.constant(grads, tf.float32)
  num_tasks = grads.shape[0]
  losses = tf.ones([num_tasks]) if losses is None else tf.constant(losses, tf.float32)
  present = tf.ones([num_tasks]) if present is None else tf.constant(present, tf.float32)
  shared, w = method.combine(grads, losses, present)
  return shared.numpy(), w.numpy()


def without_row(name, grads, absent, **kwargs):
  """The result with row `absent` marked absent (zeroed) and without it at all."""
  grads = np.asarray(grads, np.float32).copy()
  kwargs.setdefault("num_params", grads.shape[1])
  grads[absent] = 0.0
  present = np.ones(len(grads), np.float32)
  present[absent] = 0.0
  full = combine(built(name, len(grads), **kwargs), grads, present=present)
  kept = np.delete(grads, absent, axis=0)
  return full, combine(built(name, len(kept), **kwargs), kept)


def weights(name, losses, present=None, **kwargs):
  """(built method, its loss weights as NumPy) for a loss weighting, every task present by
  default."""
  method = built(name, len(losses), **kwargs)
  present = np.ones(len(losses)) if present is None else present
  return method, method.weights(tf.constant(losses, tf.float32),
                                tf.constant(present, tf.float32)).numpy()


def assert_order_invariant(name, grads, order, **tolerance):
  """The shared gradient does not depend on the order of the tasks."""
  grads = np.asarray(grads)
  num_tasks = len(grads)
  shared, _ = combine(built(name, num_tasks, num_params=grads.shape[1]), grads)
  permuted, _ = combine(built(name, num_tasks, num_params=grads.shape[1]), grads[order])
  np.testing.assert_allclose(shared, permuted, **tolerance)


def assert_absent_ignored(name, grads, absent, **kwargs):
  """An absent task gets weight 0, and the result is that of the stack without its row."""
  tolerance = {k: kwargs.pop(k) for k in ("rtol", "atol") if k in kwargs}
  (shared, w), (expected, _) = without_row(name, grads, absent, **kwargs)
  assert w[absent] == 0.0
  np.testing.assert_allclose(shared, expected, **tolerance)
