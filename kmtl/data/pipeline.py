"""tf.data input: batches of (features [B, F], labels {task: [B]}, masks {task: [B]}).

A missing label is 0 with mask 0. Task-balanced sampling draws each training example from the
labelled rows of a task chosen uniformly at random, so a task with 800 labels is seen as often
as one with 52,388 (rows labelled for rare tasks are over-sampled); an epoch keeps its length.
"""

import numpy as np
import tensorflow as tf


def _gather(tensors, indices):
  features, labels, masks = tensors
  take = lambda a: tf.gather(a, indices)
  return take(features), {t: take(v) for t, v in labels.items()}, {
      t: take(v) for t, v in masks.items()}


def make_dataset(split, batch_size, shuffle=False, seed=0, balanced=False, drop_remainder=False):
  """A `tf.data.Dataset` over `splits.SplitArrays`, seeded, prefetched.

  Args:
    split: the arrays of one split.
    batch_size: rows per batch.
    shuffle: reshuffle rows every epoch (seeded).
    seed: seed of the shuffle and of balanced sampling.
    balanced: task-balanced sampling (training only); implies a random order.
    drop_remainder: drop the last, smaller batch.
  """
  tensors = (tf.constant(split.features),
             {t: tf.constant(v) for t, v in split.labels.items()},
             {t: tf.constant(v) for t, v in split.masks.items()})
  num_rows = split.num_rows
  if balanced:
    per_task = []
    for i, (name, mask) in enumerate(split.masks.items()):
      rows = np.flatnonzero(mask > 0).astype(np.int64)
      if len(rows):
        per_task.append(tf.data.Dataset.from_tensor_slices(rows)
                        .shuffle(len(rows), seed=seed + 1 + i).repeat())
    # A fresh task choice every epoch: Dataset.random draws anew on each iteration.
    choice = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).map(
        lambda r: tf.cast(r % len(per_task), tf.int64))
    indices = tf.data.Dataset.choose_from_datasets(per_task, choice).take(num_rows)
  else:
    indices = tf.data.Dataset.range(num_rows)
    if shuffle:
      indices = indices.shuffle(num_rows, seed=seed, reshuffle_each_iteration=True)
  dataset = indices.batch(batch_size, drop_remainder=drop_remainder)
  dataset = dataset.map(lambda idx: _gather(tensors, idx),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset.prefetch(tf.data.AUTOTUNE)

