"""Checking an alloy table's columns and values: the feature matrix (from feature columns or
compositions), the feature sets, and each task's labels."""

import dataclasses

from absl import logging
import numpy as np

from kmtl.data import featurize as featurize_lib
from kmtl.data import magpie
from kmtl.data import magpie_preset
from kmtl.data import schema
from kmtl.data import tables

FRACTION_SUM_TOLERANCE = 1e-3  # |sum of elemental fractions - 1| allowed when features are given.
COMPOSITION_COLUMNS = ("composition", "formula")


def _parsed_compositions(texts, column, source, convention):
  """Each row's {symbol: fraction}; likely capitalisation slips are logged with their rows."""
  parsed, slips = [], []
  for row, text in enumerate(texts):
    text = text if isinstance(text, str) else ""
    try:
      parsed.append(featurize_lib.parse_composition(text, convention))
    except featurize_lib.CompositionError as e:
      raise tables.DataError(f"{source}: row {row + 1}, column {column!r}: {e}") from None
    slips += [(row + 1, text, written, suggested)
              for written, suggested in featurize_lib.likely_typos(text)]
  for row, text, written, suggested in slips[:5]:
    logging.warning("%s: row %d, column %r: %r reads %s as %s and %s; did you mean %s?",
                    source, row, column, text, written, written[0], written[1], suggested)
  if len(slips) > 5:
    logging.warning("%s: %d more rows with likely capitalisation slips", source, len(slips) - 5)
  return parsed


def _check_agreement(texts, fractions, elements, column, source, convention):
  """A file with both compositions and element fractions: each row's must agree within
  `FRACTION_SUM_TOLERANCE` in every element."""
  parsed = _parsed_compositions(texts, column, source, convention)
  for row, (comp, given) in enumerate(zip(parsed, fractions)):
    outside = [el for el in comp if el not in elements]
    read = np.array([comp.get(el, 0.0) for el in elements])
    worst = int(np.argmax(np.abs(read - given)))
    if outside or abs(read[worst] - given[worst]) > FRACTION_SUM_TOLERANCE:
      what = (f"element {outside[0]} has no fraction column" if outside else
              f"{elements[worst]} is {read[worst]:.4g} there and {given[worst]:.4g} in its column")
      raise tables.DataError(f"{source}: row {row + 1}: the composition in column {column!r} "
                             f"disagrees with the element fractions: {what}")


def _features(frame, elements, source, convention="alloy", for_model=False, descriptors=True):
  """Returns (features [N, F], element vocabulary, compositions or None): the fractions, then
  the six descriptors unless `descriptors` is False."""
  composition_column = next((c for c in COMPOSITION_COLUMNS if c in frame.columns), None)
  if elements == "auto":
    if composition_column is None:
      raise tables.DataError(f"{source}: --elements=auto needs a 'composition' column")
  else:
    names = schema.feature_names(elements)
    missing = [c for c in names if c not in frame.columns]
    if not missing:
      features = _validated_features(frame, names, len(elements), source)
      if composition_column is not None:
        _check_agreement(frame[composition_column], features[:, :len(elements)], elements,
                         composition_column, source, convention)
      return features, tuple(elements), None
    if composition_column is None:
      raise tables.missing_column_error(source, missing + ["composition"], frame.columns, "feature")

  texts = frame[composition_column]
  parsed = _parsed_compositions(texts, composition_column, source, convention)
  if elements == "auto":
    elements = tuple(sorted({el for comp in parsed for el in comp},
                            key=lambda el: featurize_lib.element_table().at[el, "atomic_number"]))
  try:
    hint = ("the model was trained without it and cannot describe it" if for_model else
            "use --elements=auto or add it")
    fractions = featurize_lib.fractions_matrix(parsed, tuple(elements), hint)
    if not descriptors:
      return fractions, tuple(elements), tuple(str(t) for t in texts)
    values = featurize_lib.descriptors(fractions, tuple(elements))
  except featurize_lib.CompositionError as e:
    raise tables.DataError(f"{source}: {e} (column {composition_column!r})") from None
  return (np.concatenate([fractions, values], axis=1), tuple(elements),
          tuple(str(t) for t in texts))


def _magpie_statistics(fractions, elements, source):
  values, lacking = magpie.statistics(fractions, elements, featurize_lib.element_table())
  if lacking:
    row, element, prop = lacking
    raise tables.DataError(f"{source}: row {row + 1}: element {element!r} has no {prop} in "
                           "the element table, which the magpie features need")
  return values


def _preset_features(fractions, elements, source):
  values, lacking = magpie_preset.features(fractions, elements)
  if lacking:
    row, element, prop = lacking
    raise tables.DataError(f"{source}: row {row + 1}: element {element!r} has no {prop} in "
                           "matminer's Magpie tables, which the magpie_preset features need")
  return values


