"""`kmtl advise`: which tasks to train together, from a short probe (kmtl/advisor.py), before
paying for a study.

    kmtl advise [--data=FILE] [--tasks=...] [--out=DIR]

Prints per task pair the co-labelled rows, the gradient cosine over all rows and over
co-labelled rows, the gradient-norm ratio and the lookahead affinity; per task the predicted
verdict of hard sharing against the single-task baseline, with its evidence and a
recommendation; and a grouping of the tasks. With --out, also `advice.md` and `advice.json`
(with the run settings and data fingerprint, against which tools/validate_advisor.py checks a
study of the same data).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags

from kmtl import advisor
from kmtl import atomic
from kmtl import config as config_lib
from kmtl import data_flags
from kmtl import entry
from kmtl import knob_flags
from kmtl import quiet
from kmtl import sweep
from kmtl import training_flags
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits

_OUT = flags.DEFINE_string("out", None, "Directory for advice.md and advice.json.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split and the probe.")
_BATCH_FLAGS = training_flags.define_batch()  # --lr is also the probe's lookahead step
_PROBE_EPOCHS = flags.DEFINE_integer("probe_epochs", advisor.PROBE_EPOCHS,
                                     "Epochs of the probe's training.")
_PROBE_BATCHES = flags.DEFINE_integer("probe_batches", advisor.PROBE_BATCHES,
                                      "Measured batches after each probe epoch.")
_DATA_FLAGS = data_flags.define()


def checked_inputs():
  """(config, data) after the checks that need no TensorFlow."""
  if min(_PROBE_EPOCHS.value, _PROBE_BATCHES.value) < 1:
    raise ValueError("--probe_epochs and --probe_batches must be >= 1")
  if _OUT.value:
    atomic.check_output_dir(_OUT.value, "--out")
  cfg = config_lib.RunConfig(
      data=_DATA_FLAGS.data_config(), seed=_SEED.value,
      train=config_lib.TrainConfig(**_BATCH_FLAGS.settings()))
  if len(cfg.data.tasks) < 2:
    raise ValueError("--tasks: the advisor needs at least two tasks")
  data = io.load_from_config(cfg.data)
  splits.row_splits(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                    cfg.data.group_split, cfg.data.cv)
  return cfg, data


def main(argv):
  if len(argv) > 1:
    sys.exit(f"kmtl advise: error: unexpected arguments {argv[1:]}")
  try:
    cfg, data = checked_inputs()
  except (ValueError, io.DataError, schema.SchemaError) as e:
    sys.exit(f"kmtl advise: error: {e}")
  quiet.import_tensorflow()
  from kmtl import probe  # pylint: disable=g-import-not-at-top
  report, seconds = probe.run(cfg, _PROBE_EPOCHS.value, _PROBE_BATCHES.value, data)
  text = advisor.markdown(report) + f"\n\nprobe: {seconds:.1f} s"
  print(text)
  if _OUT.value:
    os.makedirs(_OUT.value, exist_ok=True)
    atomic.write_text(os.path.join(_OUT.value, "advice.md"), text + "\n")
    atomic.write_text(os.path.join(_OUT.value, "advice.json"),
                      json.dumps({**report, "probe_seconds": seconds,
                                  "settings": sweep.settings(cfg, data.fingerprint())},
                                 indent=2) + "\n")


if __name__ == "__main__":
  for flag_module in (data_flags, knob_flags, training_flags):
    flags.adopt_module_key_flags(flag_module)
  entry.run(main, "kmtl.advise")
