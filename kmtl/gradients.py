"""Gradient dynamics between tasks: norms, pairwise cosines and angles, conflict.

Accumulated inside the training step's graph (as loop-carried tensors) and summarised per
epoch. A pair counts only at steps where both tasks have labels in the batch.
"""

import math

import numpy as np
import tensorflow as tf


def zeros_for_none(grads, variables):
  """Gradients with None (a variable the loss does not reach) replaced by zeros."""
  return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]


def flatten(grads, variables):
  """Gradients for `variables` as one vector [P], zeros where a gradient is None."""
  return tf.concat([tf.reshape(g, [-1]) for g in zeros_for_none(grads, variables)], axis=0)


def columns_of(variables, chosen):
  """(start, stop) columns of a flattened gradient of `variables` holding the contiguous
  `chosen` ones (the last shared layer's kernel and bias, where gradient-norm methods take
  their norms); None when none is chosen."""
  chosen_ids = {id(v) for v in chosen}
  if not chosen_ids:
    return None
  starts = np.concatenate([[0], np.cumsum([int(np.prod(v.shape)) for v in variables])])
  picked = [i for i, v in enumerate(variables) if id(v) in chosen_ids]
  return int(starts[picked[0]]), int(starts[picked[-1] + 1])


def task_gradients(tape, loss_list, loss_stack, variables, mode="loop", stacked=None):
  """Per-task gradients of T scalar losses, from a persistent tape: the one place they are
  computed, for the single-device and the distributed step alike.

  `loop` takes one backward pass per task (each runs back through its own task's head only);
  `jacobian` batches them with `tape.jacobian` on `loss_stack` (the [T] stack of `loss_list`,
  made under the tape). Returns (the [T, P] stack of the first `stacked` variables (all by
  default), flattened; the per-task lists of gradients of every variable, None where a task
  does not reach one, or None in `jacobian` mode).
  """
  stacked = len(variables) if stacked is None else stacked
  if mode == "jacobian":
    num_tasks = len(loss_list)
    jacobian = tape.jacobian(loss_stack, variables[:stacked], experimental_use_pfor=True)
    jacobian = zeros_for_none(jacobian, [tf.zeros([num_tasks, *v.shape])
                                         for v in variables[:stacked]])
    return tf.concat([tf.reshape(j, [num_tasks, -1]) for j in jacobian], axis=1), None
  per_task = [tape.gradient(loss, variables) for loss in loss_list]
  return tf.stack([flatten(g[:stacked], variables[:stacked]) for g in per_task]), per_task


def cosines(stack):
  """[T, P] -> [T, T] cosine similarities; 0 where a gradient is zero."""
  norms = tf.norm(stack, axis=1)
  return tf.math.divide_no_nan(tf.matmul(stack, stack, transpose_b=True),
                               norms[:, None] * norms[None, :])


def angles_degrees(cosine):
  """Cosines -> angles in degrees (0 aligned, 90 orthogonal, 180 opposite)."""
  return tf.acos(tf.clip_by_value(cosine, -1.0, 1.0)) * (180.0 / math.pi)


def zeros(num_tasks):
  """An empty accumulator."""
  t = num_tasks
  return {"norm_sum": tf.zeros([t]), "norm_count": tf.zeros([t]),
          "cos_sum": tf.zeros([t, t]), "angle_sum": tf.zeros([t, t]),
          "conflict_sum": tf.zeros([t, t]), "pair_count": tf.zeros([t, t]),
          "update_norm_sum": tf.zeros([]), "update_count": tf.zeros([])}


def accumulate(acc, stack, present, use):
  """Adds one step's [T, P] stack; `present` [T] marks tasks in the batch, `use` (0 or 1)
  whether this step is sampled."""
  cosine = cosines(stack)
  pair = present[:, None] * present[None, :] * use
  return {
      **acc,
      "norm_sum": acc["norm_sum"] + tf.norm(stack, axis=1) * present * use,
      "norm_count": acc["norm_count"] + present * use,
      "cos_sum": acc["cos_sum"] + cosine * pair,
      "angle_sum": acc["angle_sum"] + angles_degrees(cosine) * pair,
      "conflict_sum": acc["conflict_sum"] + tf.cast(cosine < 0.0, tf.float32) * pair,
      "pair_count": acc["pair_count"] + pair,
  }


def add_update_norm(acc, shared_grads):
  """Adds the norm of one step's combined update of the shared parameters."""
  norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in shared_grads])) \
      if shared_grads else tf.constant(0.0)
  return {**acc, "update_norm_sum": acc["update_norm_sum"] + norm,
          "update_count": acc["update_count"] + 1.0}


def summarize(acc, task_names):
  """Epoch means as plain numbers: {"norm": {task}, "cosine"/"angle_deg"/"conflict_fraction":
  {"a:b"}, "update_norm"}; pairs never seen together are left out."""
  acc = {k: np.asarray(v) for k, v in acc.items()}
  out = {"norm": {}, "cosine": {}, "angle_deg": {}, "conflict_fraction": {}}
  for i, a in enumerate(task_names):
    if acc["norm_count"][i] > 0:
      out["norm"][a] = float(acc["norm_sum"][i] / acc["norm_count"][i])
    for j in range(i + 1, len(task_names)):
      n = acc["pair_count"][i, j]
      if n > 0:
        key = f"{a}:{task_names[j]}"
        out["cosine"][key] = float(acc["cos_sum"][i, j] / n)
        out["angle_deg"][key] = float(acc["angle_sum"][i, j] / n)
        out["conflict_fraction"][key] = float(acc["conflict_sum"][i, j] / n)
  if acc["update_count"] > 0:
    out["update_norm"] = float(acc["update_norm_sum"] / acc["update_count"])
  return out


def epoch_means(history):
  """{"cosine"/"conflict_fraction": {"a:b": mean over the epochs of `history` (trainer
  records with "grad") that saw the pair}}: what a run's gradients looked like over training."""
  out = {}
  for statistic in ("cosine", "conflict_fraction"):
    values = {}
    for record in history:
      for pair, value in record.get("grad", {}).get(statistic, {}).items():
        values.setdefault(pair, []).append(value)
    out[statistic] = {pair: float(np.mean(v)) for pair, v in values.items()}
  return out
