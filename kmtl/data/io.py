"""Read CSV or Parquet alloy tables into the data contract, with one-line validation errors.

A table holds either every feature column (`schema.feature_names(elements)`) or a composition
column to featurize, plus any of the task target columns; an empty cell is a missing label.
Rows are numbered from 1, the header not counted ("row 3" is the third data row).
"""

import dataclasses
import difflib
import os

from absl import logging
import numpy as np
import pandas as pd

from kmtl import atomic
from kmtl.data import featurize as featurize_lib
from kmtl.data import schema

FRACTION_SUM_TOLERANCE = 1e-3  # |sum of elemental fractions - 1| allowed when features are given.
COMPOSITION_COLUMNS = ("composition", "formula")
DUPLICATE_POLICIES = ("keep", "drop")


class DataError(ValueError):
  """Input data that cannot be used; the message names the file, row and column."""


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

  @property
  def num_rows(self):
    return self.features.shape[0]

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


def read_table(path):
  """Reads a CSV or Parquet file into a DataFrame; clear errors for a missing or empty file."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise DataError(f"{path}: no such file")
  ext = os.path.splitext(path)[1].lower()
  try:
    if ext == ".csv":
      frame = pd.read_csv(path, comment=None, skipinitialspace=True)
    elif ext in (".parquet", ".pq"):
      frame = pd.read_parquet(path)
    else:
      raise DataError(f"{path}: unknown file type {ext!r}; expected .csv or .parquet")
  except pd.errors.EmptyDataError:
    raise DataError(f"{path}: the file is empty") from None
  except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as e:
    if isinstance(e, DataError):
      raise
    raise DataError(f"{path}: cannot read as {ext[1:]}: {str(e).splitlines()[0]}") from None
  if frame.empty:
    raise DataError(f"{path}: no data rows")
  return frame


def write_table(frame, path):
  """Writes a DataFrame as CSV or Parquet (by extension), atomically."""
  ext = os.path.splitext(os.fspath(path))[1].lower()
  if ext not in (".csv", ".parquet", ".pq"):
    raise DataError(f"{path}: unknown file type {ext!r}; expected .csv or .parquet")
  with atomic.atomic_path(path) as tmp:
    if ext == ".csv":
      frame.to_csv(tmp, index=False)
    else:
      frame.to_parquet(tmp, index=False)


def _missing_column_error(source, wanted, columns, what):
  hints = []
  for name in wanted:
    close = difflib.get_close_matches(name, [str(c) for c in columns], n=1, cutoff=0.6)
    if close:
      hints.append(f"{close[0]!r} -> {name!r}")
  hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
  shown = ", ".join(repr(c) for c in wanted[:6]) + (" ..." if len(wanted) > 6 else "")
  return DataError(f"{source}: missing {what} column(s) {shown}{hint}")


def _numeric(frame, column, source):
  """Column as float64; the first non-numeric cell is an error naming its row."""
  values = pd.to_numeric(frame[column], errors="coerce")
  bad = values.isna() & frame[column].notna()
  if bad.any():
    row = int(np.argmax(bad.to_numpy()))
    raise DataError(f"{source}: row {row + 1}, column {column!r}: "
                    f"not a number: {frame[column].iloc[row]!r}")
  return values.to_numpy(dtype=np.float64)


def _first(mask):
  return int(np.argmax(mask)) + 1


def _features(frame, elements, source):
  """Returns (features [N, F], element vocabulary, compositions or None)."""
  composition_column = next((c for c in COMPOSITION_COLUMNS if c in frame.columns), None)
  if elements == "auto":
    if composition_column is None:
      raise DataError(f"{source}: --elements=auto needs a 'composition' column")
  else:
    names = schema.feature_names(elements)
    missing = [c for c in names if c not in frame.columns]
    if not missing:
      return _validated_features(frame, names, len(elements), source), tuple(elements), None
    if composition_column is None:
      raise _missing_column_error(source, missing + ["composition"], frame.columns, "feature")

  texts = frame[composition_column]
  parsed = []
  for row, text in enumerate(texts):
    try:
      parsed.append(featurize_lib.parse_composition(text if isinstance(text, str) else ""))
    except featurize_lib.CompositionError as e:
      raise DataError(f"{source}: row {row + 1}, column {composition_column!r}: {e}") from None
  if elements == "auto":
    elements = tuple(sorted({el for comp in parsed for el in comp},
                            key=lambda el: featurize_lib.element_table().at[el, "atomic_number"]))
  try:
    fractions = featurize_lib.fractions_matrix(parsed, tuple(elements))
    values = featurize_lib.descriptors(fractions, tuple(elements))
  except featurize_lib.CompositionError as e:
    raise DataError(f"{source}: {e} (column {composition_column!r})") from None
  return (np.concatenate([fractions, values], axis=1), tuple(elements),
          tuple(str(t) for t in texts))


FEATURE_SETS = ("composition", "descriptors")


def _feature_matrix(frame, feature_set, elements, source):
  """(features [N, F], element vocabulary, compositions or None, feature names) of one of the
  feature sets: "composition" (fractions + descriptors), "descriptors" (the six, read from
  their columns or computed from compositions) or a tuple of numeric column names."""
  if feature_set == "composition":
    features, elements, compositions = _features(frame, elements, source)
    return features, elements, compositions, schema.feature_names(elements)
  if feature_set == "descriptors":
    names = schema.DESCRIPTOR_NAMES
    if all(c in frame.columns for c in names):
      return _validated_features(frame, names, 0, source), (), None, names
    if not any(c in frame.columns for c in COMPOSITION_COLUMNS):
      missing = [c for c in names if c not in frame.columns]
      raise _missing_column_error(source, missing + ["composition"], frame.columns,
                                  "descriptor")
    features, _, compositions = _features(frame, "auto", source)
    return features[:, -len(names):], (), compositions, names
  names = tuple(feature_set)
  missing = [c for c in names if c not in frame.columns]
  if missing:
    raise _missing_column_error(source, missing, frame.columns, "feature")
  return _validated_features(frame, names, 0, source), (), None, names


def feature_set_of(feature_names):
  """(feature set, element vocabulary) that produced `feature_names` (a trained model's)."""
  names = tuple(feature_names)
  n = len(schema.DESCRIPTOR_NAMES)
  if names == schema.DESCRIPTOR_NAMES:
    return "descriptors", ()
  if names[-n:] == schema.DESCRIPTOR_NAMES and names[:-n]:
    return "composition", names[:-n]
  return names, ()


def _validated_features(frame, names, num_fractions, source):
  features = np.stack([_numeric(frame, c, source) for c in names], axis=1)
  bad = ~np.isfinite(features)
  if bad.any():
    row, col = np.argwhere(bad)[0]
    raise DataError(f"{source}: row {row + 1}, column {names[col]!r}: "
                    f"missing or non-finite value {features[row, col]!r}")
  if not num_fractions:
    return features
  fractions = features[:, :num_fractions]
  if (fractions < 0).any():
    row, col = np.argwhere(fractions < 0)[0]
    raise DataError(f"{source}: row {row + 1}, column {names[col]!r}: "
                    f"negative elemental fraction {fractions[row, col]:g}")
  sums = fractions.sum(axis=1)
  off = np.abs(sums - 1.0) > FRACTION_SUM_TOLERANCE
  if off.any():
    row = _first(off)
    raise DataError(f"{source}: row {row}: elemental fractions sum to {sums[row - 1]:.6g}, "
                    f"not 1 (tolerance {FRACTION_SUM_TOLERANCE:g})")
  return features


def _labels(frame, task, source):
  if task.kind == schema.BINARY and frame[task.name].dtype == bool:
    return frame[task.name].to_numpy(dtype=np.float64)
  values = _numeric(frame, task.name, source)
  where = lambda mask: f"{source}: row {_first(mask)}, column {task.name!r}"
  value = lambda mask: values[_first(mask) - 1]
  if np.isinf(values).any():
    raise DataError(f"{where(np.isinf(values))}: infinite label")
  labelled = ~np.isnan(values)
  if task.kind == schema.BINARY:
    bad = labelled & ~np.isin(values, (0.0, 1.0))
    if bad.any():
      raise DataError(f"{where(bad)}: binary label {value(bad):g} is not 0 or 1")
  elif task.nonnegative and (labelled & (values < 0)).any():
    bad = labelled & (values < 0)
    raise DataError(f"{where(bad)}: negative {task.name} {value(bad):g}")
  if task.transform == "log" and (labelled & (values <= 0)).any():
    bad = labelled & (values <= 0)
    raise DataError(f"{where(bad)}: {task.name} {value(bad):g} must be > 0 for its log transform")
  return values


def average_repeats(data):
  """One row per canonical composition: regression labels averaged over the rows that have
  them, binary labels by majority (ties count as 1); features and row number of the first row."""
  groups = data.groups()
  first = np.unique(groups, return_index=True)[1]
  labels = {}
  for task in data.tasks:
    y = pd.Series(data.labels[task.name]).groupby(groups).mean().to_numpy()
    labels[task.name] = np.where(np.isnan(y), np.nan, (y >= 0.5).astype(np.float64)) \
        if task.kind == schema.BINARY else y
  return dataclasses.replace(
      data, features=data.features[first], labels=labels, row_numbers=data.row_numbers[first],
      compositions=None if data.compositions is None else
      tuple(np.asarray(data.compositions)[first]))


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
         duplicates="keep", name=None, feature_set="composition", row_filter=None):
  """Validates a table (a path or a DataFrame) into `AlloyData`.

  `row_filter` (a pandas query) keeps matching rows first; row numbers in later errors count
  the kept rows. Rows with no label for any task are dropped with a warning; duplicate rows (the same values in
  every feature or composition column and every target column) are counted and kept or dropped
  per `duplicates`.

  Raises:
    DataError: with a one-line message naming the file, row and column.
  """
  if duplicates not in DUPLICATE_POLICIES:
    raise DataError(f"Invalid duplicates policy {duplicates!r}. "
                    f"Expected one of {list(DUPLICATE_POLICIES)}.")
  if isinstance(source, pd.DataFrame):
    frame, name = source.reset_index(drop=True), name or "<table>"
  else:
    frame, name = read_table(source), name or os.fspath(source)
  if frame.empty:
    raise DataError(f"{name}: no data rows")
  if row_filter:
    frame = apply_filter(frame, row_filter, name)
  missing = [t.name for t in tasks if t.name not in frame.columns]
  if missing:
    raise _missing_column_error(name, missing, frame.columns, "task target")
  features, elements, compositions, feature_names = _feature_matrix(frame, feature_set,
                                                                   elements, name)
  labels = {t.name: _labels(frame, t, name) for t in tasks}
  row_numbers = np.arange(1, len(frame) + 1)

  keep = np.any([~np.isnan(v) for v in labels.values()], axis=0)
  if not keep.all():
    logging.warning("%s: dropped %d of %d rows with no label for any of the tasks %s", name,
                    int((~keep).sum()), len(keep), [t.name for t in tasks])
  if not keep.any():
    raise DataError(f"{name}: no row has a label for any of the tasks "
                    f"{[t.name for t in tasks]}")
  used = [c for c in frame.columns
            if c in set(feature_names) | set(COMPOSITION_COLUMNS) or c in labels]
  duplicated = frame[used].duplicated().to_numpy() & keep
  if duplicated.any():
    action = "dropped" if duplicates == "drop" else "kept (--duplicates=drop drops them)"
    logging.warning("%s: %d rows duplicate an earlier row; %s", name, int(duplicated.sum()),
                    action)
    if duplicates == "drop":
      keep &= ~duplicated

  return AlloyData(
      features=features[keep].astype(np.float32),
      feature_names=tuple(feature_names),
      labels={t.name: labels[t.name][keep] for t in tasks},
      tasks=tuple(tasks),
      elements=elements,
      row_numbers=row_numbers[keep],
      compositions=None if compositions is None else tuple(np.asarray(compositions)[keep]),
  )