def feature_matrix(frame, feature_set, elements, source, convention="alloy", for_model=False):
  """(features [N, F], element vocabulary, compositions or None, feature names) of one of the
  feature sets: "composition" (fractions + descriptors), "descriptors" (the six, read from
  their columns or computed from compositions), "magpie" (the six and the statistics of
  kmtl/data/magpie.py), "composition+magpie" (fractions, the six and the statistics),
  "magpie_preset" (matminer's Magpie preset, kmtl/data/magpie_preset.py),
  "composition+magpie_preset" (fractions, the six and the preset) or a tuple of numeric column
  names. `convention` is how compositions' bracket groups read
  (`featurize.parse_composition`); `for_model`: the features are for a trained model, whose
  element vocabulary is fixed."""
  if feature_set in ("composition", "composition+magpie"):
    features, elements, compositions = _features(frame, elements, source, convention,
                                                 for_model)
    names = schema.feature_names(elements)
    if feature_set == "composition+magpie":
      stats = _magpie_statistics(features[:, :len(elements)], elements, source)
      features, names = np.concatenate([features, stats], axis=1), names + magpie.feature_names()
    return features, elements, compositions, names
  if feature_set == "composition+magpie_preset":
    features, elements, compositions = _features(frame, elements, source, convention,
                                                 for_model)
    preset = _preset_features(features[:, :len(elements)], elements, source)
    return (np.concatenate([features, preset], axis=1), elements, compositions,
            schema.feature_names(elements) + magpie_preset.feature_names())
  if feature_set == "magpie_preset":
    if not any(c in frame.columns for c in COMPOSITION_COLUMNS):
      raise tables.missing_column_error(source, ["composition"], frame.columns, "feature")
    fractions, present, compositions = _features(frame, "auto", source, convention,
                                                 descriptors=False)
    return (_preset_features(fractions, present, source), (), compositions,
            magpie_preset.feature_names())
  if feature_set == "magpie":
    if not any(c in frame.columns for c in COMPOSITION_COLUMNS):
      raise tables.missing_column_error(source, ["composition"], frame.columns, "feature")
    features, present, compositions = _features(frame, "auto", source, convention)
    stats = _magpie_statistics(features[:, :len(present)], present, source)
    names = schema.DESCRIPTOR_NAMES + magpie.feature_names()
    return (np.concatenate([features[:, len(present):], stats], axis=1), (), compositions,
            names)
  if feature_set == "descriptors":
    names = schema.DESCRIPTOR_NAMES
    if all(c in frame.columns for c in names):
      return _validated_features(frame, names, 0, source), (), None, names
    if not any(c in frame.columns for c in COMPOSITION_COLUMNS):
      missing = [c for c in names if c not in frame.columns]
      raise tables.missing_column_error(source, missing + ["composition"], frame.columns,
                                  "descriptor")
    features, _, compositions = _features(frame, "auto", source, convention)
    return features[:, -len(names):], (), compositions, names
  names = tuple(feature_set)
  missing = [c for c in names if c not in frame.columns]
  if missing:
    raise tables.missing_column_error(source, missing, frame.columns, "feature")
  return _validated_features(frame, names, 0, source), (), None, names


def feature_set_of(feature_names):
  """(feature set, element vocabulary) that produced `feature_names` (a trained model's)."""
  names = tuple(feature_names)
  n = len(schema.DESCRIPTOR_NAMES)
  preset = magpie_preset.feature_names()
  if names == preset:
    return "magpie_preset", ()
  if names[-len(preset):] == preset:
    _, composition = feature_set_of(names[:-len(preset)])
    return "composition+magpie_preset", composition
  statistics = magpie.feature_names()
  if names[-len(statistics):] == statistics:
    base, composition = feature_set_of(names[:-len(statistics)])
    return ("magpie", ()) if base == "descriptors" else ("composition+magpie", composition)
  if names == schema.DESCRIPTOR_NAMES:
    return "descriptors", ()
  if names[-n:] == schema.DESCRIPTOR_NAMES and names[:-n]:
    return "composition", names[:-n]
  return names, ()


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_ranges(features, names, source):
  """Descriptor columns within their physical ranges; every value finite in float32."""
  too_large = np.abs(features) > FLOAT32_MAX
  if too_large.any():
    row, col = np.argwhere(too_large)[0]
    raise tables.DataError(f"{source}: row {row + 1}, column {names[col]!r}: value "
                           f"{features[row, col]:g} does not fit in float32")
  for col, name in enumerate(names):
    low, high = schema.DESCRIPTOR_LIMITS.get(name, (-np.inf, np.inf))
    outside = (features[:, col] < low) | (features[:, col] > high)
    if outside.any():
      row = tables.first_row(outside)
      raise tables.DataError(f"{source}: row {row}, column {name!r}: {features[row - 1, col]:g} "
                             f"is outside its physical range [{low:g}, {high:g}]")


