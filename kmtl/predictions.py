"""Predictions of an exported model (kmtl/export.py) for a validated feature table, and the
columns `kmtl predict` writes from them."""

import numpy as np

from kmtl import exported
from kmtl import quiet


def predict_table(version_dir, table, chunk=1024):
  """{output name: [N]} from the SavedModel for a validated `io.FeatureTable`, `chunk` rows
  per call (the out-of-domain check compares each row with every training composition)."""
  tf = quiet.import_tensorflow()
  try:
    serve = tf.saved_model.load(version_dir).signatures["serving_default"]
  except (OSError, ValueError, KeyError, tf.errors.OpError) as e:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise exported.ExportError(f"{version_dir}: unreadable SavedModel ({reason})") from None
  conditions = {name: values if values.dtype == object else values.astype("float32")
                for name, values in table.conditions.items()}
  parts = []
  for start in range(0, max(len(table.features), 1), chunk):
    rows = slice(start, start + chunk)
    outputs = serve(features=tf.constant(table.features[rows]),
                    **{name: tf.constant(values[rows]) for name, values in conditions.items()})
    parts.append({name: value.numpy() for name, value in outputs.items()})
  return {name: np.concatenate([p[name] for p in parts]) for name in sorted(parts[0])}


def output_columns(outputs, targets):
  """{column: [N]}: the serving outputs, with a multiclass task's [N, C] probabilities as one
  column per class and its class names as text; in the order of the tasks in `targets`, each
  task's prediction before its spread and interval columns, the out-of-domain columns last."""
  columns = {}
  tasks = list(targets)
  def place(name):
    owner = next((i for i, task in enumerate(tasks)
                  if name == task or (name.startswith(task + "_") and name not in tasks)), None)
    return (len(tasks), 0, name) if owner is None else (owner, name != tasks[owner], name)
  for name in sorted(outputs, key=place):
    values = outputs[name]
    if values.ndim == 2:  # a multiclass task's probabilities, or their spread over members
      base, _, spread = name.partition("_probabilities")
      for c, class_name in enumerate(targets[base]["classes"]):
        columns[f"{base}_p_{class_name}{spread}"] = values[:, c]
    elif values.dtype == object:
      columns[name] = [v.decode() for v in values]
    else:
      columns[name] = values
  return columns
