"""A Parquet table too large for memory, prepared chunk by chunk for streamed training.

Whether a table streams is `streams`: its estimated size in memory (rows x columns x 8 bytes,
a float64 frame) against `--memory_budget_gb`. Preparation then holds one chunk of rows at a
time, plus every row's labels and split:
1. each chunk is validated and featurized as a table in memory is (kmtl/data/io.py); its
   features go to a scratch Parquet file, its labels and composition keys stay in memory;
2. the splits come from the labels and compositions exactly as in memory
   (kmtl/data/splits.py), so a streamed run's split equals the in-memory one;
3. the feature scaler is fit on the training rows chunk by chunk (`partial_fit`);
4. the scaled training split is written to `train.parquet` in row groups that training reads
   back through tf.data (kmtl/data/stream.py), its rows in a seeded random order (an external
   shuffle: each chunk's rows go to the row group of their place in that order, and each row
   group is gathered and sorted in a second pass), so that a file sorted by task or source
   still gives every row group, and so every batch, the split's mix of labels; validation and
   test stay in memory.
"""

import dataclasses
import hashlib
import json
import os
import re

import numpy as np
import pandas as pd

from kmtl.data import io
from kmtl.data import scaling
from kmtl.data import schema
from kmtl.data import shipped
from kmtl.data import splits
from kmtl.data import tables

GB = 1e9
CHUNK_ROWS = 262_144  # rows validated and featurized at a time
GROUP_ROWS = 65_536  # rows of one row group of the training file: the unit read back
TRAIN_FILE = "train.parquet"
_FEATURES_FILE = "features.parquet"
_PIECES_FILE = "train_pieces.parquet"


def table_bytes(path):
  """The estimated size in memory of the Parquet table at `path`: rows x columns x 8 bytes."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  from pyarrow import parquet  # pylint: disable=g-import-not-at-top
  try:
    metadata = parquet.ParquetFile(path).metadata
  except (OSError, pa.ArrowException) as e:
    raise tables.DataError(f"{path}: cannot read as parquet: {str(e).splitlines()[0]}") \
        from None
  return metadata.num_rows * metadata.num_columns * 8


def streams(data_config):
  """Whether the table of `data_config` is read in chunks and its training split streamed: a
  Parquet file larger than the memory budget."""
  if data_config.path is None:
    return False
  path = shipped.locate(data_config.path)
  if os.path.splitext(path)[1].lower() not in (".parquet", ".pq") or not os.path.isfile(path):
    return False
  return table_bytes(path) > data_config.memory_budget_gb * GB


def check_supported(cfg):
  """A ValueError naming the first setting of `cfg` (a `config.RunConfig` whose table streams)
  that streaming cannot honour: each needs every row in memory at once."""
  data = cfg.data
  needs_memory = [
      ("--row_filter", data.row_filter), ("--duplicates=drop", data.duplicates == "drop"),
      ("--average_repeats", data.average_repeats), ("--conditions", data.conditions),
      ("--cv or --folds", data.cv), ("--elements=auto", data.elements == "auto"),
      ("--arch=independent", cfg.train.arch == "independent"),
      ("--imbalance", cfg.imbalance.methods), ("--baseline_gbm", cfg.baseline_gbm),
      ("--strategy", cfg.train.strategy != "default"),
      ("--ensemble", cfg.uncertainty.trains_ensemble),
      ("--select_features", data.select_features)]
  needs_memory += [(f"--tasks {t.name}:multiclass without its classes",
                    t.kind == schema.MULTICLASS and not t.classes) for t in data.tasks]
  for what, used in needs_memory:
    if used:
      raise ValueError(f"--data={data.path}: {table_bytes(shipped.locate(data.path)) / GB:.2g} "
                       f"GB in memory exceeds --memory_budget_gb={data.memory_budget_gb:g}, so "
                       f"it streams, and {what} needs the whole table in memory (raise "
                       "--memory_budget_gb to load it)")


@dataclasses.dataclass(frozen=True)
class StreamedData:
  """What `io.AlloyData` tells of a table, without its features (they are on disk)."""
  feature_names: tuple
  labels: dict
  tasks: tuple
  elements: tuple
  group_ids: np.ndarray
  digest: str
  features_path: str
  conditions: tuple = ()
  folds: np.ndarray = None

  @property
  def num_rows(self):
    return len(self.group_ids)

  def fingerprint(self):
    return self.digest

  def groups(self):
    return self.group_ids

  def masks(self):
    return {name: ~np.isnan(values) for name, values in self.labels.items()}


@dataclasses.dataclass(frozen=True)
class StreamedSplit:
  """The training split on disk (`path`, row groups of features, labels and masks) with its
  labels and masks {task: [n] float32} in memory, in the file's (shuffled) order: row i of the
  file is training row `source_rows[i]` in the table's order."""
  path: str
  labels: dict
  masks: dict
  num_features: int
  source_rows: np.ndarray = None

  @property
  def num_rows(self):
    return len(next(iter(self.masks.values())))

  def take(self, rows):
    """`SplitArrays` of the rows `rows` (sorted indices), read in one pass over the file."""
    from pyarrow import parquet  # pylint: disable=g-import-not-at-top
    source, parts, start = parquet.ParquetFile(self.path), [], 0
    for group in range(source.metadata.num_row_groups):
      size = source.metadata.row_group(group).num_rows
      local = rows[(rows >= start) & (rows < start + size)] - start
      if len(local):
        parts.append(column_matrix(source.read_row_group(group), "features")[local])
      start += size
    return splits.SplitArrays(np.concatenate(parts), {n: v[rows] for n, v in self.labels.items()},
                              {n: v[rows] for n, v in self.masks.items()})


