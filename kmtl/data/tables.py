"""Alloy tables on disk: reading and writing CSV or Parquet, and the one-line errors that
name the file, row and column. Rows are numbered from 1, the header not counted ("row 3" is the
third data row)."""

import difflib
import os

import numpy as np
import pandas as pd

from kmtl import atomic
from kmtl.data import schema
from kmtl.data import shipped


class DataError(ValueError):
  """Input data that cannot be used; the message names the file, row and column."""


def read_table(path):
  """Reads a CSV (also gzipped) or Parquet file, or a shipped set by its short name, into a
  DataFrame; clear errors for a missing or empty file."""
  path = shipped.locate(path)
  if not os.path.exists(path):
    raise DataError(f"{path}: no such file")
  ext = ".csv" if path.lower().endswith(".csv.gz") else os.path.splitext(path)[1].lower()
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


def check_table_path(path, flag=None):
  """A one-line error, before any work, for an output table path kmtl cannot write: an
  unknown extension, a folder, or a place that cannot be written."""
  ext = os.path.splitext(os.fspath(path))[1].lower()
  if ext not in (".csv", ".parquet", ".pq"):
    raise DataError(f"{f'{flag}=' if flag else ''}{path}: unknown file type {ext!r}; "
                    "expected .csv or .parquet")
  try:
    atomic.check_output_file(path, flag or "output")
  except ValueError as e:
    raise DataError(str(e)) from None
  return ext


def write_table(frame, path):
  """Writes a DataFrame as CSV or Parquet (by extension), atomically."""
  ext = check_table_path(path)
  with atomic.atomic_path(path) as tmp:
    if ext == ".csv":
      frame.to_csv(tmp, index=False)
    else:
      frame.to_parquet(tmp, index=False)


def _known_columns():
  """Column names with a meaning of their own, never proposed as a typo of another."""
  names = (schema.DESCRIPTOR_NAMES + schema.DEFAULT_ELEMENTS +
           tuple(t.name for t in schema.DEFAULT_TASKS) + ("composition", "formula"))
  return {n.lower() for n in names}


def missing_column_error(source, wanted, columns, what):
  """A one-line error naming the missing columns, with a "did you mean" for a present column
  that differs only in case or by a likely typo (never a known column of another meaning)."""
  known = _known_columns() - {w.lower() for w in wanted}
  candidates = {str(c).lower(): str(c) for c in columns if str(c).lower() not in known}
  hints = []
  for name in wanted:
    close = difflib.get_close_matches(name.lower(), list(candidates), n=1, cutoff=0.6)
    if close:
      hints.append(f"{candidates[close[0]]!r} -> {name!r}")
  hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
  shown = ", ".join(repr(c) for c in wanted[:6]) + (" ..." if len(wanted) > 6 else "")
  return DataError(f"{source}: missing {what} column(s) {shown}{hint}")


def numeric(frame, column, source):
  """Column as float64; the first non-numeric cell is an error naming its row, and a column of
  dates or durations (which pandas would read as integer nanoseconds) an error naming it."""
  dtype = frame[column].dtype
  if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
    raise DataError(f"{source}: column {column!r} holds {dtype} values, not numbers")
  values = pd.to_numeric(frame[column], errors="coerce")
  bad = values.isna() & frame[column].notna()
  if bad.any():
    row = int(np.argmax(bad.to_numpy()))
    raise DataError(f"{source}: row {row + 1}, column {column!r}: "
                    f"not a number: {frame[column].iloc[row]!r}")
  return values.to_numpy(dtype=np.float64)


def as_text(column):
  """A column's cells as stripped strings, numbers as written whether a file read them as
  integers or (with a gap) as floats; missing cells stay missing."""
  if pd.api.types.is_numeric_dtype(column):
    return column.map(lambda v: f"{v:g}", na_action="ignore")
  return column.map(lambda v: str(v).strip(), na_action="ignore")


def first_row(mask):
  return int(np.argmax(mask)) + 1
