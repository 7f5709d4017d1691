"""Seeded train/validation/test splits, and scalers fit on training rows only.

Each row lands in exactly one split, so no alloy is trained on for one task and tested on for
another. Splits are drawn task by task, rarest task first: a task's labelled rows that an
earlier task already placed keep their split, and the task's remaining labelled rows are split
(stratified for binary tasks) so that its own validation and test shares come as close to the
configured fractions as the earlier placements allow. The result depends only on the labels,
the fractions and the seed, so every architecture sees the same split for one seed.
"""

import dataclasses

from absl import logging
import numpy as np
# scikit-learn is imported where it is used: bad data is reported without paying for it.

from kmtl.data import conditions
from kmtl.data import scaling
from kmtl.data import schema
from kmtl.data import tables

TRAIN, VAL, TEST = 0, 1, 2
FOLD_SEED = 0  # cross-validation folds are one fixed partition per repeat; runs differ by seed
SPLIT_NAMES = ("train", "val", "test")
UNASSIGNED = -1


def assign_grouped_splits(labels, tasks, groups, val_fraction, test_fraction, seed):
  """Like `assign_splits`, but all rows of a group (a canonical composition) share one split,
  so a repeatedly measured alloy never sits in two splits. Groups are split as units: a
  group's label for a task is the mean of its rows' labels (binary: 1 if any row is 1; a
  class label: its first row's)."""
  groups = np.asarray(groups)
  num_groups = int(groups.max()) + 1
  group_labels = {}
  for task in tasks:
    y = labels[task.name]
    sums = np.bincount(groups, weights=np.nan_to_num(y), minlength=num_groups)
    counts = np.bincount(groups, weights=~np.isnan(y), minlength=num_groups)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    if task.kind == schema.BINARY:
      mean = np.where(counts > 0, (mean > 0).astype(np.float64), np.nan)
    elif task.kind == schema.MULTICLASS:
      labelled = np.flatnonzero(~np.isnan(y))
      first_groups, first = np.unique(groups[labelled], return_index=True)
      mean = np.full(num_groups, np.nan)
      mean[first_groups] = y[labelled[first]]
    group_labels[task.name] = mean
  return assign_splits(group_labels, tasks, val_fraction, test_fraction, seed)[groups]


def assign_splits(labels, tasks, val_fraction, test_fraction, seed):
  """Returns [N] int8: TRAIN, VAL or TEST for every row with at least one label, else -1."""
  num_rows = len(next(iter(labels.values())))
  split = np.full(num_rows, UNASSIGNED, dtype=np.int8)
  rng = np.random.default_rng(seed)
  by_count = sorted(tasks, key=lambda t: (np.sum(~np.isnan(labels[t.name])), t.name))
  for task in by_count:
    values = labels[task.name]
    labelled = ~np.isnan(values)
    n = int(labelled.sum())
    if n == 0:
      continue
    free = np.flatnonzero(labelled & (split == UNASSIGNED))
    need_test = max(0, round(test_fraction * n) - int(np.sum(labelled & (split == TEST))))
    need_val = max(0, round(val_fraction * n) - int(np.sum(labelled & (split == VAL))))
    need_test, need_val = min(need_test, len(free)), min(need_val, len(free))
    need_val = min(need_val, len(free) - need_test)
    classified = task.kind in schema.CLASSIFICATION
    strata = values[free] if classified else None
    rest, test_rows = _take(free, need_test, strata, rng)
    strata = values[rest] if classified else None
    train_rows, val_rows = _take(rest, need_val, strata, rng)
    split[train_rows], split[val_rows], split[test_rows] = TRAIN, VAL, TEST
  return split


def _take(rows, count, strata, rng):
  """Splits `rows` into (rest, `count` rows), stratified by `strata` where that is possible."""
  if count == 0:
    return rows, rows[:0]
  if count == len(rows):
    return rows[:0], rows
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  seed = int(rng.integers(2**31 - 1))
  if strata is not None and np.min(np.unique(strata, return_counts=True)[1]) >= 2 \
      and count >= len(np.unique(strata)) and len(rows) - count >= len(np.unique(strata)):
    return tuple(model_selection.train_test_split(rows, test_size=count, random_state=seed,
                                                  stratify=strata))
  return tuple(model_selection.train_test_split(rows, test_size=count, random_state=seed))


