"""Export a trained run as a SavedModel that TF Serving loads as it is.

Layout: `EXPORT_DIR/<model_name>/<version>/` with `saved_model.pb`, `variables/` and
`assets.extra/kmtl_metadata.json` (schema, tasks, training config with the architecture, test
metrics, and what the architecture learned about sharing: kmtl/mixing.py). The version is
the next free integer, so an export never overwrites a served one; it is written under a
temporary name and renamed when complete.

Signature `serving_default`:
  input  `features`: float32 [None, F], raw (unscaled) features in the schema's order (the
         element fractions, then the six descriptors; F = 21 for the reference schema; the
         order is in the metadata file);
         and one [None] input per test condition of the run, named after its column:
         float32 for a numeric one (NaN reads as its fill value), string for a categorical
         one (a category outside its training vocabulary encodes as all zeros);
  outputs, in original units (kmtl/serving.py): per regression task `<task>` (`resistivity`
         in micro-ohm cm, `hardness` in HV) and, for a run with uncertainty, `<task>_std`,
         `<task>_lower` and `<task>_upper` (the recalibrated 95% interval); per binary task
         `<task>_probability` and `<task>_label` (int64, probability >= threshold); per
         multiclass task `<task>_probabilities` (float32 [None, C], in the order of the
         metadata's `targets.<task>.classes`) and `<task>` (string, the most probable class);
         for several members `<task>_probability_std` / `<task>_probabilities_std`; and
         `out_of_domain`, `out_of_domain_reason`, `nearest_training_distance`.
An ensemble exports as one SavedModel holding every member. Feature standardisation, the
inverse target transforms and the recalibration are part of the graph; only standard TF ops
are used. Compositions are not a signature input: parsing formulas such as
"Al(NiB)2" and looking up element tables is Python work, which `python -m kmtl.predict` does
before calling this signature.

    python -m kmtl.export --workdir=runs/sg --export_dir=serving [--model_name=kmtl]
"""

import json
import os
import shutil
import zipfile

from kmtl import quiet

quiet.import_tensorflow()

import keras  # pylint: disable=g-import-not-at-top

from kmtl import atomic
from kmtl import domain as domain_lib
from kmtl import exported
from kmtl import models  # pylint: disable=unused-import  (registers the custom layers)
from kmtl import run_files
from kmtl import serving

THRESHOLD = serving.THRESHOLD
METADATA = exported.METADATA
ExportError = exported.ExportError


def _read_json(workdir, name):
  try:
    return run_files.read(workdir, name)
  except run_files.RunFileError as e:
    raise ExportError(f"{e} (export needs a finished kmtl run)") from None


def next_version(model_dir):
  """1 + the largest numeric version under `model_dir` (1 if none)."""
  if not os.path.isdir(model_dir):
    return 1
  versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
  return max(versions, default=0) + 1


def export_run(workdir, export_dir, model_name="kmtl"):
  """Exports the best model of a finished run; returns the new version directory."""
  preprocessing = _read_json(workdir, run_files.PREPROCESSING)
  config = _read_json(workdir, run_files.CONFIG)
  uncertainty = config.get("uncertainty") or {}
  domain = domain_lib.read(workdir)
  metadata = {
      "feature_names": preprocessing["feature_names"],
      "conditions": preprocessing.get("conditions") or [],
      "targets": preprocessing["targets"],
      "threshold": THRESHOLD,
      "config": config,
      "test_metrics": _read_json(workdir, run_files.METRICS).get("test"),
      "architecture": config["train"]["arch"],
      "mixing": _read_json(workdir, run_files.METRICS).get("mixing") or {},
      "uncertainty": uncertainty,
      "domain": domain and {"space": domain["space"], "threshold": domain["threshold"],
                            "columns": domain["names"].tolist()},
  }
  members = [_load_model(path, workdir) for path in _model_paths(workdir, uncertainty)]
  model_dir = os.path.join(export_dir, model_name)
  os.makedirs(model_dir, exist_ok=True)
  _remove_abandoned_exports(model_dir)
  partial = os.path.join(model_dir, f".partial-{os.getpid()}")
  try:
    archive = keras.export.ExportArchive()
    for model in members:
      archive.track(model)
    archive.add_endpoint("serving_default", serving.serving_function(
        members, preprocessing, uncertainty.get("mc_samples", 0), domain))
    archive.write_out(partial, verbose=False)
    atomic.write_text(os.path.join(partial, METADATA), json.dumps(metadata, indent=2) + "\n")
    return _publish(partial, model_dir)
  finally:
    if os.path.exists(partial):
      shutil.rmtree(partial)


def _model_paths(workdir, uncertainty):
  """model.keras of a single run, or of every member of an ensemble (kmtl/ensemble.py)."""
  members = uncertainty.get("ensemble", 1)
  if members == 1:
    return [os.path.join(workdir, "model.keras")]
  return [os.path.join(workdir, "members", str(k), "model.keras") for k in range(members)]


def _load_model(model_path, workdir):
  if not os.path.exists(model_path):
    raise ExportError(f"{model_path}: missing; is {workdir} a finished kmtl run?")
  if not zipfile.is_zipfile(model_path):  # Keras would call it "File not found"
    raise ExportError(f"{model_path}: unreadable (not a Keras model archive: damaged or "
                      "truncated)")
  try:
    return keras.models.load_model(model_path)
  except Exception as e:  # pylint: disable=broad-except  (any failure means unreadable)
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise ExportError(f"{model_path}: unreadable ({reason})") from None


def _publish(partial, model_dir, attempts=20):
  """Renames a finished export to the next free version; an export that finishes at the same
  time takes the next one (rename fails on an existing version directory)."""
  for _ in range(attempts):
    final = os.path.join(model_dir, str(next_version(model_dir)))
    try:
      os.rename(partial, final)
      return final
    except OSError:
      if not os.path.exists(final):
        raise
  raise ExportError(f"{model_dir}: no free version after {attempts} attempts")


def _remove_abandoned_exports(model_dir):
  """`.partial-PID` directories of exports whose process is gone (killed mid-export)."""
  for name in os.listdir(model_dir):
    if not name.startswith(".partial-"):
      continue
    pid = name.rsplit("-", 1)[-1]
    if pid.isdigit() and not _alive(int(pid)):
      shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


if __name__ == "__main__":
  import sys

  from absl import app
  from absl import flags

  _WORKDIR = flags.DEFINE_string("workdir", None, "A finished run's working directory.")
  _EXPORT_DIR = flags.DEFINE_string("export_dir", None, "TF Serving model base directory.")
  _MODEL_NAME = flags.DEFINE_string("model_name", "kmtl", "Model name (a subdirectory).")
  flags.mark_flags_as_required(["workdir", "export_dir"])

  def main(argv):
    if len(argv) > 1:
      sys.exit(f"kmtl.export: error: unexpected arguments {argv[1:]}")
    try:
      atomic.check_output_dir(os.path.join(_EXPORT_DIR.value, _MODEL_NAME.value),
                              "--export_dir")
      path = export_run(_WORKDIR.value, _EXPORT_DIR.value, _MODEL_NAME.value)
    except (ExportError, ValueError) as e:
      sys.exit(f"kmtl.export: error: {e}")
    except OSError as e:
      sys.exit(f"kmtl.export: error: --export_dir={_EXPORT_DIR.value}: {e.strerror or e}")
    print(f"exported {path}")

  app.run(main)
