"""The baseline users always ask for: per task, a scikit-learn histogram gradient-boosting
model on the same split and features as the neural models, with default settings (nothing is
tuned, and never on test rows), seeded."""

import numpy as np
from sklearn import ensemble

from kmtl import metrics as metrics_lib
from kmtl.data import schema


def gradient_boosting(prepared, tasks, seed=0, split="test"):
  """{task: metrics in original units on `split`} of one boosting model per task, trained on
  the task's labelled training rows (regression on the transformed, standardised target)."""
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
      model = ensemble.HistGradientBoostingClassifier(random_state=seed)
      model.fit(train.features[rows], train.labels[task.name][rows].astype(int))
      probabilities = model.predict_proba(evaluated.features[target_rows])
      if task.kind == schema.BINARY:
        y_pred = probabilities[:, 1]
      else:  # columns for the classes seen in training only
        y_pred = np.zeros((len(probabilities), task.num_outputs))
        y_pred[:, model.classes_] = probabilities
    else:
      model = ensemble.HistGradientBoostingRegressor(random_state=seed)
      model.fit(train.features[rows], train.labels[task.name][rows])
      y_pred = scaler.inverse_transform(model.predict(evaluated.features[target_rows]))
    out[task.name] = metrics_lib.task_metrics(task, y_true, np.asarray(y_pred))
  return out
