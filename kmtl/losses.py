"""Masked per-task losses and task weights.

A task's loss is the mean, over the batch rows labelled for it, of its per-row loss times an
optional per-row weight (LDS weights, say, which average 1 over the labelled rows):
  L_t = sum_b m_b w_b l_b / sum_b m_b,  and exactly 0, with zero gradient, when sum_b m_b = 0.
Regression rows use squared error (or Huber), or with a heteroscedastic head [B, 2] (mean mu,
log-variance s) the Gaussian negative log-likelihood without its constant,
(s + (y - mu)^2 e^-s) / 2; binary rows use cross-entropy from logits with an optional
positive-class weight; multiclass rows softmax cross-entropy over their class logits (the label
is the class index, stored as a float).
"""

import numpy as np
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import predictive
from kmtl.data import schema

TASK_WEIGHTINGS = config_lib.TASK_WEIGHTINGS


def masked_sum(per_row, mask, sample_weight=None):
  """(sum(mask * weight * per_row), sum(mask)): the parts of a masked mean, which replicas of
  a distributed step add up before dividing."""
  mask = tf.cast(mask, per_row.dtype)
  weighted = mask * per_row if sample_weight is None else mask * sample_weight * per_row
  # Masked rows may hold anything (a label stored as 0): keep them out of the sum entirely.
  weighted = tf.where(mask > 0, weighted, tf.zeros_like(weighted))
  return tf.reduce_sum(weighted), tf.reduce_sum(mask)


def masked_mean(per_row, mask, sample_weight=None):
  """sum(mask * weight * per_row) / sum(mask); 0 with zero gradient when nothing is labelled."""
  total, count = masked_sum(per_row, mask, sample_weight)
  return tf.math.divide_no_nan(total, count)


def per_row_loss(task, labels, predictions, config=config_lib.LossConfig()):
  """[B] per-row loss of one task (regression values, binary logits [B] or class logits
  [B, C])."""
  if task.kind == schema.MULTICLASS:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.cast(tf.round(labels), tf.int32), predictions)
  labels = tf.cast(labels, predictions.dtype)
  if task.kind == schema.BINARY:
    pos_weight = dict(config.pos_weight).get(task.name, 1.0)
    return tf.nn.weighted_cross_entropy_with_logits(labels, predictions, pos_weight)
  if predictions.shape.rank == 2:  # the heteroscedastic head: mean and log-variance
    log_variance = predictive.bounded_log_variance(predictions[:, 1], tf)
    return 0.5 * (log_variance + tf.square(predictions[:, 0] - labels) * tf.exp(-log_variance))
  error = predictions - labels
  if config.regression == "huber":
    abs_error = tf.abs(error)
    quadratic = tf.minimum(abs_error, config.huber_delta)
    return 0.5 * quadratic**2 + config.huber_delta * (abs_error - quadratic)
  return tf.square(error)


def task_losses(tasks, labels, predictions, masks, sample_weights=None,
                config=config_lib.LossConfig(), batch_losses=None, row_ids=None):
  """[T] masked losses, in the order of `tasks`: `tf.stack` of `task_loss_list`."""
  return tf.stack(task_loss_list(tasks, labels, predictions, masks, sample_weights, config,
                                 batch_losses, row_ids))


def task_loss_list(tasks, labels, predictions, masks, sample_weights=None,
                   config=config_lib.LossConfig(), batch_losses=None, row_ids=None):
  """The T masked losses as separate scalars, in the order of `tasks` (so that the gradient
  of one runs back through its own head only).

  Args:
    tasks: the `schema.TaskSpec`s.
    labels, predictions, masks: {task: [B]}.
    sample_weights: optional {task: [B]} per-row weights.
    config: a `LossConfig`.
    batch_losses: optional {task: fn(labels, predictions, mask, row_ids) -> scalar} replacing
      the per-row loss of a task with a batch-level one (Balanced MSE).
    row_ids: [B] the batch rows' indices in the training split, for `batch_losses`.
  """
  sample_weights, batch_losses = sample_weights or {}, batch_losses or {}
  out = []
  for t in tasks:
    if t.name in batch_losses:
      out.append(batch_losses[t.name](labels[t.name], predictions[t.name], masks[t.name],
                                      row_ids))
    else:
      out.append(masked_mean(per_row_loss(t, labels[t.name], predictions[t.name], config),
                             masks[t.name], sample_weights.get(t.name)))
  return out


def task_loss_sums(tasks, labels, predictions, masks, sample_weights=None,
                   config=config_lib.LossConfig()):
  """(T masked loss sums, T label counts), as lists of scalars: `task_loss_list` before the
  division, per-row losses only. Arguments as in `task_losses`."""
  sample_weights = sample_weights or {}
  parts = [masked_sum(per_row_loss(t, labels[t.name], predictions[t.name], config),
                      masks[t.name], sample_weights.get(t.name)) for t in tasks]
  return [p[0] for p in parts], [p[1] for p in parts]


def task_weights(mode, label_counts):
  """[T] task weights: "equal", "inverse_count" (max count / count), or explicit numbers.

  Inverse-count weights for the reference counts 52,388 / 800 / 840 are 1.0 / 65.5 / 62.4,
  the study's 1.0 / 65.0 / 62.0 to its rounding.
  """
  counts = np.asarray(label_counts, dtype=np.float64)
  if isinstance(mode, str):
    if mode == "equal":
      return np.ones_like(counts)
    if mode == "inverse_count":
      if (counts <= 0).any():
        raise ValueError(f"inverse_count task weights need every task labelled; counts: "
                         f"{counts.astype(int).tolist()}")
      return counts.max() / counts
    raise ValueError(f"Invalid task weighting {mode!r}. Expected one of {list(TASK_WEIGHTINGS)} "
                     "or a comma-separated list of numbers.")
  weights = np.asarray(mode, dtype=np.float64)
  if weights.shape != counts.shape or (weights < 0).any() or not np.isfinite(weights).all():
    raise ValueError(f"Expected {len(counts)} non-negative task weights. Received: "
                     f"{list(mode)}")
  return weights
