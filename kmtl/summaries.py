"""TensorBoard summaries: the only module that writes `tf.summary`.

Under `workdir/tb`: `train/` and `val/` hold per-epoch scalars (`{task}/loss`,
`{task}/weighted_loss`, `{task}/{metric}`, `learning_rate`, `task_weight/{task}`,
`grad/norm/{task}`, `grad/cosine/{a}_vs_{b}`, `grad/angle_deg/{a}_vs_{b}`,
`grad/conflict_fraction/{a}_vs_{b}`, `grad/update_norm`, what the method measured of itself
(`method/solver_residual`, the epoch's largest residual of an in-graph solve), sampled after
each epoch
`grad/colabelled_cosine/{a}_vs_{b}` and `grad/lookahead/{a}_to_{b}` (kmtl/affinity.py),
`task_graph/{t}_from_{s}` and the
`task_graph` heatmap image, and for the adaptive architectures `mixing/{matrix}/{row}_{column}`
(gate weights over experts, cross-stitch matrices; a task's mean attention as
`mixing/attention/{task}_mean`) with a `mixing/{matrix}` heatmap each; training-split metrics come from up to 4,096 labelled training rows
per task, drawn once per run); the root holds the hparams of the run, the custom-scalars layout
(each metric across tasks on one chart), the final `test/{task}/{metric}` scalars and, for a
run with uncertainty, the calibration plots (kmtl/calibration_plot.py).
"""

import os

import numpy as np
from PIL import Image
from PIL import ImageDraw
import tensorflow as tf
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary
from tensorboard.plugins.hparams import api as hp

from kmtl import metrics as metrics_lib

_CELL = 48
_MARGIN = 96


def write_images(logdir, images):
  """PNG images {tag: bytes} into an event file of `logdir`, at step 0."""
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    for tag, png in images.items():
      tf.summary.image(tag, tf.io.decode_png(png, channels=4)[None], step=0)
  writer.close()


def hparams(cfg):
  """The run's settings as the flat values TensorBoard's HParams dashboard compares."""
  weights = cfg.train.task_weights
  dropout = cfg.model.dropout
  return {"arch": cfg.train.arch, "surgery": cfg.train.surgery, "seed": cfg.seed,
          "lr": cfg.train.learning_rate, "batch_size": cfg.train.batch_size,
          "weight_decay": cfg.train.weight_decay, "lr_schedule": cfg.train.lr_schedule,
          "ema": cfg.train.ema_momentum, "input_noise": cfg.model.input_noise,
          "layer_norm": cfg.model.layer_norm,
          "dropout": dropout if isinstance(dropout, float) else ",".join(map(str, dropout)),
          "trunk_units": ",".join(map(str, cfg.model.trunk_units)),
          "head_units": ",".join(map(str, cfg.model.head_units)),
          "task_weights": weights if isinstance(weights, str) else ",".join(map(str, weights)),
          "imbalance": ",".join(cfg.imbalance.methods) or "none",
          "balanced_sampling": cfg.data.balanced_sampling}


def task_graph_image(adjacency, task_names):
  """[1, H, W, 3] uint8 heatmap of A (white 0 to dark blue 1), values in the cells, task names
  on both axes: row t is what task t's head reads, column s the tower it reads from."""
  return heatmap_image(adjacency, task_names, task_names, "row: reader, column: source")