@dataclasses.dataclass(frozen=True)
class SplitArrays:
  """One split in model units: features [n, F] float32, labels and masks {task: [n] float32}.

  A missing label is stored as 0 with mask 0.
  """
  features: np.ndarray
  labels: dict
  masks: dict

  @property
  def num_rows(self):
    return self.features.shape[0]

  @property
  def num_features(self):
    return self.features.shape[1]

  def take(self, rows):
    """The rows `rows` as SplitArrays."""
    return SplitArrays(self.features[rows], {n: v[rows] for n, v in self.labels.items()},
                       {n: v[rows] for n, v in self.masks.items()})


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """Train, validation and test arrays plus the scalers that produced them."""
  train: SplitArrays
  val: SplitArrays
  test: SplitArrays
  row_split: np.ndarray
  feature_scaler: object  # a fitted sklearn.preprocessing.StandardScaler
  target_scalers: dict
  # The model's inputs: the data's features, then the encoded test conditions.
  input_names: tuple = ()
  condition_encoders: list = dataclasses.field(default_factory=list)

  def split(self, name):
    return getattr(self, name)


def _check_informative(labels, tasks):
  """A task that cannot be learned or scored is an error naming it and its counts: no label,
  a classification task with one class, a constant regression target."""
  for task in tasks:
    y = labels[task.name]
    y = y[~np.isnan(y)]
    if not y.size:
      raise tables.DataError(f"task {task.name!r} has no labels")
    if task.kind == schema.BINARY and np.unique(y).size < 2:
      raise tables.DataError(f"binary task {task.name!r} has {y.size} labels, all "
                             f"{y[0]:g}: it needs both classes")
    if task.kind == schema.MULTICLASS and np.unique(y).size < 2:
      raise tables.DataError(f"multiclass task {task.name!r} has {y.size} labels, all "
                             f"{task.classes[int(y[0])]!r}: it needs at least two classes")
    if task.kind == schema.REGRESSION and np.ptp(y) == 0:
      raise tables.DataError(f"regression task {task.name!r} has {y.size} labels, "
                             f"all {y[0]:g}: a constant target cannot be learned or scored")


def _check_every_split_has_labels(data, row_split, cv=()):
  """Each task needs a labelled row in training, validation and test; under a fold file, a
  task labelled only on never-tested rows (an auxiliary task from another set) needs none in
  test, and one labelled in the folds but not in the held-out one is an error naming it."""
  for task in data.tasks:
    labelled = ~np.isnan(data.labels[task.name])
    counts = [int(np.sum(labelled & (row_split == s))) for s in (TRAIN, VAL, TEST)]
    if data.folds is not None and cv and counts[2] == 0:
      if not (labelled & (data.folds >= 0)).any():
        counts[2] = None  # auxiliary: trained on, never scored
      elif counts[0] and counts[1]:
        raise tables.DataError(f"fold {cv[1]} of the fold file has no row of task "
                               f"{task.name!r}: it cannot be scored there")
    if min(c for c in counts if c is not None) == 0:
      raise tables.DataError(
          f"task {task.name!r} has {int(labelled.sum())} labelled rows, split {counts[0]} "
          f"train / {counts[1]} validation / {counts[2]} test: every split needs at least one "
          "(add labels, or change --val_fraction and --test_fraction)")


