"""The training loop: the update step (kmtl/step.py) run many times per `tf.function` call.

The training split lives in memory as tensors passed to the step function, with the epoch's
order from the data layer's sampler (kmtl/data/sampling.py), or streams from disk in chunks
of batches (kmtl/data/stream.py); an in-graph loop runs `steps_per_call` batches per call (a
whole epoch in memory by default, 512 streamed), compiled with XLA unless that is
turned off or XLA refuses an op (then it logs why and runs as a plain graph). A non-finite loss
or gradient stops the loop and names the task, epoch and step. Under a `tf.distribute`
strategy the step is kmtl/distribute.py's. Per epoch, in Python: validation losses and metrics
(kmtl/evaluation.py), early stopping (kmtl/early_stopping.py), a checkpoint, the learned
mixing (kmtl/mixing.py).
"""

import sys
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from kmtl import affinity
from kmtl import config as config_lib
from kmtl import distribute
from kmtl import early_stopping
from kmtl import epoch_record
from kmtl import evaluation
from kmtl import grad_space
from kmtl import gradients
from kmtl import losses as losses_lib
from kmtl import optimizer as optimizer_lib
from kmtl import progress
from kmtl import step as step_lib
from kmtl import task_selection
from kmtl.data import sampling
from kmtl.data import stream
from kmtl.data import streaming
from kmtl.imbalance import fds


class TrainingError(RuntimeError):
  """Training cannot go on (a non-finite loss or gradient); the message says where."""