def heatmap_image(values, rows, columns, caption):
  """[1, H, W, 3] uint8 heatmap of a matrix with values in [0, 1] (white 0 to dark blue 1),
  with row names, and column names and values in the cells where there is room."""
  a = np.asarray(values, np.float64)
  cell = _CELL if a.shape[1] <= 16 else 4
  image = Image.new("RGB", (_MARGIN + cell * a.shape[1], _MARGIN + _CELL * a.shape[0]), "white")
  draw = ImageDraw.Draw(image)
  for i in range(a.shape[0]):
    for j in range(a.shape[1]):
      shade = 1.0 - float(np.clip(a[i, j], 0.0, 1.0))
      x, y = _MARGIN + j * cell, _MARGIN + i * _CELL
      draw.rectangle([x, y, x + cell - 1, y + _CELL - 1], outline="grey" if cell == _CELL else None,
                     fill=(int(30 + 225 * shade), int(60 + 195 * shade), 255))
      if cell == _CELL:
        draw.text((x + 6, y + _CELL // 2 - 5), f"{a[i, j]:.2f}",
                  fill="white" if a[i, j] > 0.5 else "black")
  for k, name in enumerate(rows):
    draw.text((4, _MARGIN + k * _CELL + _CELL // 2 - 5), str(name)[:14], fill="black")
  if cell == _CELL:
    for k, name in enumerate(columns):
      draw.text((_MARGIN + k * cell + 2, _MARGIN - 14 - 12 * (k % 2)), str(name)[:8],
                fill="black")
  draw.text((4, 4), caption, fill="black")
  return np.asarray(image, np.uint8)[None]


def mixing_scalars(mixing):
  """[(tag, value)] of the learned mixing: every cell of a matrix of up to 16 columns, and
  each row's mean of a wider one (attention over the shared units)."""
  out = []
  for name, matrix in mixing.items():
    a = np.asarray(matrix["values"], np.float64)
    for i, row in enumerate(matrix["rows"]):
      if a.shape[1] <= 16:
        out += [(f"mixing/{name}/{row}_{column}", a[i, j])
                for j, column in enumerate(matrix["columns"])]
      else:
        out.append((f"mixing/{name}/{row}_mean", float(a[i].mean())))
  return out


def _layout(metric_names):
  per_metric = [layout_pb2.Chart(title=name, multiline=layout_pb2.MultilineChartContent(
      tag=[rf"^[^/]+/{name}$"])) for name in metric_names]
  gradients = [layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(
      tag=[rf"^{prefix}/.*"])) for title, prefix in (
          ("gradient norm per task", "grad/norm"), ("cosine between tasks", "grad/cosine"),
          ("angle between tasks (deg)", "grad/angle_deg"),
          ("fraction of steps in conflict", "grad/conflict_fraction"),
          ("cosine on co-labelled rows (sampled)", "grad/colabelled_cosine"),
          ("lookahead affinity, a step on a lowers b's loss by (sampled)", "grad/lookahead"),
          ("task weights", "task_weight"), ("task graph edges", "task_graph"),
          ("learned mixing", "mixing"))]
  return layout_pb2.Layout(category=[
      layout_pb2.Category(title="each metric across tasks", chart=per_metric),
      layout_pb2.Category(title="gradient dynamics", chart=gradients)])


def _scalar_writer(writer):
  """fn(pairs, step) writing (tag, value) pairs to `writer` in one graph call, traced once per
  tag list, rather than one eager call per scalar. One per writer: a traced summary op keeps
  the writer it was traced with."""

  @tf.function(autograph=False)
  def write(tags, values, step):
    with writer.as_default():
      for i, tag in enumerate(tags):
        tf.summary.scalar(tag, values[i], step=step)

  def write_pairs(pairs, step):
    if pairs:
      tags, values = zip(*pairs)
      write(tags, tf.constant(values, tf.float32), tf.constant(step, tf.int64))
  return write_pairs


class Writer:
  """Writes one run's summaries; `write_epoch` takes the trainer's per-epoch record."""

  def __init__(self, logdir, tasks, hparams):
    self.tasks = tuple(tasks)
    self.names = [t.name for t in tasks]
    self.root = tf.summary.create_file_writer(logdir)
    self.train = tf.summary.create_file_writer(os.path.join(logdir, "train"))
    self.val = tf.summary.create_file_writer(os.path.join(logdir, "val"))
    self._train_scalars, self._val_scalars = _scalar_writer(self.train), _scalar_writer(self.val)
    metric_names = ["loss", "weighted_loss"]
    for kind in metrics_lib.METRICS_OF_KIND.values():
      metric_names += [m for m in kind if m not in ("threshold", "tail_mae") + tuple(metric_names)]
    test_metrics = [hp.Metric(f"test/{t.name}/{metrics_lib.HEADLINE[t.kind]}") for t in tasks]
    with self.root.as_default():
      tf.summary.experimental.write_raw_pb(
          custom_scalar_summary.pb(_layout(metric_names)).SerializeToString(), step=0)
      hp.hparams_config(hparams=[hp.HParam(k) for k in hparams], metrics=test_metrics)
      hp.hparams(hparams)
    self.root.flush()

  @staticmethod
  def _task_scalars(prefix_values):
    return [(f"{name}/{metric}", value) for name, values in prefix_values.items()
            for metric, value in values.items()
            if metric not in ("count", "threshold") and value is not None and np.isfinite(value)]

  def write_epoch(self, record):
    """One epoch's scalars; a single-task record (the baseline's) holds only its own task."""
    step = record["epoch"]
    names = [name for name in self.names if name in record["train_loss"]]
    train = []
    for name in names:
      train += [(f"{name}/loss", record["train_loss"][name]),
                (f"{name}/weighted_loss", record["weighted_loss"][name]),
                (f"task_weight/{name}", record["task_weights"][name])]
    train += self._task_scalars(record.get("train", {}))
    train.append(("learning_rate", record["learning_rate"]))
    grad = record.get("grad")
    if grad:
      train += [(f"grad/norm/{name}", value) for name, value in grad["norm"].items()]
      for stat in ("cosine", "angle_deg", "conflict_fraction", "colabelled_cosine",
                   "lookahead"):
        train += [(f"grad/{stat}/{pair.replace(':', '_vs_').replace('->', '_to_')}", value)
                  for pair, value in grad.get(stat, {}).items()]
      if "update_norm" in grad:
        train.append(("grad/update_norm", grad["update_norm"]))
    train += [(f"method/{name}", value) for name, value in record.get("method", {}).items()]
    if "task_graph" in record:
      a = np.asarray(record["task_graph"])
      train += [(f"task_graph/{reader}_from_{source}", a[i, j])
                for i, reader in enumerate(self.names) for j, source in enumerate(self.names)]
    train += mixing_scalars(record.get("mixing", {}))
    val = [(f"{name}/loss", record["val_loss"][name]) for name in names]
    val += self._task_scalars(record["val"])
    self._train_scalars(train, step)
    self._val_scalars(val, step)
    if "task_graph" in record:
      with self.train.as_default():
        tf.summary.image("task_graph", task_graph_image(record["task_graph"], self.names),
                         step=step)
    for name, matrix in record.get("mixing", {}).items():
      with self.train.as_default():
        tf.summary.image(f"mixing/{name}", heatmap_image(
            matrix["values"], matrix["rows"], matrix["columns"], name), step=step)
    self.train.flush()
    self.val.flush()

  def write_final(self, test_metrics, step):
    with self.root.as_default():
      for name, values in test_metrics.items():
        for metric, value in values.items():
          if metric not in ("count", "threshold") and value is not None and np.isfinite(value):
            tf.summary.scalar(f"test/{name}/{metric}", value, step=step)
    self.root.flush()

  def close(self):
    for writer in (self.root, self.train, self.val):
      writer.close()
