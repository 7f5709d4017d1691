"""A run's working-directory files, each written and read here and nowhere else.

- `config.json`: the `config.RunConfig` the run was started with;
- `preprocessing.json`: the fitted scalers (feature names, test-condition encodings, means and
  scales over the features then the encoded conditions, and per target its
  kind, transform, unit, mean and scale), which export puts inside the serving graph;
- `history.jsonl`: one JSON line per epoch, the trainer's record;
- `metrics.json`: the final result (test and validation metrics, how each task trained).
JSON holds plain numbers only: NaN and infinities (undefined metrics) are written as null.
"""

import json
import os

import numpy as np

from kmtl import atomic
from kmtl import config as config_lib

CONFIG, PREPROCESSING, HISTORY, METRICS = ("config.json", "preprocessing.json",
                                           "history.jsonl", "metrics.json")
DATA = "data.json"  # the fingerprint of the data a run trains on, checked on --resume


class RunFileError(ValueError):
  """A run file is missing or unreadable; the message names it."""


def json_safe(value):
  """Plain JSON: NumPy scalars as numbers, NaN and infinities as null (undefined metrics)."""
  if isinstance(value, dict):
    return {k: json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(v) for v in value]
  if isinstance(value, (np.floating, np.integer)):
    value = value.item()
  if isinstance(value, float) and not np.isfinite(value):
    return None
  return value


def write_json(path, value):
  """`value` as indented plain JSON at `path`, atomically."""
  atomic.write_text(path, json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


def read(workdir, name):
  """The parsed JSON file `name` of a run; RunFileError if it is missing or unreadable."""
  path = os.path.join(workdir, name)
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise RunFileError(f"{path}: missing; is {workdir} a kmtl run?") from None
  except (OSError, ValueError) as e:
    raise RunFileError(f"{path}: unreadable: {e}") from None


def write_config(workdir, cfg):
  atomic.write_text(os.path.join(workdir, CONFIG), config_lib.to_json(cfg) + "\n")


def write_data(workdir, data):
  write_json(os.path.join(workdir, DATA), {"fingerprint": data.fingerprint(),
                                            "rows": int(data.num_rows)})


def preprocessing(prepared, data, variance_scales=None):
  """The fitted scalers as plain numbers, with each regression task's variance scale where the
  run recalibrated its uncertainty (kmtl/uncertainty.py): what `preprocessing.json` holds."""
  variance_scales = variance_scales or {}
  return {
      "feature_names": list(data.feature_names),
      "conditions": prepared.condition_encoders,
      "feature_mean": prepared.feature_scaler.mean_.tolist(),
      "feature_scale": prepared.feature_scaler.scale_.tolist(),
      "targets": {name: {"kind": s.task.kind, "transform": s.task.transform, "unit": s.task.unit,
                         "mean": s.mean, "scale": s.scale, "classes": list(s.task.classes),
                         **({"variance_scale": variance_scales[name]}
                            if name in variance_scales else {})}
                  for name, s in prepared.target_scalers.items()},
  }


def write_preprocessing(workdir, prepared, data, variance_scales=None):
  write_json(os.path.join(workdir, PREPROCESSING),
             preprocessing(prepared, data, variance_scales))


def append_history(workdir, record):
  """Adds one epoch's record as a line of `history.jsonl`."""
  with open(os.path.join(workdir, HISTORY), "a", encoding="utf-8") as f:
    f.write(json.dumps(json_safe(record), allow_nan=False) + "\n")


def read_history(workdir):
  """The epoch records of `history.jsonl`, in order."""
  path = os.path.join(workdir, HISTORY)
  try:
    with open(path, encoding="utf-8") as f:
      return [json.loads(line) for line in f if line.strip()]
  except (OSError, ValueError) as e:
    raise RunFileError(f"{path}: unreadable: {e}") from None


def keep_history(workdir, keep):
  """Rewrites `history.jsonl` with the records `keep(record)` accepts, and without a last line
  that a kill cut short: what a resumed run has not checkpointed is dropped."""
  path = os.path.join(workdir, HISTORY)
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    lines = [line for line in f if line.strip()]
  kept = []
  for line in lines:
    try:
      record = json.loads(line)
    except ValueError:
      continue
    if keep(record):
      kept.append(line if line.endswith("\n") else line + "\n")
  atomic.write_text(path, "".join(kept))


def write_metrics(workdir, result):
  write_json(os.path.join(workdir, METRICS), result)
