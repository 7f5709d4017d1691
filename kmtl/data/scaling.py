"""Scaling fit on training rows only: the per-task target transform and standardisation, and
the floor on the scale of share columns."""

import numpy as np
# scikit-learn is imported where it is used: bad data is reported without paying for it.

from kmtl.data import schema

# The least scale of a column of shares in [0, 1] (element fractions, one-hot conditions): an
# element a few training alloys hold a trace of would otherwise put an alloy with 20 at.% of
# it thousands of standard deviations out. Common elements (spread ~0.14) are unaffected.
SHARE_SCALE_FLOOR = 0.05


class TargetScaler:
  """Per-task target transform (log or none) then standardisation, fit on training labels."""

  def __init__(self, task):
    self.task = task
    from sklearn import preprocessing  # pylint: disable=g-import-not-at-top
    self._scaler = preprocessing.StandardScaler()

  def _forward(self, y):
    return np.log(y) if self.task.transform == "log" else y

  def fit(self, y):
    if self.task.kind == schema.REGRESSION:
      self._scaler.fit(self._forward(np.asarray(y, np.float64)).reshape(-1, 1))
    return self

  def transform(self, y):
    """Original units -> model units; NaN (no label) stays NaN. Binary labels pass through."""
    y = np.asarray(y, np.float64)
    if self.task.kind != schema.REGRESSION or not y.size:
      return y
    return self._scaler.transform(self._forward(y).reshape(-1, 1)).ravel()

  def inverse_transform(self, z):
    """Model units -> original units."""
    z = np.asarray(z, np.float64)
    if self.task.kind != schema.REGRESSION or not z.size:
      return z
    y = self._scaler.inverse_transform(z.reshape(-1, 1)).ravel()
    return np.exp(y) if self.task.transform == "log" else y

  @property
  def mean(self):
    return float(self._scaler.mean_[0]) if self.task.kind == schema.REGRESSION else 0.0

  @property
  def scale(self):
    return float(self._scaler.scale_[0]) if self.task.kind == schema.REGRESSION else 1.0


def floor_share_scales(scaler, input_names, elements):
  """Raises the fitted `scaler`'s scale of share columns (element fractions, one-hot
  conditions) to `SHARE_SCALE_FLOOR`."""
  shares = [i for i, n in enumerate(input_names) if n in elements or "=" in n]
  scaler.scale_[shares] = np.maximum(scaler.scale_[shares], SHARE_SCALE_FLOOR)


def fit_target_scalers(data, train):
  """{task: TargetScaler} fit on the task's labels in the training rows `train` [N] bool."""
  return {t.name: TargetScaler(t).fit(data.labels[t.name][train & ~np.isnan(
      data.labels[t.name])]) for t in data.tasks}


def model_labels(data, target_scalers, rows):
  """({task: labels}, {task: masks}) of the rows `rows` in model units, float32; a missing
  label is 0 with mask 0."""
  labels, masks = {}, {}
  for task in data.tasks:
    y = target_scalers[task.name].transform(data.labels[task.name][rows])
    masks[task.name] = (~np.isnan(y)).astype(np.float32)
    labels[task.name] = np.nan_to_num(y, nan=0.0).astype(np.float32)
  return labels, masks
