"""The data flags that every entry point which trains takes (`kmtl.run`, the study), defined
once: an entry point calls `define()` at import and `data_config()` once its flags are parsed.
"""

import os

from absl import flags

from kmtl import config as config_lib
from kmtl import knob_flags
from kmtl import parsing
from kmtl.data import conditions
from kmtl.data import folds
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import shipped
from kmtl.data import tables


class DataFlags:
  """The flag holders of the data flags, defined in the calling entry point's flag set."""

  def __init__(self):
    self.data = flags.DEFINE_string(
        "data", None, "CSV or Parquet file, or a shipped set by name (python -m "
        "kmtl.datasets lists them); default: the embedded synthetic set.")
    self.synthetic_seed = flags.DEFINE_integer("synthetic_seed", 0,
                                               "Seed of the embedded synthetic set.")
    self.tasks = flags.DEFINE_string(
        "tasks", "resistivity,hardness,amorphous",
        "Comma-separated tasks: a default name, name:kind[:transform[:unit]] "
        "(kind regression|binary, transform none|log), or name:multiclass[:A|B|C] (classes "
        "in output order; default: those in the data, sorted).")
    self.elements = flags.DEFINE_string(
        "elements", ",".join(schema.DEFAULT_ELEMENTS),
        "Element vocabulary of the fraction features (comma-separated), or 'auto'.")
    self.features = flags.DEFINE_string(
        "features", "composition", "Feature set: composition (element fractions + "
        "descriptors), descriptors (the six only), magpie (the six and statistics of element "
        "properties over the composition), composition+magpie, magpie_preset (matminer's Magpie "
        "preset: 132 statistics of 22 element properties, stoichiometry norms and valence "
        "orbitals, 146 columns), composition+magpie_preset, or a comma-separated list of "
        "numeric columns.")
    self.convention = flags.DEFINE_enum(
        "composition_convention", "alloy", list(schema.COMPOSITION_CONVENTIONS),
        "How the amount after a bracket group in a composition applies: alloy "
        "((Cu50Zr50)90Al10 is Cu45 Zr45 Al10) or chemical (Al(NiB)2 is Al1 Ni2 B2).")
    self.row_filter = flags.DEFINE_string(
        "row_filter", None, "Keep only rows matching this pandas query, e.g. "
        "'test_temperature_c.isna() or test_temperature_c == 25'.")
    self.conditions = flags.DEFINE_string(
        "conditions", None, "Test conditions as inputs beside the features: comma-separated "
        "name[:numeric|categorical[:fill]], e.g. "
        "'test_temperature_c:numeric:25,test_type:categorical' (fill: an empty cell's value).")
    self.duplicates = flags.DEFINE_enum("duplicates", "keep", list(io.DUPLICATE_POLICIES),
                                        "Keep or drop exact duplicate rows.")
    self.knobs = knob_flags.define()
    self._define_split_flags()

  def _define_split_flags(self):
    """How rows are split: shares, grouping, cross-validation folds."""
    self.val_fraction = flags.DEFINE_float("val_fraction", 0.1,
                                           "Validation share of each task's labels.")
    self.test_fraction = flags.DEFINE_float("test_fraction", 0.2,
                                            "Test share of each task's labels.")
    self.balanced = flags.DEFINE_bool("balanced_sampling", False,
                                      "Sample training rows task-balanced.")
    self.group_split = flags.DEFINE_bool(
        "group_split", True, "Split by canonical composition, so repeated measurements of one "
        "alloy never sit in two splits (--nogroup_split: split rows independently).")
    self.cv = flags.DEFINE_integer(
        "cv", 0, "K-fold cross-validation: the test split is one of K folds of the canonical "
        "compositions (a fixed partition); 0 for the seeded split.")
    self.cv_fold = flags.DEFINE_integer("cv_fold", 0, "With --cv or --folds: the held-out fold.")
    self.folds = flags.DEFINE_string(
        "folds", None, "A file with a `fold` column, one row per data row in order (a "
        "benchmark's official folds; -1 for a row never tested): K-fold cross-validation over "
        "its K folds instead of --cv's; matbench_steels or matbench_glass name the shipped "
        "official folds. Rows of a tested composition never train.")
    self.select_features = flags.DEFINE_integer(
        "select_features", 0, "Keep the K inputs with the most mutual information with the "
        "tasks on the training rows (as MODNet ranks them); 0 keeps every input.")
    self.memory_budget_gb = flags.DEFINE_float(
        "memory_budget_gb", 1.0, "A Parquet table larger than this in memory (rows x columns x "
        "8 bytes) is read in chunks and its training split streamed from disk through tf.data; "
        "0 streams every Parquet table.")
    self.average_repeats = flags.DEFINE_bool(
        "average_repeats", False, "Average repeated measurements of a composition into one row.")

  def parsed_tasks(self):
    try:
      return schema.parse_tasks(self.tasks.value)
    except schema.SchemaError as e:
      raise ValueError(f"--tasks: {e}") from None

  def data_config(self):
    """The flags as one `config.DataConfig`; ValueError naming the flag otherwise."""
    if self.data.value is not None and not os.path.isfile(shipped.locate(self.data.value)):
      raise ValueError(f"--data: no such file: {self.data.value} (nor a shipped set: "
                       f"{', '.join(shipped.SETS)})")
    return config_lib.DataConfig(
        path=self.data.value, synthetic_seed=self.synthetic_seed.value,
        tasks=self.parsed_tasks(), elements=parsing.parse_elements(self.elements.value),
        duplicates=self.duplicates.value, val_fraction=self.val_fraction.value,
        test_fraction=self.test_fraction.value, balanced_sampling=self.balanced.value,
        group_split=self.group_split.value, average_repeats=self.average_repeats.value,
        feature_set=parsing.parse_feature_set(self.features.value),
        row_filter=self.row_filter.value, composition_convention=self.convention.value,
        conditions=self.parsed_conditions(), cv=self._cv(), folds=self.folds.value,
        memory_budget_gb=self.memory_budget_gb.value, synthetic_knobs=self.knobs.knobs(),
        select_features=self.select_features.value)

  def _cv(self):
    """(K, held-out fold) of --cv, or of --folds (whose K a --cv must equal); () for neither."""
    if not self.folds.value:
      return (self.cv.value, self.cv_fold.value) if self.cv.value else ()
    if not os.path.isfile(shipped.locate(self.folds.value)):
      raise ValueError(f"--folds: no such file: {self.folds.value} (nor shipped folds: "
                       f"{', '.join(shipped.FOLD_FILES)})")
    try:
      num_folds = folds.number_of_folds(self.folds.value)
    except tables.DataError as e:
      raise ValueError(f"--folds: {e}") from None
    if self.cv.value and self.cv.value != num_folds:
      raise ValueError(f"--cv={self.cv.value} but --folds={self.folds.value} has {num_folds} "
                       "folds; drop --cv")
    return (num_folds, self.cv_fold.value)

  def parsed_conditions(self):
    try:
      return conditions.parse(self.conditions.value)
    except ValueError as e:
      message = str(e)
      raise ValueError(message if message.startswith("--") else f"--conditions: {message}") \
          from None


def define():
  """Defines the data flags (once per program); returns their holders."""
  return DataFlags()
