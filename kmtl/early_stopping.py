"""Early stopping per stopping unit (the whole model, or one network per task).

A unit's score each epoch is the mean, over its tasks with validation labels, of
- `mean_val_loss`: the per-task validation losses (model units: standardised targets, so
  regression and binary losses are of comparable size), the default; or
- `relative_val_loss`: each task's validation loss divided by its value after the first epoch,
  so that every task counts by how far it improved, whatever the size of its loss.
The unit stops after `patience` epochs without an improvement larger than `min_delta`; its
variables at its best epoch are kept and restored at the end.
"""

import numpy as np
import tensorflow as tf

CRITERIA = ("mean_val_loss", "relative_val_loss")


class EarlyStopping(tf.Module):
  """Best-so-far tracking per stopping unit: score, epochs without improvement, stopped flag
  and a copy of the unit's variables at its best epoch (all checkpointed)."""

  def __init__(self, units, patience, min_delta, criterion="mean_val_loss", num_tasks=None):
    """`units`: [(name, variables, task indices)]."""
    super().__init__(name="early_stopping")
    if criterion not in CRITERIA:
      raise ValueError(f"Invalid stopping criterion {criterion!r}. Expected one of "
                       f"{list(CRITERIA)}.")
    self.names = [name for name, _, _ in units]
    self.unit_vars = [variables for _, variables, _ in units]
    self.unit_tasks = [tasks for _, _, tasks in units]
    self.patience, self.min_delta, self.criterion = patience, min_delta, criterion
    n = len(units)
    num_tasks = num_tasks or 1 + max(t for tasks in self.unit_tasks for t in tasks)
    self.best_score = tf.Variable(tf.fill([n], np.inf), trainable=False)
    self.best_epoch = tf.Variable(tf.zeros([n], tf.int64), trainable=False)
    self.bad_epochs = tf.Variable(tf.zeros([n], tf.int64), trainable=False)
    self.stopped = tf.Variable(tf.zeros([n], tf.bool), trainable=False)
    self.first_losses = tf.Variable(tf.zeros([num_tasks]), trainable=False)
    self.best_values = [[tf.Variable(v, trainable=False) for v in variables]
                        for variables in self.unit_vars]

  def scores(self, val_losses, has_val):
    """[units] scores from one epoch's validation losses [T] (`has_val` [T] bool: tasks with
    validation labels; a unit with none scores 0 and so never improves after its first)."""
    val_losses = np.asarray(val_losses, np.float64)
    if self.criterion == "relative_val_loss":
      first = self.first_losses.numpy().astype(np.float64)
      if not first.any():
        first = val_losses.copy()
        self.first_losses.assign(first.astype(np.float32))
      val_losses = np.divide(val_losses, first, out=np.ones_like(val_losses), where=first > 0)
    out = []
    for tasks in self.unit_tasks:
      chosen = [t for t in tasks if has_val[t]]
      out.append(float(np.mean(val_losses[chosen])) if chosen else 0.0)
    return out

  def update(self, scores, epoch):
    """Records one epoch's validation scores [units]; returns the units that stopped now."""
    best, bad = self.best_score.numpy(), self.bad_epochs.numpy()
    stopped, best_epoch = self.stopped.numpy(), self.best_epoch.numpy()
    newly_stopped = []
    for u, score in enumerate(scores):
      if stopped[u]:
        continue
      if score < best[u] - self.min_delta:
        best[u], bad[u], best_epoch[u] = score, 0, epoch
        for copy, v in zip(self.best_values[u], self.unit_vars[u]):
          copy.assign(v)
      else:
        bad[u] += 1
        if bad[u] >= self.patience:
          stopped[u] = True
          newly_stopped.append(u)
    self.best_score.assign(best)
    self.bad_epochs.assign(bad)
    self.stopped.assign(stopped)
    self.best_epoch.assign(best_epoch)
    return newly_stopped

  def restore_best(self):
    for copies, variables in zip(self.best_values, self.unit_vars):
      for copy, v in zip(copies, variables):
        v.assign(copy)
