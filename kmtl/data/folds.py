"""Given cross-validation folds (`--folds=FILE`), such as a benchmark's official ones.

A fold file is a CSV or Parquet table with a `fold` column and one row per row of the data
file, in the same order: row i of the data is in the test split of fold `fold[i]` and trains
in every other fold; -1 marks a row that is never tested (an auxiliary row from another set).
Columns the fold file shares with the data file (an id such as `mbid`) must agree row by row,
which catches a fold file of other data.
"""

import numpy as np

from kmtl.data import tables

NEVER_TESTED = -1
COLUMN = "fold"


def read(path):
  """(the fold file as a table, [N] int64 folds); a DataError naming the file, row and column
  for a missing column, a value that is not an integer >= -1, or fewer than 2 folds."""
  frame = tables.read_table(path)
  if COLUMN not in frame.columns:
    raise tables.missing_column_error(path, [COLUMN], frame.columns, "fold")
  values = tables.numeric(frame, COLUMN, path)
  bad = np.isnan(values) | (values != np.round(values)) | (values < NEVER_TESTED)
  if bad.any():
    row = tables.first_row(bad)
    cell = tables.as_text(frame[COLUMN]).iloc[row - 1]
    raise tables.DataError(f"{path}: row {row}, column {COLUMN!r}: {cell} is not a fold "
                           f"number (0, 1, ... or {NEVER_TESTED} for never tested)")
  folds = values.astype(np.int64)
  num_folds = int(folds.max()) + 1
  if num_folds < 2:
    raise tables.DataError(f"{path}: column {COLUMN!r} names {max(num_folds, 0)} fold(s); "
                           "cross-validation needs 2 or more")
  return frame, folds


def number_of_folds(path):
  """K, the number of folds the file names (folds 0 .. K-1)."""
  return int(read(path)[1].max()) + 1


def aligned(path, data_frame, source):
  """[N] folds of the rows of `data_frame` (the data file as read); a DataError if the fold
  file has another number of rows or disagrees with the data in a shared column."""
  frame, folds = read(path)
  if len(frame) != len(data_frame):
    raise tables.DataError(f"--folds={path}: {len(frame)} rows, but {source} has "
                           f"{len(data_frame)}; a fold file holds one row per data row, in order")
  for column in sorted(set(frame.columns) & set(data_frame.columns) - {COLUMN}):
    ours = tables.as_text(frame[column]).fillna("").to_numpy()
    theirs = tables.as_text(data_frame[column]).fillna("").to_numpy()
    if (ours != theirs).any():
      row = tables.first_row(ours != theirs)
      raise tables.DataError(f"--folds={path}: row {row}, column {column!r}: {ours[row - 1]!r} "
                             f"but {source} has {theirs[row - 1]!r}; is it the fold file of "
                             "other data?")
  return folds
