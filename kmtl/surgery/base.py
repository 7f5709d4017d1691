"""What a gradient surgery or weighting method is.

A method combines the per-task gradients of the shared parameters, stacked as `task_grads`
[T, P], and the task losses [T] into one shared gradient [P] and the task weights [T] it applied
(task-specific parameters take their task's gradient times that weight). It runs inside the
training step's `tf.function`, uses TF ops only, and treats a task with no label in the batch
(loss 0, gradient row 0) without dividing by zero. Stateful methods hold `tf.Variable`s created in
`build`, saved with the checkpoint and cleared by `reset`.
"""

import keras
import tensorflow as tf


class Method(tf.Module):
  """Base class. Subclasses set `name` and implement `combine` (or `weights`, below)."""

  name = None
  # False: the method only reweights losses, so the loop may skip the [T, P] stack and
  # differentiate sum_t w_t L_t directly (one backward pass instead of T).
  needs_task_grads = True

  def __init__(self):
    super().__init__(name=self.name)
    self.num_tasks = None
    self.norm_columns = None

  def build(self, num_tasks, norm_columns=None, seed=0):
    """Creates the method's state for `num_tasks` tasks.

    Args:
      num_tasks: T.
      norm_columns: (start, stop) columns of the stack holding the last shared layer, where
        gradient-norm methods take their norms; None means every column.
      seed: seed of any randomness the method uses.
    """
    del seed
    self.num_tasks = num_tasks
    self.norm_columns = norm_columns

  def reset(self):
    """Clears learned state, for a new experiment."""

  def combine(self, task_grads, task_losses):
    """[T, P] gradients and [T] losses -> (shared gradient [P], task weights [T])."""
    raise NotImplementedError

  def norm_block(self, task_grads):
    """The columns of the stack where norms are taken (the last shared layer)."""
    if self.norm_columns is None:
      return task_grads
    start, stop = self.norm_columns
    return task_grads[:, start:stop]

  def __repr__(self):
    return f"{type(self).__name__}()"


class LossWeighting(Method):
  """A method that only weights the losses: shared gradient = sum_t w_t g_t."""

  needs_task_grads = False

  def weights(self, task_losses):
    """[T] losses -> [T] weights (and any state update the method makes per step)."""
    raise NotImplementedError

  def combine(self, task_grads, task_losses):
    w = self.weights(task_losses)
    return tf.linalg.matvec(task_grads, w, transpose_a=True), w


def present(task_losses):
  """[T] float mask: 1 where the task had a labelled row in the batch (its loss is not 0)."""
  return tf.cast(tf.not_equal(task_losses, 0.0), task_losses.dtype)


def own_optimizer(variable, learning_rate):
  """A built Adam for a method's own learnable state (GradNorm's weights, UW's variances)."""
  optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
  optimizer.build([variable])
  return optimizer


def clear_optimizer(optimizer):
  """Zeroes an optimizer's slots and step count, as at the start of an experiment."""
  for v in optimizer.variables:
    v.assign(tf.zeros_like(v))
