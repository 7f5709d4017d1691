"""Batch sampling of the training split, in-graph: the row order of every epoch and the batches
cut from it.

An epoch's order is a stateless function of (seed, epoch), so a resumed run draws the same
orders. Uniform sampling is a permutation of the rows. Task-balanced sampling draws each of
the epoch's `num_rows` rows by picking a task uniformly (among tasks with labels), then one of
its labelled rows uniformly: a task with 800 labels is seen as often as one with 52,388 (rows
of rare tasks are over-sampled), and an epoch keeps its length. A batch is a contiguous slice
of the order; a missing label is 0 with mask 0.
"""

import numpy as np
import tensorflow as tf


class EpochSampler:
  """Row orders and batches over a split of `num_rows` rows with label `masks` [N, T]."""

  def __init__(self, masks, seed, balanced=False):
    masks = np.asarray(masks)
    self.num_rows = masks.shape[0]
    self.seed, self.balanced = seed, balanced
    labelled = [np.flatnonzero(masks[:, t] > 0) for t in range(masks.shape[1])]
    self.rows_by_task = tf.ragged.constant([r for r in labelled if len(r)], dtype=tf.int32)

  def order(self, epoch):
    """[num_rows] row indices of `epoch` (an int64 scalar tensor)."""
    seed = tf.stack([tf.cast(self.seed, tf.int64), epoch])
    if self.balanced:
      return self._balanced_order(seed)
    return tf.random.experimental.stateless_shuffle(tf.range(self.num_rows), seed)

  def _balanced_order(self, seed):
    num_tasks = tf.cast(self.rows_by_task.nrows(), tf.int32)
    task = tf.random.stateless_uniform([self.num_rows], seed, maxval=num_tasks, dtype=tf.int32)
    uniform = tf.random.stateless_uniform([self.num_rows], seed + 1)
    counts = tf.cast(tf.gather(self.rows_by_task.row_lengths(), task), tf.float32)
    position = tf.cast(tf.floor(uniform * counts), tf.int64)
    starts = tf.gather(self.rows_by_task.row_starts(), task)
    return tf.gather(self.rows_by_task.flat_values, starts + position)


def batch_rows(order, step, batch_size):
  """The row indices of batch `step` of an epoch's `order`."""
  # tf.slice, not order[a:b]: XLA turns a strided slice with traced bounds into a pass over
  # the whole of `order` at every step.
  return tf.slice(order, [step * batch_size], [batch_size])


def gather_batch(tensors, rows):
  """The batch `rows` of every [N, ...] tensor in `tensors`."""
  return tuple(tf.gather(t, rows) for t in tensors)


class InMemoryBatches:
  """The batches of a split held in memory: the sampler's epoch order over its tensors, in
  calls of `steps_per_call` steps (the whole epoch when 0 or None)."""

  def __init__(self, tensors, seed, balanced, batch_size, steps_per_call=None):
    self.tensors = tensors
    self.sampler = EpochSampler(tensors[2].numpy(), seed, balanced)
    self._order = tf.function(self.sampler.order, autograph=False)
    self.steps = int(tensors[0].shape[0]) // batch_size
    self.per_call = steps_per_call or self.steps

  def calls(self, epoch):
    """(order, training tensors, first step, last step) of each graph call of `epoch`."""
    order = self._order(epoch)
    for first in range(0, self.steps, self.per_call):
      yield order, self.tensors, first, min(first + self.per_call, self.steps)


def training_tensors(train, names, sample_weights):
  """(features, labels, masks, sample weights) of the training split as tensors. They are
  passed to the epoch function as arguments: captured as constants, XLA would fold them into
  the program."""
  labels = np.stack([train.labels[n] for n in names], axis=1)
  masks = tf.constant(np.stack([train.masks[n] for n in names], axis=1))
  return (tf.constant(train.features), tf.constant(labels), masks,
          tf.ones_like(masks) if sample_weights is None
          else tf.constant(sample_weights, tf.float32))