class Trainer:
  """Trains a `models.MultiTaskNet` on `splits.PreparedData` with a surgery method."""

  def __init__(self, config, net, tasks, prepared, method, seed=0, loss_config=None,
               balanced_sampling=False, sample_weights=None, feature_smoothing=None,
               batch_losses=None, extra_task_variables=None, extra_state=None, strategy=None):
    """Args beyond the obvious: `sample_weights` [N_train, T] per-row loss weights (LDS);
    `feature_smoothing` an FDS object; `batch_losses` {task: batch loss fn} (Balanced MSE)
    with its `extra_task_variables` {task: [variables]}; `extra_state` {name: trackable} to
    checkpoint; `strategy` a `tf.distribute` strategy (kmtl/distribute.py) under whose scope
    the model, the method and this trainer are built, or None."""
    self.config, self.net, self.tasks, self.method = config, net, tuple(tasks), method
    self.loss_config = loss_config or config_lib.LossConfig()
    self.model, self.seed, self.strategy = net.model, seed, strategy
    distribute.check_supported(strategy, feature_smoothing, batch_losses)
    self.num_tasks = len(tasks)
    train = prepared.train
    self.num_train = train.num_rows
    self.batch_size = min(config.batch_size, self.num_train)
    names = [t.name for t in tasks]
    self.feature_smoothing = feature_smoothing
    self.batch_losses = batch_losses or {}
    self.extra_state = extra_state or {}
    if isinstance(train, streaming.StreamedSplit):
      self.train_tensors = None
      self.batches = stream.EpochStream(train, names, self.batch_size, seed, balanced_sampling,
                                        config.steps_per_call)
    else:
      self.train_tensors = sampling.training_tensors(train, names, sample_weights)
      self.batches = sampling.InMemoryBatches(self.train_tensors, seed, balanced_sampling,
                                              self.batch_size, config.steps_per_call)
    self.sampler = getattr(self.batches, "sampler", None)
    self.val, self.prepared = prepared.val, prepared
    self.train_probe = evaluation.training_probe(train, names, seed)
    self.evaluator = evaluation.Evaluator(self.model, tasks, prepared.target_scalers,
                                          train.num_features, self.loss_config)

    counts = [int(train.masks[n].sum()) for n in names]
    self.base_weights = tf.constant(losses_lib.task_weights(config.task_weights, counts),
                                    tf.float32)
    self.shared_vars = list(net.shared_variables)
    self.affinity = affinity.epoch_sample(
        net, tasks, self.train_probe, self.loss_config, config.learning_rate,
        self.base_weights.numpy(), seed, config.affinity_batches if config.grad_stats and
        strategy is None else 0)
    extra = extra_task_variables or {}
    self.task_vars = [v for t in names for v in list(net.task_variables[t]) + extra.get(t, [])]
    method.build(self.num_tasks, seed=seed,
                 **grad_space.stack_layout(config.grad_space, net, self.batch_size))
    self._build_state(config, names)
    self.jit_compile = config.jit_compile and strategy is None
    self.xla_refused = None  # XLA's reason, after a fallback to plain graph execution
    self._compiled_steps = tf.function(self._run_steps, jit_compile=self.jit_compile,
                                       autograph=False)

  def _build_state(self, config, names):
    """The optimizer and its schedule, the per-task counters and flags, and early stopping."""
    self.optimizer = optimizer_lib.build(config, self.shared_vars + self.task_vars,
                                         self.batches.steps)
    self.plateau = (optimizer_lib.Plateau(self.optimizer, config.lr_plateau_factor,
                                          config.lr_plateau_patience, config.min_delta)
                    if config.lr_schedule == "plateau" else None)
    self.task_active = tf.Variable(tf.ones([self.num_tasks]), trainable=False)
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.failed_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
    self.failed_task = tf.Variable(-1, dtype=tf.int64, trainable=False)
    self.optimizer_steps = tf.Variable(tf.zeros([self.num_tasks], tf.int64), trainable=False)
    self.labelled_steps = tf.Variable(tf.zeros([self.num_tasks], tf.int64), trainable=False)
    if not self.shared_vars:  # separate networks: each task stops on its own
      units = [(n, list(self.net.task_variables[n]), [i]) for i, n in enumerate(names)]
    else:
      units = [("model", list(self.model.variables), list(range(self.num_tasks)))]
    self.stopping = early_stopping.EarlyStopping(units, config.patience, config.min_delta,
                                                 config.stopping, self.num_tasks)
    # Per-task selection means something only where the tasks share weights.
    self.task_selection = (task_selection.TaskSelection(self.model.variables, self.num_tasks)
                           if config.model_selection == "per_task" and self.shared_vars
                           else None)
    self.update = step_lib.UpdateStep(
        self.net, self.tasks, self.method, self.optimizer, self.shared_vars, self.task_vars,
        self.base_weights, self.task_active, self.loss_config, config.grad_mode,
        self.feature_smoothing, self.batch_losses, config.grad_space)

  def _train_epoch(self, epoch):
    """Trains one epoch, `steps_per_call` steps per graph call (all of them by default).
    Returns the per-task mean train loss [T], mean weighted loss [T], mean method task weights
    [T] and the gradient-statistics accumulator."""
    totals = None
    for order, data, first, last in self.batches.calls(epoch):
      part = self._call_steps(epoch, order, data, first, last)
      totals = part if totals is None else tf.nest.map_structure(tf.add, totals, part)
      if int(self.failed_step.numpy()) >= 0:
        break
    count = totals["loss_count"]
    return (tf.math.divide_no_nan(totals["loss_sum"], count),
            tf.math.divide_no_nan(totals["weighted_sum"], count),
            totals["weight_sum"] / max(self.batches.steps, 1), totals["stats"])

  def _call_steps(self, epoch, order, data, first, last):
    """One graph call over steps [first, last) of `order` into the training tensors `data`.
    If XLA refuses an op, log it and go on without XLA."""
    args = (epoch, order, data, tf.constant(first), tf.constant(last))
    try:
      return self._compiled_steps(*args)
    except tf.errors.InvalidArgumentError as e:
      if not self.jit_compile or "XLA" not in str(e):
        raise
      self.xla_refused = str(e).splitlines()[0][:300]
      logging.warning("XLA cannot compile the training steps (%s); continuing without XLA",
                      self.xla_refused)
      self.jit_compile = False
      self._compiled_steps = tf.function(self._run_steps, autograph=False)
      return self._compiled_steps(*args)

  def checkpoint(self):
    """Everything a resumed run needs to continue exactly where it stopped, dropout's generator
    states included (Keras leaves them out of the model's, so a resume would redraw masks)."""
    dropout_rng = [layer.seed_generator.state for layer in self.model.layers
                   if getattr(layer, "seed_generator", None) is not None]
    extra = dict(self.extra_state)
    if self.plateau is not None:
      extra["lr_plateau"] = self.plateau
    if self.task_selection is not None:
      extra["task_selection"] = self.task_selection
    return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, method=self.method,
                               stopping=self.stopping, task_active=self.task_active,
                               epoch=self.epoch, optimizer_steps=self.optimizer_steps,
                               labelled_steps=self.labelled_steps, dropout_rng=dropout_rng,
                               **extra)

  def _train_step(self, data, order, step, epoch, totals, with_stats):
    """Runs step `step` of the epoch on `data` (the training tensors) and adds its
    measurements to `totals`."""
    rows = sampling.batch_rows(order, step, self.batch_size)
    x, y, m, sw = sampling.gather_batch(data, rows)
    if self.strategy is None:
      raw, weights, finite, task_finite, stack, shared_grads = self.update(
          x, y, m, sw, epoch, with_stats, rows)
    else:
      raw, weights, finite, task_finite, stack, shared_grads = distribute.step(
          self.update, self.strategy, x, y, m, sw)
    # Record the first failure without branching; the loops stop on it.
    first_failure = tf.logical_and(tf.logical_not(finite), self.failed_step < 0)
    bad_task = tf.cast(tf.argmin(tf.cast(task_finite, tf.int32)), tf.int64)
    self.failed_task.assign(tf.where(first_failure, tf.where(
        tf.reduce_all(task_finite), tf.constant(-1, tf.int64), bad_task), self.failed_task))
    self.failed_step.assign(tf.where(first_failure, tf.cast(step, tf.int64), self.failed_step))
    present = tf.cast(tf.reduce_sum(m, axis=0) > 0, tf.float32)
    self.optimizer_steps.assign_add(tf.cast(self.task_active > 0, tf.int64))
    self.labelled_steps.assign_add(tf.cast(present * self.task_active > 0, tf.int64))
    totals = {
        **totals,
        "loss_sum": totals["loss_sum"] + raw * present,
        "weighted_sum": totals["weighted_sum"] + raw * present * self.base_weights * weights,
        "loss_count": totals["loss_count"] + present,
        "weight_sum": totals["weight_sum"] + weights,
    }
    if with_stats and stack is not None:
      stats = gradients.accumulate(totals["stats"], stack, present * self.task_active, 1.0)
      totals["stats"] = gradients.add_update_norm(stats, shared_grads)
    return totals

  def _run_steps(self, epoch, order, data, first, last):
    """Trains steps [first, last) of the epoch in-graph; returns their summed measurements.

    With gradient statistics on, every `grad_stats_every`-th step also records them (building
    the [T, P] stack if the method does not): a branch inside one flat loop, which XLA runs
    faster than a loop of chunks. The loop and the branch are written as TF ops and traced
    without AutoGraph, which would otherwise rewrite the source of every function the step
    calls (a sixth of the CPU time of the short runs in tests/test_train.py).
    """
    zeros = tf.zeros([self.num_tasks])
    totals = {"loss_sum": zeros, "weighted_sum": zeros, "loss_count": zeros,
              "weight_sum": zeros, "stats": gradients.zeros(self.num_tasks)}
    every = self.config.grad_stats_every

    def train(step, totals):
      if not self.config.grad_stats:
        return step + 1, self._train_step(data, order, step, epoch, totals, with_stats=False)
      return step + 1, tf.cond(
          tf.equal((step - first) % every, 0),
          lambda: self._train_step(data, order, step, epoch, totals, with_stats=True),
          lambda: self._train_step(data, order, step, epoch, totals, with_stats=False))

    _, totals = tf.while_loop(lambda step, _: (step < last) & (self.failed_step < 0), train,
                              (first, totals))
    return totals

  def evaluate(self, split, final=False):
    """(task losses [T] in model units, {task: metrics in original units}) on SplitArrays."""
    return self.evaluator.evaluate(split, final)

  def _has_val(self):
    return np.array([self.val.masks[t.name].sum() > 0 for t in self.tasks])

  def _unit_scores(self, val_losses):
    return self.stopping.scores(val_losses, self._has_val())

  def fit(self, save=None, on_epoch_end=None):
    """Trains from `self.epoch` on until every unit stopped or `epochs` ran; restores the best
    weights. `save(epoch)` checkpoints after each epoch. Returns the per-epoch history (a list
    of dicts)."""
    history = []
    progbar = keras.utils.Progbar(self.config.epochs) if sys.stderr.isatty() else None
    while int(self.epoch.numpy()) < self.config.epochs and not self.stopping.stopped.numpy().all():
      epoch = int(self.epoch.numpy()) + 1
      start = time.perf_counter()
      train_losses, weighted_losses, weights, stats = self._train_epoch(
          tf.constant(epoch, tf.int64))
      if int(self.failed_step.numpy()) >= 0:
        task = int(self.failed_task.numpy())
        where = f"task {self.tasks[task].name!r}" if task >= 0 else "a gradient"
        raise TrainingError(f"non-finite loss or gradient in {where} at epoch {epoch}, step "
                            f"{int(self.failed_step.numpy()) + 1}; nothing of this epoch "
                            "was saved")
      self.method.end_epoch(train_losses.numpy())
      diagnostics = self.method.epoch_diagnostics()
      if self.feature_smoothing is not None:
        fds.update_from_split(self.feature_smoothing, self.net, self.tasks, self.prepared.train)
      # Validation, early stopping and the epoch's metrics read the moving average, if kept.
      with optimizer_lib.averaged_weights(self.optimizer, self.shared_vars + self.task_vars):
        val_losses, val_metrics = self.evaluate(self.val)
        scores = self._unit_scores(val_losses)
        newly_stopped = self.stopping.update(scores, epoch)
        if self.task_selection is not None:
          self.task_selection.update(val_losses, self._has_val(), epoch)
        for u in newly_stopped:
          for t in self.stopping.unit_tasks[u]:
            self.task_active[t].assign(0.0)
        self.epoch.assign(epoch)
        record = epoch_record.build(self, epoch, time.perf_counter() - start,
                                    (train_losses, val_losses, weighted_losses, weights),
                                    val_metrics, [self.stopping.names[u] for u in newly_stopped])
      if self.plateau is not None:
        self.plateau.update(float(np.mean(scores)))
      if diagnostics:
        record["method"] = diagnostics
      if self.config.grad_stats:
        record["grad"] = gradients.summarize(stats, [t.name for t in self.tasks])
        record["grad"].update(self.affinity.sample(epoch) if self.affinity else {})
      history.append(record)
      progress.log_epoch(record, self.tasks, self.config.epochs, progbar)
      # Record, then checkpoint: a kill between them reruns the epoch, never loses its record.
      if on_epoch_end is not None:
        on_epoch_end(record)
      if save is not None:
        save(epoch)
    self.stopping.restore_best()
    return history

  def epochs_done(self):
    """{None: epochs run}: history records of a multi-task run name no task."""
    return {None: int(self.epoch.numpy())}

  def mixing_features(self):
    """The training features the learned mixing is summarised over: a streamed split's
    training probe, else every training row."""
    return getattr(self.prepared.train, "features", self.train_probe.features)

  def best_epochs(self):
    """{stopping unit: its best epoch}."""
    return dict(zip(self.stopping.names, self.stopping.best_epoch.numpy().tolist()))

  def task_report(self):
    """{task: its labelled training rows, the optimizer steps its parameters took while it was
    training, the steps whose batch held a label of it, and the epochs run}."""
    steps, labelled = self.optimizer_steps.numpy(), self.labelled_steps.numpy()
    # A unit has trained best_epoch + bad_epochs epochs, up to now or to its stop.
    unit_epochs = self.stopping.best_epoch.numpy() + self.stopping.bad_epochs.numpy()
    epochs = {t: int(unit_epochs[u]) for u, tasks in enumerate(self.stopping.unit_tasks)
              for t in tasks}
    return {t.name: {"train_rows": int(self.prepared.train.masks[t.name].sum()),
                     "optimizer_steps": int(steps[i]), "labelled_steps": int(labelled[i]),
                     "epochs": epochs[i]}
            for i, t in enumerate(self.tasks)}
