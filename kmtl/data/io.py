"""Load alloy tables into the data contract: `AlloyData` for training, `FeatureTable` for
prediction, with row filters, duplicates and averaged repeats.

A table holds either every feature column (`schema.feature_names(elements)`) or a composition
column to featurize, plus any of the task target columns; an empty cell is a missing label.
Reading files is kmtl/data/tables.py's, checking columns and values kmtl/data/validation.py's.
"""

import dataclasses
import hashlib
import json
import os
import re

from absl import logging
import numpy as np
import pandas as pd

from kmtl.data import conditions as conditions_lib
from kmtl.data import folds
from kmtl.data import repeats
from kmtl.data import schema
from kmtl.data import tables
from kmtl.data import validation

DUPLICATE_POLICIES = ("keep", "drop")
_FOLD = "__kmtl_fold__"  # a fold file's column while the table is filtered
DataError = tables.DataError  # what `load` and `load_features` raise


@dataclasses.dataclass(frozen=True)
class AlloyData:
  """Validated alloys: features [N, F], labels per task (NaN = no label), source row numbers."""
  features: np.ndarray
  feature_names: tuple
  labels: dict
  tasks: tuple
  elements: tuple
  row_numbers: np.ndarray
  compositions: tuple = None
  conditions: tuple = ()  # ((ConditionSpec, [N] values), ...): test conditions, kept apart
  folds: np.ndarray = None  # [N] each row's test fold from a fold file (kmtl/data/folds.py)

  @property
  def num_rows(self):
    return self.features.shape[0]

  def fingerprint(self):
    """sha256 of the features, feature names, tasks and labels: the same data gives the same
    digest, whatever file it was read from."""
    digest = hashlib.sha256()
    digest.update(json.dumps([list(self.feature_names), [t.name for t in self.tasks]]).encode())
    digest.update(np.ascontiguousarray(self.features, np.float64).tobytes())
    for task in self.tasks:
      if task.classes:
        digest.update(json.dumps(list(task.classes)).encode())
      digest.update(np.ascontiguousarray(self.labels[task.name], np.float64).tobytes())
    for spec, column in self.conditions:
      digest.update(json.dumps([spec.name, spec.kind, spec.fill] + [
          str(v) for v in column]).encode())
    if self.folds is not None:
      digest.update(np.ascontiguousarray(self.folds, np.int64).tobytes())
    return digest.hexdigest()

  def condition_values(self):
    """{condition name: [N] values}."""
    return {spec.name: column for spec, column in self.conditions}

  def masks(self):
    """{task: [N] bool}, True where the row has a label for the task."""
    return {name: ~np.isnan(values) for name, values in self.labels.items()}

  def groups(self):
    """[N] canonical-composition group ids, numbered in order of first appearance: rows with
    the same elemental fractions (to 6 decimals; the same features when there are no
    fractions) share a group."""
    num_fractions = len(self.elements)
    keys = self.features[:, :num_fractions] if num_fractions else self.features
    _, first, inverse = np.unique(np.round(keys.astype(np.float64), 6), axis=0,
                                  return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.ravel()]


