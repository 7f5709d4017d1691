"""Main entry: `python -m kmtl.run [--data=FILE] [--flagfile=flags/quick.cfg] ...`.

Flags become one frozen `config.RunConfig`; nothing below this module reads FLAGS. The data is
loaded and validated before anything else, so bad input fails fast with a one-line error.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from kmtl import atomic
from kmtl import config as config_lib
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits

_DATA = flags.DEFINE_string("data", None, "CSV or Parquet file; default: the embedded synthetic set.")
_SYNTHETIC_SEED = flags.DEFINE_integer("synthetic_seed", 0, "Seed of the embedded synthetic set.")
_TASKS = flags.DEFINE_string(
    "tasks", "resistivity,hardness,amorphous",
    "Comma-separated tasks: a default name, or name:kind[:transform[:unit]] "
    "(kind regression|binary, transform none|log).")
_ELEMENTS = flags.DEFINE_string(
    "elements", ",".join(schema.DEFAULT_ELEMENTS),
    "Element vocabulary of the fraction features (comma-separated), or 'auto'.")
_DUPLICATES = flags.DEFINE_enum("duplicates", "keep", list(io.DUPLICATE_POLICIES),
                                "Keep or drop exact duplicate rows.")
_VAL_FRACTION = flags.DEFINE_float("val_fraction", 0.1, "Validation share of each task's labels.")
_TEST_FRACTION = flags.DEFINE_float("test_fraction", 0.2, "Test share of each task's labels.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Training batch size.")
_BALANCED = flags.DEFINE_bool("balanced_sampling", False, "Sample training rows task-balanced.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split, initialisation and shuffling.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run writes its config and results.")


def config_from_flags():
  """Builds the run's frozen config; raises ValueError with a message naming the flag."""
  try:
    tasks = schema.parse_tasks(_TASKS.value)
  except schema.SchemaError as e:
    raise ValueError(f"--tasks: {e}") from None
  elements = _ELEMENTS.value.strip()
  if elements != "auto":
    elements = tuple(el.strip() for el in elements.split(",") if el.strip())
    if not elements or len(set(elements)) != len(elements):
      raise ValueError(f"--elements: expected distinct symbols or 'auto'. "
                       f"Received: {_ELEMENTS.value!r}")
  if _DATA.value is not None and not os.path.isfile(_DATA.value):
    raise ValueError(f"--data: no such file: {_DATA.value}")
  try:
    data = config_lib.DataConfig(
        path=_DATA.value, synthetic_seed=_SYNTHETIC_SEED.value, tasks=tasks, elements=elements,
        duplicates=_DUPLICATES.value, val_fraction=_VAL_FRACTION.value,
        test_fraction=_TEST_FRACTION.value, batch_size=_BATCH_SIZE.value,
        balanced_sampling=_BALANCED.value)
  except ValueError as e:
    raise ValueError(f"invalid flags: {e}") from None
  return config_lib.RunConfig(data=data, seed=_SEED.value, workdir=_WORKDIR.value)


def split_summary(prepared, tasks):
  """Per-task label counts in each split, as printable lines."""
  lines = [f"{'task':<16}{'kind':<12}" + "".join(f"{n:>8}" for n in splits.SPLIT_NAMES)]
  for task in tasks:
    counts = [int(prepared.split(n).masks[task.name].sum()) for n in splits.SPLIT_NAMES]
    lines.append(f"{task.name:<16}{task.kind:<12}" + "".join(f"{c:>8}" for c in counts))
  return lines


def main(argv):
  if len(argv) > 1:
    sys.exit(f"kmtl.run: error: unexpected arguments {argv[1:]}")
  try:
    cfg = config_from_flags()
    data = io.load_from_config(cfg.data)
  except (ValueError, io.DataError) as e:
    sys.exit(f"kmtl.run: error: {e}")
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
  logging.info("data: %d rows, %d features", data.num_rows, len(data.feature_names))
  for line in split_summary(prepared, data.tasks):
    print(line)
  if cfg.workdir:
    atomic.write_text(os.path.join(cfg.workdir, "config.json"), config_lib.to_json(cfg) + "\n")
  print("kmtl.run: data validated; training is not implemented yet.")


if __name__ == "__main__":
  app.run(main)
