"""Training batches streamed from a training split on disk (kmtl/data/streaming.py), through
tf.data, in chunks of whole batches that the compiled training loop takes as its tensors.

The epoch keeps the in-memory sampler's semantics (kmtl/data/sampling.py), drawn from
(seed, epoch) so a resumed run draws the same epochs:
- uniform: every training row exactly once per epoch; the order is the file's row groups in a
  random order, read `window` groups at a time and shuffled within the window (a shuffle
  buffer of about `window` x 65,536 rows, not a permutation of the whole split);
- task-balanced: row r is drawn Poisson(N sum_{t labels r} 1 / (T' n_t)) times, the expected
  count of the in-memory sampler's draws (pick one of the T' labelled tasks, then one of its
  n_t rows, N times); passes go on until the epoch's N rows are drawn.
An epoch has N // batch_size batches, as in memory; chunks hold `chunk_steps` of them (the
last one fewer), so the loop is compiled for at most two shapes.
"""

import itertools

import numpy as np
import tensorflow as tf

from kmtl.data import streaming

CHUNK_STEPS = 512  # batches per chunk when the run does not set steps_per_call
WINDOW_GROUPS = 4  # row groups shuffled together


class EpochStream:
  """Chunks of training batches of a `streaming.StreamedSplit`."""

  def __init__(self, split, names, batch_size, seed, balanced=False, chunk_steps=None,
               window=WINDOW_GROUPS):
    from pyarrow import parquet  # pylint: disable=g-import-not-at-top
    self.source = parquet.ParquetFile(split.path)
    self.names, self.seed, self.balanced, self.window = tuple(names), seed, balanced, window
    self.batch_size = batch_size
    self.chunk_steps = chunk_steps or CHUNK_STEPS
    self.num_rows = split.num_rows
    self.steps = self.num_rows // batch_size
    metadata = self.source.metadata
    sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    self.group_starts = np.concatenate([[0], np.cumsum(sizes)])
    masks = np.stack([split.masks[n] for n in names], axis=1)
    self.draw_rates = balanced_rates(masks) if balanced else None
    self.num_features, self.num_tasks = split.num_features, len(names)

  def _group(self, group):
    """(features, labels, masks) of row group `group`."""
    table = self.source.read_row_group(group)
    return tuple(streaming.column_matrix(table, c) for c in ("features", "labels", "masks"))

  def _windows(self, epoch):
    """Shuffled blocks of rows, (features, labels, masks), pass after pass of the file."""
    for rerun in itertools.count():
      rng = np.random.default_rng([self.seed, epoch, rerun])
      groups = rng.permutation(len(self.group_starts) - 1)
      for first in range(0, len(groups), self.window):
        chosen = groups[first:first + self.window]
        block = [np.concatenate(parts) for parts in zip(*(self._group(g) for g in chosen))]
        if self.balanced:
          rows = np.concatenate([np.arange(self.group_starts[g], self.group_starts[g + 1])
                                 for g in chosen])
          picks = np.repeat(np.arange(len(rows)), rng.poisson(self.draw_rates[rows]))
        else:
          picks = np.arange(len(block[0]))
        order = rng.permutation(picks)
        yield tuple(part[order] for part in block)
      if not self.balanced:
        return

  def _chunks(self, epoch):
    """The epoch's rows as chunks of whole batches, `chunk_steps` batches each."""
    chunk_rows, wanted = self.chunk_steps * self.batch_size, self.steps * self.batch_size
    pending, held, sent = [], 0, 0
    for block in self._windows(int(epoch)):
      pending.append(block)
      held += len(block[0])
      while held >= min(chunk_rows, wanted - sent) and sent < wanted:
        size = min(chunk_rows, wanted - sent)
        joined = [np.concatenate(parts) for parts in zip(*pending)]
        yield tuple(part[:size] for part in joined)
        pending, held, sent = [tuple(part[size:] for part in joined)], held - size, sent + size
      if sent >= wanted:
        return

  def dataset(self, epoch):
    """A tf.data pipeline of the epoch's chunks (features, labels, masks), read ahead."""
    spec = lambda width: tf.TensorSpec([None, width], tf.float32)
    return tf.data.Dataset.from_generator(
        lambda: self._chunks(epoch),
        output_signature=(spec(self.num_features), spec(self.num_tasks),
                          spec(self.num_tasks))).prefetch(2)

  def calls(self, epoch):
    """(order, training tensors, first step, last step) of each chunk, as the compiled loop
    takes them; the order is the chunk's own rows in sequence."""
    for features, labels, masks in self.dataset(epoch):
      steps = features.shape[0] // self.batch_size
      yield (tf.range(steps * self.batch_size), (features, labels, masks, tf.ones_like(masks)),
             0, steps)


def balanced_rates(masks):
  """[N] expected draws of each row in an epoch of N task-balanced draws, from `masks` [N, T]."""
  counts = masks.sum(axis=0)
  labelled = counts > 0
  per_row = masks[:, labelled] / counts[labelled]
  return len(masks) * per_row.sum(axis=1) / labelled.sum()