@dataclasses.dataclass(frozen=True)
class FeatureTable:
  """Validated inputs for prediction: features [N, F], source row numbers and identifiers."""
  features: np.ndarray
  feature_names: tuple
  row_numbers: np.ndarray
  identifiers: dict


IDENTIFIER_COLUMNS = ("id", "name") + COMPOSITION_COLUMNS


def load_features(source, elements, feature_set="composition"):
  """Validates a table's features only (no targets needed), for a fixed feature set and
  element vocabulary (a trained model's: data of another feature set is refused).

  Raises:
    DataError: with a one-line message naming the file, row and column.
  """
  frame, name = read_table(source), os.fspath(source)
  features, _, _, names = _feature_matrix(frame, feature_set, tuple(elements), name)
  identifiers = {c: frame[c].to_numpy() for c in IDENTIFIER_COLUMNS if c in frame.columns}
  return FeatureTable(features.astype(np.float32), tuple(names),
                      np.arange(1, len(frame) + 1), identifiers)


def load_from_config(config):
  """`AlloyData` for a `config.DataConfig`: its file, or the embedded synthetic default."""
  if config.path is None:
    from kmtl.data import synthetic  # pylint: disable=g-import-not-at-top
    frame = synthetic.generate(config.synthetic_seed)
    return load(frame, config.tasks, config.elements, config.duplicates,
                name=f"synthetic default (seed {config.synthetic_seed})",
                feature_set=config.feature_set, row_filter=config.row_filter)
  data = load(config.path, config.tasks, config.elements, config.duplicates,
              feature_set=config.feature_set, row_filter=config.row_filter)
  if config.average_repeats:
    before = data.num_rows
    data = average_repeats(data)
    logging.info("%s: averaged repeated compositions, %d rows -> %d", config.path, before,
                 data.num_rows)
  return data