def apply_filter(frame, expression, source):
  """Rows of `frame` for which the pandas query `expression` holds (e.g.
  "test_temperature_c.isna() or test_temperature_c == 25"); a bad expression is a DataError."""
  try:
    kept = frame.query(expression, engine="python")
  except Exception as e:  # pandas raises many types for a bad query; all are user errors here
    raise DataError(f"{source}: --row_filter {expression!r} cannot be applied: "
                    f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
  if kept.empty:
    raise DataError(f"{source}: --row_filter {expression!r} keeps no row")
  logging.info("%s: --row_filter kept %d of %d rows", source, len(kept), len(frame))
  return kept.reset_index(drop=True)


def load(source, tasks=schema.DEFAULT_TASKS, elements=schema.DEFAULT_ELEMENTS,
         duplicates="keep", name=None, feature_set="composition", row_filter=None,
         convention="alloy", condition_specs=(), folds_path=None):
  """Validates a table (a path or a DataFrame) into `AlloyData`.

  `row_filter` (a pandas query) keeps matching rows first; row numbers in later errors count
  the kept rows. `convention` is how compositions' bracket groups read
  (`featurize.parse_composition`); `condition_specs` name the test-condition columns
  (kmtl/data/conditions.py); `folds_path` a fold file of the table's rows (kmtl/data/folds.py),
  read before `row_filter`. Rows with no label for any task are dropped with a warning;
  duplicate rows (the same values in every feature, composition, condition and target
  column) are counted and kept or dropped per `duplicates`.

  Raises:
    DataError: with a one-line message naming the file, row and column.
  """
  if duplicates not in DUPLICATE_POLICIES:
    raise DataError(f"Invalid duplicates policy {duplicates!r}. "
                    f"Expected one of {list(DUPLICATE_POLICIES)}.")
  frame, name = _read(source, name)
  if folds_path:
    frame = frame.assign(**{_FOLD: folds.aligned(folds_path, frame, name)})
  if row_filter:
    frame = apply_filter(frame, row_filter, name)
  fold_of_row = frame.pop(_FOLD).to_numpy() if folds_path else None
  missing = [t.name for t in tasks if t.name not in frame.columns]
  if missing:
    raise tables.missing_column_error(name, missing, frame.columns, "task target")
  features, elements, compositions, feature_names = validation.feature_matrix(
      frame, feature_set, elements, name, convention)
  labels, tasks = _task_labels(frame, tasks, name)
  condition_values = conditions_lib.values(frame, condition_specs, name)
  row_numbers = np.arange(1, len(frame) + 1)

  keep = _kept_rows(frame, list(feature_names) + list(condition_values), labels, tasks,
                    duplicates, name)
  return AlloyData(
      features=features[keep].astype(np.float32),
      feature_names=tuple(feature_names),
      labels={t.name: labels[t.name][keep] for t in tasks},
      tasks=tuple(tasks),
      elements=elements,
      row_numbers=row_numbers[keep],
      compositions=None if compositions is None else tuple(np.asarray(compositions)[keep]),
      conditions=tuple((spec, condition_values[spec.name][keep]) for spec in condition_specs),
      folds=None if fold_of_row is None else fold_of_row[keep],
  )


def _read(source, name):
  """(the table as a DataFrame, its name in errors); a DataError for one without rows."""
  if isinstance(source, pd.DataFrame):
    frame, name = source.reset_index(drop=True), name or "<table>"
  else:
    frame, name = tables.read_table(source), name or os.fspath(source)
  if frame.empty:
    raise DataError(f"{name}: no data rows")
  return frame, name


def _task_labels(frame, tasks, name):
  """({task: [N] labels}, the tasks with multiclass tasks' classes resolved)."""
  labels, resolved = {}, []
  for task in tasks:
    if task.kind == schema.MULTICLASS:
      labels[task.name], task = validation.class_labels(frame, task, name)
    else:
      labels[task.name] = validation.labels(frame, task, name)
    resolved.append(task)
  return labels, tuple(resolved)


def _kept_rows(frame, feature_names, labels, tasks, duplicates, name):
  """[N] bool: rows with a label for some task, less repeated rows when dropping duplicates
  (the same values in every feature or composition column and every target column)."""
  keep = np.any([~np.isnan(v) for v in labels.values()], axis=0)
  if not keep.all():
    logging.warning("%s: dropped %d of %d rows with no label for any of the tasks %s", name,
                    int((~keep).sum()), len(keep), [t.name for t in tasks])
  if not keep.any():
    raise DataError(f"{name}: no row has a label for any of the tasks "
                    f"{[t.name for t in tasks]}")
  used = [c for c in frame.columns
          if c in set(feature_names) | set(validation.COMPOSITION_COLUMNS) or c in labels]
  duplicated = frame[used].duplicated().to_numpy() & keep
  if duplicated.any():
    action = "dropped" if duplicates == "drop" else "kept (--duplicates=drop drops them)"
    logging.warning("%s: %d rows duplicate an earlier row; %s", name, int(duplicated.sum()),
                    action)
    if duplicates == "drop":
      keep &= ~duplicated
  return keep


@dataclasses.dataclass(frozen=True)
class FeatureTable:
  """Validated inputs for prediction: features [N, F], test conditions {name: [N]}, source row
  numbers and identifiers."""
  features: np.ndarray
  feature_names: tuple
  row_numbers: np.ndarray
  identifiers: dict
  conditions: dict = dataclasses.field(default_factory=dict)


IDENTIFIER_COLUMNS = ("id", "name") + validation.COMPOSITION_COLUMNS
ROW_COLUMN = "row"  # the predictions' column of source row numbers


def load_features(source, elements, feature_set="composition", convention="alloy",
                  skip_bad_rows=False, condition_encoders=()):
  """Validates a table's inputs only (no targets needed), for a fixed feature set, element
  vocabulary and test conditions (a trained model's: data of another feature set, or a
  category of a condition that the model never saw, is refused).

  With `skip_bad_rows`, rows that fail validation are left out instead; returns
  (FeatureTable of the good rows, [(row number, reason)]).

  Raises:
    DataError: with a one-line message naming the file, row and column (without
      `skip_bad_rows`, or for a problem of the whole file such as a missing column).
  """
  frame, name = tables.read_table(source), os.fspath(source)
  if ROW_COLUMN in frame.columns:
    raise DataError(f"{name}: column {ROW_COLUMN!r} would be overwritten by the predictions' "
                    "source row numbers; rename it (an `id` column is carried through)")
  specs = [conditions_lib.ConditionSpec(e["name"], e["kind"], e["fill"])
           for e in condition_encoders]

  def validate(part):
    features, _, _, names = validation.feature_matrix(part, feature_set, tuple(elements), name,
                                                      convention, for_model=True)
    values = conditions_lib.values(part, specs, name)
    conditions_lib.check_known(condition_encoders, values, name)
    return features, names, values

  try:
    features, names, values = validate(frame)
    bad = []
  except DataError:
    if not skip_bad_rows:
      raise
    features, names, values, frame, bad = _good_rows(frame, validate, name)
  identifiers = {c: frame[c].to_numpy() for c in IDENTIFIER_COLUMNS if c in frame.columns}
  table = FeatureTable(features.astype(np.float32), tuple(names),
                       frame.index.to_numpy() + 1, identifiers, values)
  return (table, bad) if skip_bad_rows else table


def _good_rows(frame, validate, name):
  """Validates row by row: (features, names and conditions of the good rows, those rows,
  [(row, reason)]). A problem that every row has (a missing column) is raised as for the
  whole file."""
  good, bad, names = [], [], None
  for position in range(len(frame)):
    try:
      features, names, values = validate(frame.iloc[[position]].reset_index(drop=True))
      good.append((position, features[0], values))
    except DataError as e:
      reason = re.sub(r"\brow 1\b", f"row {position + 1}", str(e), count=1)
      bad.append((position + 1, reason.removeprefix(f"{name}: ")))
  if not good:
    validate(frame)  # raises the first row's error, or the whole file's
  kept = frame.iloc[[p for p, _, _ in good]]
  values = {key: np.concatenate([v[key] for _, _, v in good]) for key in good[0][2]}
  return np.stack([f for _, f, _ in good]), names, values, kept, bad


def load_from_config(config):
  """`AlloyData` for a `config.DataConfig`: its file, or the embedded synthetic default."""
  if config.path is None:
    from kmtl.data import controlled  # pylint: disable=g-import-not-at-top
    frame = controlled.generate(config.synthetic_seed, knobs=config.synthetic_knobs)
    knobs = "" if config.synthetic_knobs.is_default() else ", knobs set"
    return load(frame, config.tasks, config.elements, config.duplicates,
                name=f"synthetic default (seed {config.synthetic_seed}{knobs})",
                feature_set=config.feature_set, row_filter=config.row_filter,
                convention=config.composition_convention, condition_specs=config.conditions,
                folds_path=config.folds)
  data = load(config.path, config.tasks, config.elements, config.duplicates,
              feature_set=config.feature_set, row_filter=config.row_filter,
              convention=config.composition_convention, condition_specs=config.conditions,
              folds_path=config.folds)
  if config.average_repeats:
    before = data.num_rows
    data = repeats.average_repeats(data)
    logging.info("%s: averaged repeated compositions, %d rows -> %d", config.path, before,
                 data.num_rows)
  return data
