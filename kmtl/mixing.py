"""What an architecture learned about sharing, as named matrices (rows, columns, values): the
task graph of `structured`, each task's mean gate weights over the experts of `mmoe` and each
`ple` level, the cross-stitch matrices, and each task's mean attention over the shared units.
TensorBoard draws them each epoch (kmtl/summaries.py) and the export's metadata keeps the last.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # pylint: disable=g-import-not-at-top
import numpy as np

from kmtl import adaptive

PROBE_ROWS = 1024  # gates and attention are averaged over the first rows given, up to this


def _matrix(rows, columns, values):
  return {"rows": list(rows), "columns": list(columns),
          "values": np.asarray(values, np.float64).round(6).tolist()}


def _layers_of(model, kind):
  return [layer for layer in model.layers if isinstance(layer, kind)]


def reader(model, task_names, task_graph=None):
  """A function of [n, F] scaled features -> {name: matrix} for the model, or None when it
  learns no mixing. Gates and attention are averaged over the rows given (at most
  `PROBE_ROWS` of them)."""
  order = lambda layer: next((i for i, t in enumerate(task_names)
                             if layer.name.endswith(f"{t}_gate") or layer.name == f"{t}_attention"),
                            len(task_names))
  gates = sorted(_layers_of(model, adaptive.Gate), key=order)
  attention = sorted(_layers_of(model, adaptive.TaskAttention), key=order)
  stitches = _layers_of(model, adaptive.CrossStitch)
  if not (gates or attention or stitches or task_graph is not None):
    return None
  probes = gates + attention
  inputs = keras.Model(model.input, [_gate_input(layer) for layer in probes]) if probes else None

  def read(features):
    out = {}
    if task_graph is not None:
      out["task_graph"] = _matrix(task_names, task_names, task_graph.adjacency())
    values = inputs(np.asarray(features[:PROBE_ROWS])) if inputs is not None else []
    values = values if isinstance(values, (list, tuple)) else [values]
    grouped = {}
    for layer, x in zip(gates, values[:len(gates)]):
      key, row = _gate_group(layer.name, task_names)
      grouped.setdefault(key, []).append((row, np.asarray(layer.gate_weights(x)).mean(axis=0)))
    for key, rows in grouped.items():
      out[key] = _matrix([r for r, _ in rows],
                         [f"expert_{e + 1}" for e in range(len(rows[0][1]))],
                         [v for _, v in rows])
    if attention:
      masks = [np.asarray(layer.mask(x)).mean(axis=0) for layer, x in
               zip(attention, values[len(gates):])]
      out["attention"] = _matrix([l.name.removesuffix("_attention") for l in attention],
                                 [f"unit_{u + 1}" for u in range(len(masks[0]))], masks)
    for layer in stitches:
      out[layer.name] = _matrix(task_names, task_names, layer.alpha.numpy())
    return out

  return read


def _gate_group(name, task_names):
  """(matrix name, row) of a gate: `{t}_gate` -> ("gates", t), `level1_{t}_gate` ->
  ("level1_gates", t); a gate of no task (PLE's shared gate) is a matrix of its own."""
  for t in task_names:
    if name.endswith(f"{t}_gate"):
      return name[:-len(f"{t}_gate")] + "gates", t
  return name, "shared"


def _gate_input(layer):
  """The tensor a gate computes its weights from (or the units an attention mask reads)."""
  return layer.input[0] if isinstance(layer, adaptive.Gate) else layer.input
