"""The record of one training epoch: losses, task weights, validation metrics, the learning
rate and which units stopped, with the training-probe metrics and what an architecture
learned about sharing; history.jsonl, TensorBoard and the progress line read it."""

import numpy as np


def build(trainer, epoch, seconds, per_task, val_metrics, stopped):
  """`trainer`'s record of one epoch: `per_task` holds the [T] train, validation and weighted
  losses and the method's mean task weights."""
  names = [t.name for t in trainer.tasks]
  as_dict = lambda values: dict(zip(names, np.asarray(values).tolist()))
  train_losses, val_losses, weighted_losses, weights = per_task
  record = {"epoch": epoch, "seconds": seconds, "train_loss": as_dict(train_losses),
            "val_loss": as_dict(val_losses), "weighted_loss": as_dict(weighted_losses),
            "task_weights": as_dict(weights), "val": val_metrics,
            "learning_rate": float(trainer.optimizer.learning_rate.numpy()), "stopped": stopped}
  if trainer.config.summaries:
    record["train"] = trainer.evaluator.metrics_of(
        trainer.train_probe, trainer.evaluator.predict(trainer.train_probe.features))
  if trainer.net.task_graph is not None:
    record["task_graph"] = np.asarray(trainer.net.task_graph.adjacency()).tolist()
  elif trainer.net.mixing is not None:
    record["mixing"] = trainer.net.mixing(trainer.mixing_features())
  return record
