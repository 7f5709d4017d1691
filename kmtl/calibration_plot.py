"""Calibration plots of a run with uncertainty, one per task: observed against nominal coverage
of the central intervals (regression) or the reliability diagram (classification), drawn from
the curves of kmtl/uncertainty.py into `WORKDIR/calibration/<task>.png` and TensorBoard's
images (`calibration/<task>`). Needs matplotlib (pip install 'kmtl[plot]')."""

import io
import os

from absl import logging

from kmtl import atomic
from kmtl import summaries


def figure_png(task, curve):
  """The PNG bytes of one task's calibration plot."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
  ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfect calibration")
  if "nominal" in curve:
    ax.plot(curve["nominal"], curve["observed"], marker="o", label="test split")
    ax.set(xlabel="nominal coverage of the central interval", ylabel="observed coverage")
  else:
    ax.plot(curve["confidence"], curve["frequency"], marker="o", label="test split")
    ax.set(xlabel="mean predicted probability (bin)", ylabel="observed frequency")
  ax.set(xlim=(0, 1), ylim=(0, 1), title=f"{task}: calibration")
  ax.legend(loc="upper left", fontsize=8)
  buffer = io.BytesIO()
  fig.tight_layout()
  fig.savefig(buffer, format="png")
  plt.close(fig)
  return buffer.getvalue()


def write(workdir, curves):
  """Writes the plot of every task with a curve; returns the PNG paths (none without
  matplotlib)."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    logging.warning("matplotlib is not installed: no calibration plots (pip install "
                    "'kmtl[plot]')")
    return []
  images, paths = {}, []
  for task, curve in curves.items():
    if not curve:
      continue
    images[f"calibration/{task}"] = figure_png(task, curve)
    path = os.path.join(workdir, "calibration", f"{task}.png")
    with atomic.atomic_path(path) as tmp:
      with open(tmp, "wb") as f:
        f.write(images[f"calibration/{task}"])
    paths.append(path)
  if images:
    summaries.write_images(os.path.join(workdir, "tb"), images)
  return paths
