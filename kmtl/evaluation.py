"""Evaluation of a model in original units: predictions in chunks, per-task losses in model
units, Keras metrics per epoch (over `splits.SplitArrays`) and scikit-learn metrics at the end.

Training-split metrics each epoch come from a fixed probe: for each task up to
`PROBE_ROWS_PER_TASK` of its labelled training rows (all of them for rare tasks), drawn once.
"""

import numpy as np
import tensorflow as tf

from kmtl import losses as losses_lib
from kmtl import metrics as metrics_lib
from kmtl import predictive
from kmtl.data import schema
from kmtl.data import splits

PROBE_ROWS_PER_TASK = 4096


def training_probe(train, names, seed):
  """The training rows whose per-epoch metrics are reported (`SplitArrays`)."""
  rng = np.random.default_rng(seed)
  chosen = set()
  for name in names:
    rows = np.flatnonzero(train.masks[name] > 0)
    if len(rows) > PROBE_ROWS_PER_TASK:
      rows = rng.choice(rows, PROBE_ROWS_PER_TASK, replace=False)
    chosen.update(rows.tolist())
  return train.take(np.array(sorted(chosen), dtype=np.int64))


class Evaluator:
  """Predictions, losses and metrics of one model for its tasks."""

  def __init__(self, model, tasks, target_scalers, num_features, loss_config):
    self.tasks, self.target_scalers, self.loss_config = tuple(tasks), target_scalers, loss_config
    self._predict = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, num_features], tf.float32)], autograph=False)
    self.epoch_metrics = {t.name: metrics_lib.EpochMetrics(t) for t in tasks}

  def predict(self, features, chunk=8192):
    """{task: [n] model-unit predictions} for [n, F] scaled features, in chunks."""
    parts = [self._predict(tf.constant(features[i:i + chunk]))
             for i in range(0, max(len(features), 1), chunk)]
    return {t.name: np.concatenate([np.asarray(p[t.name]) for p in parts]) for t in self.tasks}

  def losses(self, split, predictions):
    """[T] masked per-row losses of a split in model units (no batch-level losses)."""
    by_task = lambda columns: {t.name: columns[:, i] for i, t in enumerate(self.tasks)}
    labels = np.stack([split.labels[t.name] for t in self.tasks], axis=1)
    masks = np.stack([split.masks[t.name] for t in self.tasks], axis=1)
    return losses_lib.task_losses(
        self.tasks, by_task(tf.constant(labels)),
        {k: tf.constant(v) for k, v in predictions.items()}, by_task(tf.constant(masks)),
        by_task(tf.ones([split.num_rows, len(self.tasks)])), self.loss_config).numpy()

  def evaluate(self, split, final=False):
    """(task losses [T] in model units, {task: metrics in original units}) on SplitArrays."""
    predictions = self.predict(split.features)
    return self.losses(split, predictions), self.metrics_of(split, predictions, final)

  def _original_units(self, task, split, predictions):
    scaler = self.target_scalers[task.name]
    y_true = scaler.inverse_transform(split.labels[task.name])
    if task.kind == schema.BINARY:
      return y_true, metrics_lib.sigmoid(predictions[task.name])
    if task.kind == schema.MULTICLASS:
      return y_true, metrics_lib.softmax(predictions[task.name])
    return y_true, scaler.inverse_transform(predictive.point(task, predictions[task.name]))

  def metrics_of(self, split, predictions, final=False):
    """{task: metrics in original units}: Keras metrics per epoch, scikit-learn when `final`."""
    out = {}
    for task in self.tasks:
      mask = split.masks[task.name]
      y_true, y_pred = self._original_units(task, split, predictions)
      if final:
        rows = mask > 0
        out[task.name] = metrics_lib.task_metrics(task, y_true[rows], y_pred[rows])
      else:
        out[task.name] = self.epoch_metrics[task.name](y_true, y_pred, mask)
    return out
