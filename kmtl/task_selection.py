"""Per-task model selection of a multi-task model: each task's weights from the epoch where its
own validation loss was lowest.

A multi-task model stops early on one score over all its tasks, and keeps the weights of that
score's best epoch; a task that would have gone on improving alone is judged at an epoch chosen
mostly by the others. With `--model_selection=per_task` the trainer also keeps, for each task,
a copy of every weight at that task's best epoch (T copies of the model), and the run's test
metrics of task t come from copy t. The joint selection's metrics are kept beside them.
"""

import contextlib

import numpy as np
import tensorflow as tf


class TaskSelection(tf.Module):
  """Each task's lowest validation loss, its epoch and a copy of `variables` then (all
  checkpointed, so a resumed run continues the same selection)."""

  def __init__(self, variables, num_tasks):
    super().__init__(name="task_selection")
    self.variables_of_model = list(variables)
    self.best_loss = tf.Variable(tf.fill([num_tasks], np.inf), trainable=False)
    self.best_epoch = tf.Variable(tf.zeros([num_tasks], tf.int64), trainable=False)
    self.copies = [[tf.Variable(v, trainable=False) for v in self.variables_of_model]
                   for _ in range(num_tasks)]

  def update(self, val_losses, has_val, epoch):
    """Records one epoch's validation losses [T] (tasks without validation rows never
    improve): a task whose loss fell below its best keeps the current weights."""
    best, best_epoch = self.best_loss.numpy(), self.best_epoch.numpy()
    for t, loss in enumerate(np.asarray(val_losses, np.float64)):
      if has_val[t] and loss < best[t]:
        best[t], best_epoch[t] = loss, epoch
        for copy, v in zip(self.copies[t], self.variables_of_model):
          copy.assign(v)
    self.best_loss.assign(best)
    self.best_epoch.assign(best_epoch)

  @contextlib.contextmanager
  def weights_of(self, task):
    """The model holds task `task`'s selected weights inside, its own again after."""
    current = [tf.identity(v) for v in self.variables_of_model]
    for copy, v in zip(self.copies[task], self.variables_of_model):
      v.assign(copy)
    try:
      yield
    finally:
      for value, v in zip(current, self.variables_of_model):
        v.assign(value)


def selected_metrics(trainer, split, tasks):
  """{task: metrics on `split`} with each task's metrics from its own selected weights."""
  out = {}
  for t, task in enumerate(tasks):
    with trainer.task_selection.weights_of(t):
      _, metrics = trainer.evaluate(split, final=True)
    out[task.name] = metrics[task.name]
  return out
