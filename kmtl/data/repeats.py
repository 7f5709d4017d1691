"""Repeated measurements of one composition collapsed into one row (`--average_repeats`)."""

import dataclasses

import numpy as np
import pandas as pd

from kmtl.data import schema


def average_repeats(data):
  """One row per canonical composition: regression labels averaged over the rows that have
  them, binary labels by majority (ties count as 1), class labels by their most frequent class
  (ties to the first in class order); features and row number of the first row."""
  groups = data.groups()
  first = np.unique(groups, return_index=True)[1]
  labels = {}
  for task in data.tasks:
    if task.kind == schema.MULTICLASS:
      labels[task.name] = _most_frequent_class(data.labels[task.name], groups)
      continue
    y = pd.Series(data.labels[task.name]).groupby(groups).mean().to_numpy()
    labels[task.name] = np.where(np.isnan(y), np.nan, (y >= 0.5).astype(np.float64)) \
        if task.kind == schema.BINARY else y
  return dataclasses.replace(
      data, features=data.features[first], labels=labels, row_numbers=data.row_numbers[first],
      compositions=None if data.compositions is None else
      tuple(np.asarray(data.compositions)[first]),
      folds=None if data.folds is None else data.folds[first])


def _most_frequent_class(codes, groups):
  """[G] the most frequent class index of each group's labelled rows; NaN for none."""
  num_groups = int(groups.max()) + 1
  labelled = ~np.isnan(codes)
  num_classes = int(np.nanmax(codes)) + 1 if labelled.any() else 1
  counts = np.zeros((num_groups, num_classes))
  np.add.at(counts, (groups[labelled], codes[labelled].astype(int)), 1)
  return np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), np.nan)
