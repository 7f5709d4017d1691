"""The single-task baseline (`--arch=independent`): one network per task, each trained only on
its own task's labelled training rows, as a separate single-task run would be.

Each task's network (the `independent` model's F -> 128 -> 128 -> 64 -> 1 for that task) gets
its own `trainer_lib.Trainer` over a view of the data holding that task's rows only: its own shuffled
batches of `batch_size` rows, an epoch being one pass over them, its own Adam, early stopping
and best-weights restore, all steps in-graph as for multi-task models. The tasks train one
after the other; one checkpoint holds every task's state, so an interrupted run resumes in the
task and epoch where it stopped. The feature scaler is the run's (fitted on all training rows),
so the exported model is the same single graph as any other architecture's.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import models
from kmtl import uncertainty_config
from kmtl import trainer as trainer_lib
from kmtl.data import schema
from kmtl.data import splits
from kmtl.imbalance import parts
from kmtl.surgery import registry


def task_view(net, task):
  """The one-task `MultiTaskNet` of `task` inside a separate-networks net (the same layers, so
  training the view trains the net)."""
  model = keras.Model(net.model.inputs, {task: net.model.output[task]}, name=f"kmtl_{task}")
  representations = keras.Model(net.representations.inputs,
                                {task: net.representations.output[task]})
  return models.MultiTaskNet(model, representations, (), {task: net.task_variables[task]},
                             heads={task: net.heads[task]})


def task_rows(split, task):
  """The rows of a `SplitArrays` labelled for `task`, with only that task's labels."""
  rows = np.flatnonzero(split.masks[task] > 0)
  return splits.SplitArrays(split.features[rows], {task: split.labels[task][rows]},
                            {task: split.masks[task][rows]})


def task_data(prepared, task):
  """`PreparedData` restricted to `task`'s labelled rows in every split."""
  return dataclasses.replace(
      prepared, train=task_rows(prepared.train, task), val=task_rows(prepared.val, task),
      test=task_rows(prepared.test, task),
      target_scalers={task: prepared.target_scalers[task]})


def task_imbalance(imbalance, task):
  """The `ImbalanceConfig` that applies to one task's run (none for a task it skips)."""
  applies = task.kind == schema.REGRESSION and (not imbalance.tasks or
                                                task.name in imbalance.tasks)
  return dataclasses.replace(imbalance, tasks=()) if applies else config_lib.ImbalanceConfig()


class SingleTaskTrainers:
  """One `trainer_lib.Trainer` per task; the same outward interface as a multi-task Trainer."""

  def __init__(self, cfg, net, tasks, prepared, strategy=None):
    self.tasks, self.net, self.model = tuple(tasks), net, net.model
    train_config = dataclasses.replace(cfg.train, task_weights="equal")
    self.trainers = []
    seed = uncertainty_config.member_seed(cfg.seed, cfg.uncertainty.member)
    for task in self.tasks:
      data = task_data(prepared, task.name)
      self.trainers.append(trainer_lib.Trainer(
          train_config, task_view(net, task.name), [task], data, registry.create("none"),
          seed=seed, loss_config=cfg.loss, strategy=strategy,
          **parts.imbalance_parts(task_imbalance(cfg.imbalance, task), [task], data,
                                  cfg.model.head_units[-1], seed)))

  @property
  def epoch(self):
    """The most epochs any task ran."""
    return tf.reduce_max([t.epoch for t in self.trainers])

  def epochs_done(self):
    """{task name: epochs it has run}, the keys of its history records."""
    return {task.name: int(t.epoch.numpy()) for task, t in zip(self.tasks, self.trainers)}

  @property
  def base_weights(self):
    return tf.ones([len(self.tasks)])

  def checkpoint(self):
    return tf.train.Checkpoint(**{f"task_{i}": t.checkpoint()
                                  for i, t in enumerate(self.trainers)})

  def fit(self, save=None, on_epoch_end=None):
    """Trains the tasks one after the other; each record names its task."""
    history = []
    for task, trainer in zip(self.tasks, self.trainers):
      def record_task(record, name=task.name):
        record["task"] = name
        if on_epoch_end is not None:
          on_epoch_end(record)
      history += trainer.fit(save, record_task)
    return history

  def evaluate(self, split, final=False):
    """(task losses [T], {task: metrics}) on a full `SplitArrays`, each task on its rows."""
    losses, metrics = [], {}
    for task, trainer in zip(self.tasks, self.trainers):
      task_losses, task_metrics = trainer.evaluate(task_rows(split, task.name), final)
      losses.append(task_losses[0])
      metrics.update(task_metrics)
    return np.array(losses), metrics

  def best_epochs(self):
    return {name: epoch for t in self.trainers for name, epoch in t.best_epochs().items()}

  def task_report(self):
    return {name: report for t in self.trainers for name, report in t.task_report().items()}
