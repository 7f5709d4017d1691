"""What the Trainer needs to realise an `ImbalanceConfig`: LDS row weights, an FDS object and
Balanced MSE losses, for the regression tasks they apply to."""

import numpy as np

from kmtl.data import schema
from kmtl.imbalance import bmse
from kmtl.imbalance import fds
from kmtl.imbalance import lds
from kmtl.imbalance import smoothing


def imbalance_tasks(imbalance, tasks):
  """Indices of the tasks the imbalance methods apply to: the named ones, or every regression
  task (`config.RunConfig` has checked that they exist and are regression tasks)."""
  if not imbalance.methods:
    return []
  if not imbalance.tasks:
    return [i for i, t in enumerate(tasks) if t.kind == schema.REGRESSION]
  by_name = {t.name: i for i, t in enumerate(tasks)}
  return [by_name[name] for name in imbalance.tasks]


def imbalance_parts(imbalance, tasks, prepared, feature_dim, seed=0):
  """The Trainer arguments that realise `imbalance` (LDS weights, FDS, Balanced MSE)."""
  chosen = imbalance_tasks(imbalance, tasks)
  train_split = prepared.train
  parts = {}
  if "lds" in imbalance.methods:
    weights = np.ones((train_split.num_rows, len(tasks)), np.float32)
    for t in chosen:
      name = tasks[t].name
      weights[:, t] = lds.lds_weights(
          train_split.labels[name], train_split.masks[name], imbalance.bins,
          imbalance.reweight, imbalance.kernel, imbalance.kernel_size, imbalance.sigma,
          imbalance.kernel_form)
    parts["sample_weights"] = weights
  state = {}
  if "fds" in imbalance.methods:
    edges = {t: smoothing.bin_edges(
        train_split.labels[tasks[t].name][train_split.masks[tasks[t].name] > 0],
        imbalance.bins) for t in chosen}
    parts["feature_smoothing"] = state["fds"] = fds.FeatureSmoothing(
        chosen, edges, feature_dim, imbalance.fds_momentum, imbalance.fds_start_epoch,
        imbalance.kernel, imbalance.kernel_size, imbalance.sigma, imbalance.kernel_form)
  if "bmse" in imbalance.methods:
    names = [tasks[t].name for t in chosen]
    balanced = state["bmse"] = bmse.BalancedMSE(
        {n: train_split.labels[n] for n in names}, {n: train_split.masks[n] for n in names},
        imbalance.bmse_init_noise, seed)
    parts["batch_losses"] = {n: balanced.loss_fn(n) for n in names}
    parts["extra_task_variables"] = {n: [balanced.noise_sigma[n]] for n in names}
  if state:
    parts["extra_state"] = state
  return parts