def column_matrix(table, name):
  """The fixed-size-list column `name` of a pyarrow table as an [n, k] array."""
  column = table.column(name).combine_chunks()
  return column.flatten().to_numpy().reshape(len(column), -1)


def matrix_column(matrix):
  """An [n, k] float32 array as a pyarrow fixed-size-list column."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  matrix = np.ascontiguousarray(matrix, np.float32)
  return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])


def _chunks(path, chunk_rows):
  """(first row number - 1, DataFrame) of each chunk of the Parquet file; damaged data is a
  `tables.DataError` naming the file and the rows read before it."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  from pyarrow import parquet  # pylint: disable=g-import-not-at-top
  offset = 0
  batches = parquet.ParquetFile(path).iter_batches(batch_size=chunk_rows)
  while True:
    try:
      batch = next(batches, None)
    except (OSError, pa.ArrowException) as e:
      raise tables.DataError(f"{path}: damaged Parquet data after row {offset}: "
                             f"{str(e).splitlines()[0]}") from None
    if batch is None:
      return
    yield offset, batch.to_pandas()
    offset += batch.num_rows


def _load_chunk(frame, offset, config, path):
  """`io.AlloyData` of one chunk; errors name the row of the whole file."""
  try:
    return io.load(frame, config.tasks, config.elements, "keep", name=path,
                   feature_set=config.feature_set, convention=config.composition_convention)
  except tables.DataError as e:
    message = re.sub(r"\brow (\d+)", lambda m: f"row {int(m.group(1)) + offset}", str(e),
                     count=1)
    raise tables.DataError(message) from None


def _composition_keys(chunk):
  """[n] uint64 hashes of each row's rounded fractions (what `AlloyData.groups` compares)."""
  num_fractions = len(chunk.elements)
  keys = chunk.features[:, :num_fractions] if num_fractions else chunk.features
  rounded = pd.DataFrame(np.round(keys.astype(np.float64), 6))
  return pd.util.hash_pandas_object(rounded, index=False).to_numpy()


def _group_ids(keys):
  """Group ids numbered in order of first appearance, as `AlloyData.groups` numbers them."""
  _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
  rank = np.empty(len(first), np.int64)
  rank[np.argsort(first)] = np.arange(len(first))
  return rank[inverse.ravel()]


def load(config, directory, chunk_rows=CHUNK_ROWS):
  """Pass 1: validates and featurizes the table of `config` (a `config.DataConfig`) chunk by
  chunk into `StreamedData`, its features in a scratch file under `directory`."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  from pyarrow import parquet  # pylint: disable=g-import-not-at-top
  path = shipped.locate(config.path)
  os.makedirs(directory, exist_ok=True)
  features_path = os.path.join(directory, _FEATURES_FILE)
  labels, keys, digest, writer, first = {}, [], hashlib.sha256(), None, None
  for offset, frame in _chunks(path, chunk_rows):
    try:
      chunk = _load_chunk(frame, offset, config, path)
    except tables.DataError as e:
      if "no row has a label" not in str(e):
        raise
      continue
    if first is None:
      first = chunk
      digest.update(json.dumps([list(chunk.feature_names), [t.name for t in chunk.tasks]])
                    .encode())
    digest.update(np.ascontiguousarray(chunk.features, np.float64).tobytes())
    for task in chunk.tasks:
      labels.setdefault(task.name, []).append(chunk.labels[task.name])
      digest.update(np.ascontiguousarray(chunk.labels[task.name], np.float64).tobytes())
    keys.append(_composition_keys(chunk))
    table = pa.table({"features": matrix_column(chunk.features)})
    writer = writer or parquet.ParquetWriter(features_path, table.schema)
    writer.write_table(table)
  if first is None:
    raise tables.DataError(f"{path}: no row has a label for any of the tasks "
                           f"{[t.name for t in config.tasks]}")
  writer.close()
  return StreamedData(first.feature_names, {n: np.concatenate(v) for n, v in labels.items()},
                      first.tasks, first.elements, _group_ids(np.concatenate(keys)),
                      digest.hexdigest(), features_path)


def _feature_chunks(data):
  """(row offset, [n, F] raw features) of each chunk of the scratch feature file."""
  from pyarrow import parquet  # pylint: disable=g-import-not-at-top
  source, offset = parquet.ParquetFile(data.features_path), 0
  for group in range(source.metadata.num_row_groups):
    features = column_matrix(source.read_row_group(group), "features")
    yield offset, features
    offset += len(features)


def _feature_scaler(data, row_split):
  """Pass 2: the standardisation of the training rows' features, fit chunk by chunk."""
  from sklearn import preprocessing  # pylint: disable=g-import-not-at-top
  scaler = preprocessing.StandardScaler()
  for offset, features in _feature_chunks(data):
    train = row_split[offset:offset + len(features)] == splits.TRAIN
    if train.any():
      scaler.partial_fit(features[train])
  scaling.floor_share_scales(scaler, data.feature_names, data.elements)
  return scaler


