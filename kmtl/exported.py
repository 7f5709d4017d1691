"""An exported model as `kmtl predict` finds it: its newest complete version and the metadata
kmtl stored beside it. Plain files only, so a wrong `--model` is reported before TensorFlow
loads."""

import json
import os

METADATA = os.path.join("assets.extra", "kmtl_metadata.json")


class ExportError(ValueError):
  """A run cannot be exported, or an export cannot be used (missing or damaged files)."""


def resolve_version(model):
  """A version directory: `model` itself if it holds saved_model.pb, else its newest version."""
  if os.path.exists(os.path.join(model, "saved_model.pb")):
    return model
  versions = [d for d in os.listdir(model) if d.isdigit()] if os.path.isdir(model) else []
  if not versions:
    raise ExportError(f"--model={model}: no saved_model.pb and no numeric version directory")
  newest = os.path.join(model, str(max(int(v) for v in versions)))
  if not os.path.exists(os.path.join(newest, "saved_model.pb")):
    raise ExportError(f"{newest}: no saved_model.pb; an incomplete or damaged export")
  return newest


def read_metadata(version_dir):
  """The metadata kmtl exported with the model (schema, tasks, training config, metrics)."""
  path = os.path.join(version_dir, METADATA)
  if not os.path.exists(path):
    raise ExportError(f"{path}: missing; was this model exported by kmtl?")
  try:
    with open(path, encoding="utf-8") as f:
      metadata = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ExportError(f"{path}: unreadable ({e})") from None
  if not isinstance(metadata, dict) or "feature_names" not in metadata:
    raise ExportError(f"{path}: not kmtl export metadata (no feature_names)")
  return metadata