def fold_of_rows(data, num_folds, group_split=True, repeat=0):
  """[N] fold (0 .. num_folds - 1) of every row: a fold file's (-1: never tested), or the
  canonical compositions (rows, without `group_split`) dealt into folds by a shuffle of fixed
  seed, the same for every run; repeat r >= 1 of a repeated cross-validation reshuffles them
  with its own fixed seed."""
  if data.folds is not None:
    if int(data.folds.max()) + 1 != num_folds:
      raise tables.DataError(f"--cv={num_folds}: the fold file's rows name folds 0 to "
                             f"{int(data.folds.max())}")
    return data.folds
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  groups = data.groups() if group_split else np.arange(data.num_rows)
  unique = np.unique(groups)
  if len(unique) < num_folds:
    raise tables.DataError(f"--cv={num_folds}: the data has only {len(unique)} "
                           f"{'compositions' if group_split else 'rows'}")
  fold = np.empty(int(groups.max()) + 1, np.int64)
  splitter = model_selection.KFold(num_folds, shuffle=True, random_state=FOLD_SEED + repeat)
  for k, (_, held_out) in enumerate(splitter.split(unique)):
    fold[unique[held_out]] = k
  return fold[groups]


def _cross_validation_splits(data, cv, val_fraction, seed, group_split):
  """Fold `cv[1]` of `cv[0]` (of repeat `cv[2]`, when given) is the test split; validation rows
  come from the other folds, `val_fraction` of each task's labels there, grouped like the
  folds."""
  num_folds, held_out, repeat = (*cv, 0)[:3]
  test = fold_of_rows(data, num_folds, group_split, repeat) == held_out
  groups = data.groups()
  # A row of a tested composition never trains, whatever its fold or task: given folds may
  # split repeats, and auxiliary rows from other sets may repeat a tested alloy.
  leaked = np.isin(groups, groups[test]) & ~test
  if leaked.any():
    logging.info("fold %d: %d rows of tested compositions left out of training", held_out,
                 int(leaked.sum()))
  rest = {name: np.where(test | leaked, np.nan, y) for name, y in data.labels.items()}
  if group_split:
    row_split = assign_grouped_splits(rest, data.tasks, groups, val_fraction, 0.0, seed)
  else:
    row_split = assign_splits(rest, data.tasks, val_fraction, 0.0, seed)
  row_split[test] = TEST
  return row_split


def row_splits(data, val_fraction, test_fraction, seed, group_split=False, cv=()):
  """Each row's split of `AlloyData` (by canonical composition with `group_split`; with `cv`,
  (number of folds, held-out fold), the held-out fold is the test split); a `DataError`
  naming the task if one cannot be learned or lacks labels in some split."""
  _check_informative(data.labels, data.tasks)
  if cv:
    row_split = _cross_validation_splits(data, cv, val_fraction, seed, group_split)
  elif group_split:
    row_split = assign_grouped_splits(data.labels, data.tasks, data.groups(), val_fraction,
                                      test_fraction, seed)
  else:
    row_split = assign_splits(data.labels, data.tasks, val_fraction, test_fraction, seed)
  _check_every_split_has_labels(data, row_split, cv)
  return row_split


def prepare(data, val_fraction, test_fraction, seed, group_split=False, cv=()):
  """Splits `AlloyData` (see `row_splits`), fits the scalers on the training rows and returns
  `PreparedData`."""
  row_split = row_splits(data, val_fraction, test_fraction, seed, group_split, cv)
  train_rows = row_split == TRAIN
  specs = [spec for spec, _ in data.conditions]
  encoders = conditions.encoders(specs, data.condition_values(), train_rows)
  encoded, encoded_names = conditions.encode(encoders, data.condition_values(), data.num_rows)
  inputs = np.concatenate([data.features, encoded.astype(data.features.dtype)], axis=1) \
      if encoders else data.features
  from sklearn import preprocessing  # pylint: disable=g-import-not-at-top
  feature_scaler = preprocessing.StandardScaler().fit(inputs[train_rows])
  input_names = tuple(data.feature_names) + tuple(encoded_names)
  scaling.floor_share_scales(feature_scaler, input_names, data.elements)
  target_scalers = scaling.fit_target_scalers(data, row_split == TRAIN)

  def arrays(which):
    rows = row_split == which
    features = feature_scaler.transform(inputs[rows]).astype(np.float32)
    return SplitArrays(features, *scaling.model_labels(data, target_scalers, rows))

  return PreparedData(arrays(TRAIN), arrays(VAL), arrays(TEST), row_split, feature_scaler,
                      target_scalers, input_names, encoders)
