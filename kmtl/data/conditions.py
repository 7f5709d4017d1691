"""Test conditions as model inputs beside the composition: numeric (test temperature) or
categorical (tension or compression, processing route).

A condition is written `name[:kind[:fill]]` in `--conditions`, e.g.
`test_temperature_c:numeric:25,test_type:categorical`. A numeric condition's empty cells are
an error unless it names a fill value (an unreported test temperature read as room
temperature, say). A categorical condition's empty cell is a category of its own, `(none)`:
hardness rows have no tension/compression test. Categories are one-hot encoded over the
vocabulary of the training rows; a category that no training row has encodes as all zeros in
evaluation, and is an error in prediction, since the model never learned it.
"""

import dataclasses
import math

import numpy as np
import pandas as pd

from kmtl.data import tables

NUMERIC, CATEGORICAL = "numeric", "categorical"
KINDS = (NUMERIC, CATEGORICAL)
NONE_CATEGORY = "(none)"
# Physical lower limits by unit suffix: no temperature below absolute zero.
LOWER_LIMITS = {"_c": -273.15, "_k": 0.0}


@dataclasses.dataclass(frozen=True)
class ConditionSpec:
  """One condition column: its name, kind and (numeric only) the value of an empty cell."""
  name: str
  kind: str = NUMERIC
  fill: float = None

  def __post_init__(self):
    if not self.name:
      raise ValueError("a condition needs a column name")
    if self.kind not in KINDS:
      raise ValueError(f"Invalid kind {self.kind!r} for condition {self.name!r}. Expected one "
                       f"of {list(KINDS)}.")
    if self.fill is not None and (self.kind != NUMERIC or not math.isfinite(self.fill)):
      raise ValueError(f"condition {self.name!r}: a fill value is a finite number, for numeric "
                       "conditions only")


def parse(text):
  """`--conditions` text -> a tuple of `ConditionSpec`s (empty for no text)."""
  specs = []
  for item in (text or "").split(","):
    if not item.strip():
      continue
    parts = [p.strip() for p in item.split(":")]
    if len(parts) > 3:
      raise ValueError(f"--conditions: expected name[:kind[:fill]]. Received: {item!r}")
    try:
      fill = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
      raise ValueError(f"--conditions: fill value {parts[2]!r} of {parts[0]!r} is not a "
                       "number") from None
    specs.append(ConditionSpec(parts[0], parts[1] if len(parts) > 1 else NUMERIC, fill))
  names = [s.name for s in specs]
  if len(set(names)) != len(names):
    raise ValueError(f"--conditions: a column is named twice in {names}")
  return tuple(specs)


def _numeric(frame, spec, source):
  values = pd.to_numeric(frame[spec.name], errors="coerce").to_numpy(np.float64)
  text = frame[spec.name]
  unparsed = np.isnan(values) & text.notna().to_numpy()
  if unparsed.any():
    row = int(np.flatnonzero(unparsed)[0])
    raise tables.DataError(f"{source}: row {row + 1}, column {spec.name!r}: not a number: "
                           f"{text.iloc[row]!r}")
  if spec.fill is not None:
    values = np.where(np.isnan(values), spec.fill, values)
  bad = ~np.isfinite(values)
  if bad.any():
    row = int(np.flatnonzero(bad)[0])
    raise tables.DataError(f"{source}: row {row + 1}, column {spec.name!r}: missing or "
                           f"non-finite condition {float(values[row])!r} (give it a fill "
                           f"value: --conditions={spec.name}:numeric:VALUE)")
  for suffix, limit in LOWER_LIMITS.items():
    if spec.name.endswith(suffix) and (values < limit).any():
      row = int(np.flatnonzero(values < limit)[0])
      raise tables.DataError(f"{source}: row {row + 1}, column {spec.name!r}: {values[row]:g} "
                             f"is below absolute zero ({limit:g})")
  return values


def values(frame, specs, source):
  """{name: [N] values} of the condition columns of `frame`: float64 for numeric ones,
  strings for categorical ones. A DataError names the file, row and column."""
  missing = [s.name for s in specs if s.name not in frame.columns]
  if missing:
    raise tables.missing_column_error(source, missing, frame.columns, "condition")
  out = {}
  for spec in specs:
    if spec.kind == NUMERIC:
      out[spec.name] = _numeric(frame, spec, source)
    else:
      column = frame[spec.name]
      out[spec.name] = np.where(column.isna(), NONE_CATEGORY,
                                tables.as_text(column)).astype(object)
  return out


def encoders(specs, condition_values, train_rows):
  """Per condition what encoding needs, as plain data: the kind, fill and, for categorical
  ones, the vocabulary of the training rows (sorted)."""
  out = []
  for spec in specs:
    entry = {"name": spec.name, "kind": spec.kind, "fill": spec.fill}
    if spec.kind == CATEGORICAL:
      entry["vocabulary"] = sorted(set(condition_values[spec.name][train_rows]))
    out.append(entry)
  return out


def encode(encoder_list, condition_values, num_rows):
  """([N, C] float64 columns, their names): numeric conditions as they are, categorical ones
  one-hot over their vocabulary (all zeros for a category outside it)."""
  columns, names = [np.zeros((num_rows, 0))], []
  for entry in encoder_list:
    column = condition_values[entry["name"]]
    if entry["kind"] == NUMERIC:
      columns.append(np.asarray(column, np.float64)[:, None])
      names.append(entry["name"])
    else:
      vocabulary = entry["vocabulary"]
      columns.append((np.asarray(column)[:, None] == np.asarray(vocabulary)[None, :])
                     .astype(np.float64))
      names += [f"{entry['name']}={category}" for category in vocabulary]
  return np.concatenate(columns, axis=1), names


def check_known(encoder_list, condition_values, source):
  """Prediction: a category the model never saw in training is an error naming its row."""
  for entry in encoder_list:
    if entry["kind"] != CATEGORICAL:
      continue
    column = np.asarray(condition_values[entry["name"]])
    unknown = ~np.isin(column, entry["vocabulary"])
    if unknown.any():
      row = int(np.flatnonzero(unknown)[0])
      raise tables.DataError(
          f"{source}: row {row + 1}, column {entry['name']!r}: category {column[row]!r} was "
          f"not in the model's training data (known: {entry['vocabulary']})")
