"""The baseline users always ask for: per task, a scikit-learn histogram gradient-boosting
model on the same split and features as the neural models, seeded; with default settings, or
with `params` a tuned study chose on the validation rows (kmtl/tuning.py), never on test rows."""

import numpy as np
from sklearn import ensemble

from kmtl import metrics as metrics_lib
from kmtl.data import schema


def _model(task, seed, params):
  kind = (ensemble.HistGradientBoostingClassifier if task.kind in schema.CLASSIFICATION else
          ensemble.HistGradientBoostingRegressor)
  return kind(random_state=seed, **dict(params or {}))


def validation_losses(prepared, tasks, seed=0, params=None):
  """{task: validation loss} of one boosting model per task of `tasks` that has validation
  rows, in the networks' units (the squared error of the transformed, standardised target; the
  cross-entropy of a classification): what a tuned study scores every configuration by."""
  losses = {}
  train, val = prepared.train, prepared.val
  for task in tasks:
    rows, val_rows = train.masks[task.name] > 0, val.masks[task.name] > 0
    if not val_rows.any():
      continue
    model = _model(task, seed, params)
    y = val.labels[task.name][val_rows]
    if task.kind in schema.CLASSIFICATION:
      model.fit(train.features[rows], train.labels[task.name][rows].astype(int))
      probabilities = np.zeros((int(val_rows.sum()), max(task.num_outputs, 2)))
      probabilities[:, model.classes_] = model.predict_proba(val.features[val_rows])
      picked = probabilities[np.arange(len(y)), y.astype(int)]
      losses[task.name] = float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))
    else:
      model.fit(train.features[rows], train.labels[task.name][rows])
      losses[task.name] = float(np.mean((model.predict(val.features[val_rows]) - y) ** 2))
  return losses


def gradient_boosting(prepared, tasks, seed=0, split="test", params=None):
  """{task: metrics in original units on `split`} of one boosting model per task (with
  `params`, else scikit-learn's defaults), trained on the task's labelled training rows
  (regression on the transformed, standardised target)."""
  out = {}
  train, evaluated = prepared.train, prepared.split(split)
  for task in tasks:
    rows = train.masks[task.name] > 0
    target_rows = evaluated.masks[task.name] > 0
    scaler = prepared.target_scalers[task.name]
    y_true = scaler.inverse_transform(evaluated.labels[task.name][target_rows])
    if not target_rows.any():  # an auxiliary task, never tested
      out[task.name] = metrics_lib.task_metrics(task, y_true, y_true)
      continue
    if task.kind in schema.CLASSIFICATION:
      model = _model(task, seed, params)
      model.fit(train.features[rows], train.labels[task.name][rows].astype(int))
      probabilities = model.predict_proba(evaluated.features[target_rows])
      if task.kind == schema.BINARY:
        y_pred = probabilities[:, 1]
      else:  # columns for the classes seen in training only
        y_pred = np.zeros((len(probabilities), task.num_outputs))
        y_pred[:, model.classes_] = probabilities
    else:
      model = _model(task, seed, params)
      model.fit(train.features[rows], train.labels[task.name][rows])
      y_pred = scaler.inverse_transform(model.predict(evaluated.features[target_rows]))
    out[task.name] = metrics_lib.task_metrics(task, y_true, np.asarray(y_pred))
  return out