def _validated_features(frame, names, num_fractions, source):
  features = np.stack([tables.numeric(frame, c, source) for c in names], axis=1)
  bad = ~np.isfinite(features)
  if bad.any():
    row, col = np.argwhere(bad)[0]
    raise tables.DataError(f"{source}: row {row + 1}, column {names[col]!r}: "
                    f"missing or non-finite value {float(features[row, col])!r}")
  _check_ranges(features, names, source)
  if not num_fractions:
    return features
  fractions = features[:, :num_fractions]
  if (fractions < 0).any():
    row, col = np.argwhere(fractions < 0)[0]
    raise tables.DataError(f"{source}: row {row + 1}, column {names[col]!r}: "
                    f"negative elemental fraction {fractions[row, col]:g}")
  sums = fractions.sum(axis=1)
  off = np.abs(sums - 1.0) > FRACTION_SUM_TOLERANCE
  if off.any():
    row = tables.first_row(off)
    raise tables.DataError(f"{source}: row {row}: elemental fractions sum to {sums[row - 1]:.6g}, "
                    f"not 1 (tolerance {FRACTION_SUM_TOLERANCE:g})")
  return features


def class_labels(frame, task, source):
  """([N] class indices, NaN where unlabelled; the task with its classes) of a multiclass
  column. Classes not listed in the task come from the data, sorted; a label outside a listed
  set is an error naming its row."""
  text = tables.as_text(frame[task.name])
  labelled = text.notna().to_numpy() & (text.fillna("") != "").to_numpy()
  if not task.classes:
    _check_inferred_classes(text, labelled, task.name, source)
  classes = task.classes or tuple(sorted(set(text[labelled])))
  index = {name: i for i, name in enumerate(classes)}
  codes = np.array(text.map(index, na_action="ignore"), dtype=np.float64)
  unknown = labelled & np.isnan(codes)
  if unknown.any():
    row = tables.first_row(unknown)
    raise tables.DataError(f"{source}: row {row}, column {task.name!r}: unknown class "
                           f"{text.iloc[row - 1]!r}; expected one of {list(classes)}")
  codes[~labelled] = np.nan
  return codes, dataclasses.replace(task, classes=classes)


def _check_inferred_classes(text, labelled, name, source):
  """Classes read from the data (none listed in --tasks) must look like one set of names:
  no numbers beside names, no two names that differ only in case, no class on a single row
  (a typo, most often, that would otherwise become a class no split can hold)."""
  values = text[labelled]
  where = lambda value: f"{source}: row {tables.first_row((text == value).to_numpy())}, " \
      f"column {name!r}"
  numeric = sorted({v for v in values if _is_number(v)})
  named = sorted({v for v in values if not _is_number(v)})
  if numeric and named:
    raise tables.DataError(f"{where(named[0])}: class {named[0]!r} is a name but "
                           f"{numeric[:3]} are numbers; a class column holds one kind of label "
                           "(or list the classes in --tasks=NAME:multiclass:A|B|...)")
  by_case = {}
  for value in sorted(set(values)):
    by_case.setdefault(value.casefold(), []).append(value)
  clash = next((names for names in by_case.values() if len(names) > 1), None)
  if clash:
    raise tables.DataError(f"{where(clash[1])}: classes {clash[0]!r} and {clash[1]!r} differ "
                           "only in case; write them alike")
  counts = values.value_counts()
  if len(counts) > 1 and counts.min() < 2:
    single = sorted(counts.index[counts < 2])[0]
    raise tables.DataError(f"{where(single)}: class {single!r} is on this row alone; a class "
                           "needs 2 or more labelled rows (a typo? else list the classes in "
                           "--tasks=NAME:multiclass:A|B|...)")


def _is_number(value):
  try:
    float(value)
  except ValueError:
    return False
  return True


def labels(frame, task, source):
  if task.kind == schema.BINARY and frame[task.name].dtype == bool:
    return frame[task.name].to_numpy(dtype=np.float64)
  values = tables.numeric(frame, task.name, source)
  where = lambda mask: f"{source}: row {tables.first_row(mask)}, column {task.name!r}"
  value = lambda mask: values[tables.first_row(mask) - 1]
  if np.isinf(values).any():
    raise tables.DataError(f"{where(np.isinf(values))}: infinite label")
  if (np.abs(values) > FLOAT32_MAX).any():
    bad = np.abs(values) > FLOAT32_MAX
    raise tables.DataError(f"{where(bad)}: label {value(bad):g} does not fit in float32")
  labelled = ~np.isnan(values)
  if task.upper_limit is not None and (labelled & (values > task.upper_limit)).any():
    bad = labelled & (values > task.upper_limit)
    raise tables.DataError(f"{where(bad)}: {task.name} {value(bad):g} {task.unit} is above the "
                           f"physical limit {task.upper_limit:g}")
  if task.kind == schema.BINARY:
    bad = labelled & ~np.isin(values, (0.0, 1.0))
    if bad.any():
      raise tables.DataError(f"{where(bad)}: binary label {value(bad):g} is not 0 or 1")
  elif task.nonnegative and (labelled & (values < 0)).any():
    bad = labelled & (values < 0)
    raise tables.DataError(f"{where(bad)}: negative {task.name} {value(bad):g}")
  if task.transform == "log" and (labelled & (values <= 0)).any():
    bad = labelled & (values <= 0)
    raise tables.DataError(f"{where(bad)}: {task.name} {value(bad):g} must be > 0 for its log transform")
  return values

