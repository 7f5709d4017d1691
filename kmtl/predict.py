"""Predict with an exported model: `python -m kmtl.predict --model=DIR --data=new.csv --out=pred.csv`.

`--model` is a SavedModel version directory or a model base directory (its newest version is
used). The data goes through the same validation as training: either every feature column of
the model's schema or a `composition` (or `formula`) column, featurized over the model's element
vocabulary, plus the model's test-condition columns, if any (a category the model never saw
in training is a bad row). The output holds the source row number, any identifier columns
(`id`, `name`, `composition`, `formula`) and one column per model output, in original units
(a multiclass task gives its most probable class and one `<task>_p_<class>` column per class),
with the uncertainty and out-of-domain columns of the export (kmtl/serving.py); it is written
atomically (CSV or Parquet by extension).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags
import pandas as pd

from kmtl import entry
from kmtl import exported
from kmtl import predictions
from kmtl.data import io
from kmtl.data import tables
from kmtl.data import validation

_MODEL = flags.DEFINE_string("model", None, "Exported model (version or base directory).")
_DATA = flags.DEFINE_string("data", None, "CSV or Parquet file of alloys.")
_OUT = flags.DEFINE_string("out", None, "Where to write predictions (.csv or .parquet).")
_ON_ERROR = flags.DEFINE_enum(
    "on_error", "stop", ["stop", "skip"], "A bad row: stop with its row number (stop), or "
    "predict every good row and list the bad ones, with row and reason, in OUT.errors.csv "
    "(skip).")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"kmtl.predict: error: unexpected arguments {argv[1:]}")
  for flag in (_MODEL, _DATA, _OUT):
    if not flag.value:
      sys.exit(f"kmtl.predict: error: --{flag.name} is required")
  try:
    tables.check_table_path(_OUT.value, "--out")
    version_dir = exported.resolve_version(_MODEL.value)
    metadata = exported.read_metadata(version_dir)
    feature_set, elements = validation.feature_set_of(metadata["feature_names"])
    # Compositions read as the model's training data did (models from before the setting
    # existed were trained on the chemical reading of bracket groups).
    convention = metadata["config"]["data"].get("composition_convention", "chemical")
    skip = _ON_ERROR.value == "skip"
    loaded = io.load_features(_DATA.value, elements, feature_set, convention,
                              skip_bad_rows=skip,
                              condition_encoders=metadata.get("conditions") or [])
    table, bad = loaded if skip else (loaded, [])
    outputs = predictions.predict_table(version_dir, table)
    frame = pd.DataFrame({io.ROW_COLUMN: table.row_numbers, **table.identifiers,
                          **predictions.output_columns(outputs, metadata["targets"])})
    tables.write_table(frame, _OUT.value)
    if bad:
      errors_path = os.path.splitext(_OUT.value)[0] + ".errors.csv"
      tables.write_table(pd.DataFrame(bad, columns=["row", "reason"]), errors_path)
  except (exported.ExportError, io.DataError) as e:
    sys.exit(f"kmtl.predict: error: {e}")
  print(f"wrote {len(frame)} predictions to {_OUT.value}")
  if bad:
    print(f"skipped {len(bad)} bad rows, listed with their reasons in {errors_path}")


if __name__ == "__main__":
  entry.run(main, "kmtl.predict")
