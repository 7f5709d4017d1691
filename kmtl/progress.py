"""One line of progress per epoch: a Keras progress bar on a terminal, a log line otherwise."""

import math

from absl import logging

from kmtl import metrics as metrics_lib


def log_epoch(record, tasks, epochs, progbar=None):
  """Reports an epoch's record: its headline validation metric per task, its training losses
  and the stopping units that stopped."""
  headline = []
  for task in tasks:
    name = metrics_lib.HEADLINE[task.kind]
    headline.append((f"{task.name}_{name}", record["val"][task.name][name]))
  if progbar is not None:
    progbar.update(record["epoch"], values=[(k, v) for k, v in headline if math.isfinite(v)])
    return
  logging.info("epoch %d/%d %.1fs train_loss %s | val %s%s", record["epoch"], epochs,
               record["seconds"],
               " ".join(f"{k}={v:.4f}" for k, v in record["train_loss"].items()),
               " ".join(f"{k}={v:.4f}" for k, v in headline),
               f" | stopped {', '.join(record['stopped'])}" if record["stopped"] else "")