def _gather_groups(pieces_path, pieces, position, group_rows, train_path, labels, masks):
  """Pass 2 of the shuffle: row group g of the training file gathers the pieces of group g
  (row group k of the pieces file holds rows of group `pieces[k]`), in file order; `labels`
  and `masks` [n, T] are already in file order."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  from pyarrow import parquet  # pylint: disable=g-import-not-at-top
  source, writer = parquet.ParquetFile(pieces_path), None
  by_group = {}
  for k, group in enumerate(pieces):
    by_group.setdefault(group, []).append(k)
  for group in sorted(by_group):
    tables_read = [source.read_row_group(k) for k in by_group[group]]
    rows = np.concatenate([t.column("rows").to_numpy() for t in tables_read])
    features = np.concatenate([column_matrix(t, "features") for t in tables_read])
    order = np.argsort(position[rows])
    features = features[order]
    start = group * group_rows
    place = slice(start, start + len(features))
    table = pa.table({"features": matrix_column(features),
                      "labels": matrix_column(labels[place]),
                      "masks": matrix_column(masks[place])})
    writer = writer or parquet.ParquetWriter(train_path, table.schema, compression="none")
    writer.write_table(table, row_group_size=len(features))
  writer.close()


def prepare(data, directory, val_fraction, test_fraction, seed, group_split=False,
            group_rows=GROUP_ROWS):
  """Splits and scales `StreamedData` as `splits.prepare` does a table in memory; the training
  split is written to `directory`/train.parquet in a random order drawn from `seed`, in row
  groups of `group_rows`, and returned as a `StreamedSplit`."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  from pyarrow import parquet  # pylint: disable=g-import-not-at-top
  row_split = splits.row_splits(data, val_fraction, test_fraction, seed, group_split)
  scaler = _feature_scaler(data, row_split)
  target_scalers = scaling.fit_target_scalers(data, row_split == splits.TRAIN)
  model_units = {s: scaling.model_labels(data, target_scalers, row_split == s)
                 for s in (splits.TRAIN, splits.VAL, splits.TEST)}
  names = [t.name for t in data.tasks]
  held = {splits.VAL: [], splits.TEST: []}
  train_labels, train_masks = model_units[splits.TRAIN]
  num_train = int((row_split == splits.TRAIN).sum())
  # position[r]: where training row r goes in the file.
  position = np.random.default_rng([seed, 0x5eed]).permutation(num_train)
  pieces_path, writer, pieces, done = os.path.join(directory, _PIECES_FILE), None, [], 0
  for offset, features in _feature_chunks(data):
    part = row_split[offset:offset + len(features)]
    for which in held:
      held[which].append(scaler.transform(features[part == which]).astype(np.float32))
    scaled = scaler.transform(features[part == splits.TRAIN]).astype(np.float32)
    rows = np.arange(done, done + len(scaled))
    done += len(scaled)
    order = np.argsort(position[rows])
    rows, scaled = rows[order], scaled[order]
    groups = position[rows] // group_rows
    bounds = np.flatnonzero(np.diff(groups)) + 1
    for piece_rows, piece in zip(np.split(rows, bounds), np.split(scaled, bounds)):
      if not len(piece_rows):
        continue
      table = pa.table({"rows": pa.array(piece_rows), "features": matrix_column(piece)})
      writer = writer or parquet.ParquetWriter(pieces_path, table.schema, compression="none")
      writer.write_table(table, row_group_size=len(piece_rows))
      pieces.append(int(position[piece_rows[0]] // group_rows))
  writer.close()
  train_path = os.path.join(directory, TRAIN_FILE)
  source_rows = np.empty(num_train, np.int64)
  source_rows[position] = np.arange(num_train)
  train_labels = {n: v[source_rows] for n, v in train_labels.items()}
  train_masks = {n: v[source_rows] for n, v in train_masks.items()}
  _gather_groups(pieces_path, pieces, position, group_rows, train_path,
                 np.stack([train_labels[n] for n in names], axis=1),
                 np.stack([train_masks[n] for n in names], axis=1))
  os.remove(pieces_path)
  arrays = {which: splits.SplitArrays(np.concatenate(held[which]), *model_units[which])
            for which in held}
  train = StreamedSplit(train_path, train_labels, train_masks, len(data.feature_names),
                        source_rows)
  return splits.PreparedData(train, arrays[splits.VAL], arrays[splits.TEST], row_split, scaler,
                             target_scalers, tuple(data.feature_names), [])
