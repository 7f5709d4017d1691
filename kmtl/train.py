"""The training loop: a custom GradientTape step run many times per `tf.function` call.

The training split lives in memory as tensors passed to the step function; the epoch's shuffle
is a stateless permutation of (seed, epoch), and an in-graph loop runs `steps_per_call` batches
per call (a whole epoch by default), compiled with XLA unless that is turned off or XLA refuses
an op (then it logs why and runs as a plain graph). Each step computes the masked task losses
[T], scales them by the configured task weights, stacks the per-task gradients of the shared
parameters as [T, P] (when the method needs them), lets the surgery method combine them, and
applies one Adam update: shared parameters take the combined gradient, task-specific parameters
the gradient of sum_t w_t L_t with the method's task weights w. Regularisation losses
(`model.losses`) are added once, after the method. Under a `tf.distribute` strategy the step is
kmtl/distribute.py's.

Per epoch, in Python: validation losses and metrics, early stopping (one criterion for the
model, or one per task for `independent`, as separate single-task runs would), a checkpoint.
"""

import math
import sys
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import distribute
from kmtl import early_stopping
from kmtl import gradients
from kmtl import losses as losses_lib
from kmtl import metrics as metrics_lib
from kmtl.data import schema
from kmtl.data import splits

# Training-split metrics each epoch use at most this many labelled rows per task.
PROBE_ROWS_PER_TASK = 4096

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
    self.model = net.model
    self.seed = seed
    self.strategy = strategy
    distribute.check_supported(strategy, feature_smoothing, batch_losses)
    self.num_tasks = len(tasks)
    train = prepared.train
    self.num_train = train.num_rows
    self.batch_size = min(config.batch_size, self.num_train)
    names = [t.name for t in tasks]
    # (features, labels, masks, sample weights) of the training split. They are passed to the
    # epoch function as arguments: captured as constants, XLA would fold them into the program.
    labels = np.stack([train.labels[n] for n in names], axis=1)
    masks = tf.constant(np.stack([train.masks[n] for n in names], axis=1))
    self.train_tensors = (
        tf.constant(train.features), tf.constant(labels), masks,
        tf.ones_like(masks) if sample_weights is None
        else tf.constant(sample_weights, tf.float32))
    self.feature_smoothing = feature_smoothing
    self.batch_losses = batch_losses or {}
    self.extra_state = extra_state or {}
    self.balanced_sampling = balanced_sampling
    labelled = [np.flatnonzero(train.masks[n] > 0) for n in names]
    self.rows_by_task = tf.ragged.constant([r for r in labelled if len(r)], dtype=tf.int32)
    self.val, self.prepared = prepared.val, prepared
    self.train_probe = self._probe(train, names, seed)

    counts = [int(train.masks[n].sum()) for n in names]
    self.base_weights = tf.constant(losses_lib.task_weights(config.task_weights, counts),
                                    tf.float32)
    self.shared_vars = list(net.shared_variables)
    extra = extra_task_variables or {}
    self.task_vars = [v for t in names for v in list(net.task_variables[t]) + extra.get(t, [])]
    self.shared_sizes = [int(np.prod(v.shape)) for v in self.shared_vars]
    method.build(self.num_tasks, self._norm_columns(), seed=seed)

    self.optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    self.optimizer.build(self.shared_vars + self.task_vars)
    self.task_active = tf.Variable(tf.ones([self.num_tasks]), trainable=False)
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.failed_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
    self.failed_task = tf.Variable(-1, dtype=tf.int64, trainable=False)
    self.optimizer_steps = tf.Variable(tf.zeros([self.num_tasks], tf.int64), trainable=False)
    self.labelled_steps = tf.Variable(tf.zeros([self.num_tasks], tf.int64), trainable=False)
    if not self.shared_vars:  # separate networks: each task stops on its own
      units = [(n, list(net.task_variables[n]), [i]) for i, n in enumerate(names)]
    else:
      units = [("model", list(self.model.variables), list(range(self.num_tasks)))]
    self.stopping = early_stopping.EarlyStopping(units, config.patience, config.min_delta,
                                                 config.stopping, self.num_tasks)
    self.epoch_metrics = {t.name: metrics_lib.EpochMetrics(t) for t in tasks}
    self._order = tf.function(self._epoch_order)
    self.jit_compile = config.jit_compile and strategy is None
    self.xla_refused = None  # XLA's reason, after a fallback to plain graph execution
    self._compiled_steps = tf.function(self._run_steps, jit_compile=self.jit_compile)
    self._predict = tf.function(
        lambda x: self.model(x, training=False),
        input_signature=[tf.TensorSpec([None, train.features.shape[1]], tf.float32)])

  @staticmethod
  def _probe(train, names, seed):
    """The training rows whose per-epoch metrics are reported: for each task up to
    `PROBE_ROWS_PER_TASK` of its labelled rows (all of them for rare tasks), drawn once."""
    rng = np.random.default_rng(seed)
    chosen = set()
    for name in names:
      rows = np.flatnonzero(train.masks[name] > 0)
      if len(rows) > PROBE_ROWS_PER_TASK:
        rows = rng.choice(rows, PROBE_ROWS_PER_TASK, replace=False)
      chosen.update(rows.tolist())
    rows = np.array(sorted(chosen), dtype=np.int64)
    return splits.SplitArrays(train.features[rows],
                              {n: v[rows] for n, v in train.labels.items()},
                              {n: v[rows] for n, v in train.masks.items()})

  def _train_epoch(self, epoch):
    """Trains one epoch, `steps_per_call` steps per graph call (all of them by default).
    Returns the per-task mean train loss [T], mean weighted loss [T], mean method task weights
    [T] and the gradient-statistics accumulator."""
    order = self._order(epoch)
    steps = self.num_train // self.batch_size
    per_call = self.config.steps_per_call or steps
    totals = None
    for first in range(0, steps, per_call):
      part = self._call_steps(epoch, order, first, min(first + per_call, steps))
      totals = part if totals is None else tf.nest.map_structure(tf.add, totals, part)
      if int(self.failed_step.numpy()) >= 0:
        break
    count = totals["loss_count"]
    return (tf.math.divide_no_nan(totals["loss_sum"], count),
            tf.math.divide_no_nan(totals["weighted_sum"], count),
            totals["weight_sum"] / max(steps, 1), totals["stats"])

  def _call_steps(self, epoch, order, first, last):
    """One graph call over steps [first, last). If XLA refuses an op, log it and go on
    without XLA."""
    args = (epoch, order, self.train_tensors, tf.constant(first), tf.constant(last))
    try:
      return self._compiled_steps(*args)
    except tf.errors.InvalidArgumentError as e:
      if not self.jit_compile or "XLA" not in str(e):
        raise
      self.xla_refused = str(e).splitlines()[0][:300]
      logging.warning("XLA cannot compile the training steps (%s); continuing without XLA",
                      self.xla_refused)
      self.jit_compile = False
      self._compiled_steps = tf.function(self._run_steps)
      return self._compiled_steps(*args)

  def _norm_columns(self):
    """Columns of the [T, P] stack holding the last shared layer's kernel and bias."""
    last = {id(v) for v in self.net.last_shared_variables}
    if not last:
      return None
    starts = np.concatenate([[0], np.cumsum(self.shared_sizes)])
    chosen = [i for i, v in enumerate(self.shared_vars) if id(v) in last]
    return int(starts[chosen[0]]), int(starts[chosen[-1] + 1])

  def checkpoint(self):
    """Everything a resumed run needs to continue exactly where it stopped."""
    # Keras keeps dropout's random-generator states out of the model's checkpoint; without
    # them a resumed run would draw other dropout masks.
    dropout_rng = [layer.seed_generator.state for layer in self.model.layers
                   if getattr(layer, "seed_generator", None) is not None]
    return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, method=self.method,
                               stopping=self.stopping, task_active=self.task_active,
                               epoch=self.epoch, optimizer_steps=self.optimizer_steps,
                               labelled_steps=self.labelled_steps, dropout_rng=dropout_rng,
                               **self.extra_state)

  def _by_task(self, columns):
    """[B, T] -> {task: [B]}."""
    return {t.name: columns[:, i] for i, t in enumerate(self.tasks)}

  def _task_losses(self, labels, predictions, masks, sample_weights, training=True):
    """[T] losses; evaluation uses the plain per-row losses (no batch-level Balanced MSE)."""
    return tf.stack(self._task_loss_list(labels, predictions, masks, sample_weights, training))

  def _task_loss_list(self, labels, predictions, masks, sample_weights, training=True,
                      rows=None):
    """The T losses as separate scalars; `rows` are the batch's training-split row indices."""
    return losses_lib.task_loss_list(
        self.tasks, self._by_task(labels), predictions, self._by_task(masks),
        self._by_task(sample_weights), self.loss_config,
        self.batch_losses if training else None, rows)

  def task_loss_sums(self, labels, predictions, masks, sample_weights):
    """(T masked loss sums, T label counts) of a batch, as lists of scalars (per-row losses
    only)."""
    return losses_lib.task_loss_sums(self.tasks, self._by_task(labels), predictions,
                                     self._by_task(masks), self._by_task(sample_weights),
                                     self.loss_config)

  def _forward(self, x, y, m, epoch):
    """Training-mode predictions; with FDS, the regression heads read calibrated inputs."""
    if self.feature_smoothing is None:
      return self.model(x, training=True)
    reps = self.net.representations(x, training=True)
    for t in self.feature_smoothing.task_indices:
      name = self.tasks[t].name
      reps[name] = self.feature_smoothing.calibrate(t, reps[name], y[:, t], m[:, t], epoch)
    return {task.name: self.net.head(task.name, reps[task.name]) for task in self.tasks}

  def _stack(self, tape, weighted, weighted_list):
    """[T, P] per-task gradients of the shared parameters, from the step's persistent tape."""
    if self.config.grad_mode == "jacobian":
      jacobian = tape.jacobian(weighted, self.shared_vars, experimental_use_pfor=True)
      jacobian = gradients.zeros_for_none(jacobian, [tf.zeros([self.num_tasks, *v.shape])
                                                     for v in self.shared_vars])
      return tf.concat([tf.reshape(j, [self.num_tasks, -1]) for j in jacobian], axis=1)
    return tf.stack([gradients.flatten(tape.gradient(loss, self.shared_vars), self.shared_vars)
                     for loss in weighted_list])

  def _surgery_grads(self, tape, weighted, weighted_list, present):
    """For a method that needs the [T, P] stack: (the stack, the method's task weights, the
    gradients of every variable). Task-specific parameters take d(sum_t w_t L_t) with w held
    constant. In `loop` mode one backward pass per task gives both the stack and each task's
    gradients of the task-specific parameters."""
    num_shared = len(self.shared_vars)
    if self.config.grad_mode == "loop":
      per_task = [tape.gradient(loss, self.shared_vars + self.task_vars)
                  for loss in weighted_list]
      stack = tf.stack([gradients.flatten(g[:num_shared], self.shared_vars) for g in per_task])
    else:
      stack = self._stack(tape, weighted, weighted_list)
    shared_flat, task_weights = self.method.combine(stack, weighted, present)
    shared_flat, task_weights = tf.stop_gradient(shared_flat), tf.stop_gradient(task_weights)
    if self.config.grad_mode == "loop":
      task_grads = []
      for j, v in enumerate(self.task_vars):
        parts = [task_weights[t] * g[num_shared + j] for t, g in enumerate(per_task)
                 if g[num_shared + j] is not None]
        task_grads.append(tf.add_n(parts) if parts else tf.zeros_like(v))
    else:
      task_grads = gradients.zeros_for_none(
          tape.gradient(weighted, self.task_vars, output_gradients=task_weights),
          self.task_vars)
    shared_grads = [tf.reshape(g, v.shape) for g, v in
                    zip(tf.split(shared_flat, self.shared_sizes), self.shared_vars)]
    return stack, task_weights, shared_grads + task_grads

  def _step(self, x, y, m, sw, epoch, with_stats, rows=None):
    """One update. `with_stats` (a Python bool: two traced variants, no per-step branch) asks
    for the [T, P] stack even from methods that do not need it. Returns (unweighted task
    losses [T], method task weights [T], all finite, per-task finite [T], the stack or None,
    the shared parameters' gradients)."""
    with tf.GradientTape(persistent=True) as tape:
      predictions = self._forward(x, y, m, epoch)
      raw_list = self._task_loss_list(y, predictions, m, sw, rows=rows)
      # One scalar per task: its gradient runs back through that task's head only.
      weighted_list = [loss * self.base_weights[t] * self.task_active[t]
                       for t, loss in enumerate(raw_list)]
      raw, weighted = tf.stack(raw_list), tf.stack(weighted_list)
      regularization = tf.add_n(self.model.losses) if self.model.losses else tf.constant(0.0)

    variables = self.shared_vars + self.task_vars
    present = self.present(m)
    stack = None
    if self.method.needs_task_grads:
      stack, task_weights, grads = self._surgery_grads(tape, weighted, weighted_list, present)
    else:
      task_weights = tf.stop_gradient(self.method.weights(weighted, present))
      grads = gradients.zeros_for_none(
          tape.gradient(weighted, variables, output_gradients=task_weights), variables)
      if with_stats and self.shared_vars:
        stack = self._stack(tape, weighted, weighted_list)
    variables = self.shared_vars + self.task_vars
    if self.model.losses:
      extra = gradients.zeros_for_none(tape.gradient(regularization, variables), variables)
      grads = [g + e for g, e in zip(grads, extra)]
    del tape
    finite = tf.logical_and(tf.reduce_all(tf.math.is_finite(raw)),
                            tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads]))
    self.optimizer.apply(grads, variables)
    return (raw, task_weights, finite, tf.math.is_finite(raw), stack,
            grads[:len(self.shared_vars)])

  def present(self, masks):
    """[T] 1 where a task has a labelled row among `masks` [B, T] and is still training."""
    return tf.cast(tf.reduce_sum(masks, axis=0) > 0, tf.float32) * self.task_active

  def _train_step(self, data, order, step, epoch, totals, with_stats):
    """Runs step `step` of the epoch on `data` (the training tensors) and adds its
    measurements to `totals`."""
    # tf.slice, not order[a:b]: XLA turns a strided slice with traced bounds into a pass over
    # the whole of `order` at every step.
    rows = tf.slice(order, [step * self.batch_size], [self.batch_size])
    x, y, m, sw = (tf.gather(t, rows) for t in data)
    if self.strategy is None:
      raw, weights, finite, task_finite, stack, shared_grads = self._step(
          x, y, m, sw, epoch, with_stats, rows)
    else:
      raw, weights, finite, task_finite, stack, shared_grads = distribute.step(
          self, self.strategy, x, y, m, sw)
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

  def _epoch_order(self, epoch):
    """The epoch's row order from (seed, epoch): a stateless permutation, or balanced draws."""
    seed = tf.stack([tf.cast(self.seed, tf.int64), epoch])
    if self.balanced_sampling:
      return self._balanced_order(seed)
    return tf.random.experimental.stateless_shuffle(tf.range(self.num_train), seed)

  def _run_steps(self, epoch, order, data, first, last):
    """Trains steps [first, last) of the epoch in-graph; returns their summed measurements.

    With gradient statistics on, every `grad_stats_every`-th step also records them (building
    the [T, P] stack if the method does not): a branch inside one flat loop, which XLA runs
    faster than a loop of chunks.
    """
    zeros = tf.zeros([self.num_tasks])
    totals = {"loss_sum": zeros, "weighted_sum": zeros, "loss_count": zeros,
              "weight_sum": zeros, "stats": gradients.zeros(self.num_tasks)}
    every = self.config.grad_stats_every
    step = first
    while step < last and self.failed_step < 0:
      if self.config.grad_stats and (step - first) % every == 0:
        totals = self._train_step(data, order, step, epoch, totals, with_stats=True)
      else:
        totals = self._train_step(data, order, step, epoch, totals, with_stats=False)
      step += 1
    return totals

  def _update_feature_statistics(self):
    """FDS: per-bin statistics of every training row's head input, once per epoch."""
    train = self.prepared.train
    reps = [self.net.representations(tf.constant(train.features[i:i + 8192]), training=False)
            for i in range(0, train.num_rows, 8192)]
    for t in self.feature_smoothing.task_indices:
      name = self.tasks[t].name
      features = np.concatenate([np.asarray(r[name]) for r in reps])
      self.feature_smoothing.update(t, features, train.labels[name], train.masks[name])
    self.feature_smoothing.finish_update()

  def _balanced_order(self, seed):
    """An epoch of row indices where each draw picks a task uniformly (among tasks with
    training labels), then one of its labelled rows uniformly: rare tasks are over-sampled."""
    num_tasks = tf.cast(self.rows_by_task.nrows(), tf.int32)
    task = tf.random.stateless_uniform([self.num_train], seed, maxval=num_tasks, dtype=tf.int32)
    uniform = tf.random.stateless_uniform([self.num_train], seed + 1)
    counts = tf.cast(tf.gather(self.rows_by_task.row_lengths(), task), tf.float32)
    position = tf.cast(tf.floor(uniform * counts), tf.int64)
    starts = tf.gather(self.rows_by_task.row_starts(), task)
    return tf.gather(self.rows_by_task.flat_values, starts + position)

  def predict(self, features, chunk=8192):
    """{task: [n] model-unit predictions} for [n, F] scaled features, in chunks."""
    parts = [self._predict(tf.constant(features[i:i + chunk]))
             for i in range(0, max(len(features), 1), chunk)]
    return {t.name: np.concatenate([np.asarray(p[t.name]) for p in parts]) for t in self.tasks}

  def evaluate(self, split, final=False):
    """(task losses [T] in model units, {task: metrics in original units}) on SplitArrays."""
    predictions = self.predict(split.features)
    task_losses = self._task_losses(
        tf.constant(np.stack([split.labels[t.name] for t in self.tasks], axis=1)),
        {k: tf.constant(v) for k, v in predictions.items()},
        tf.constant(np.stack([split.masks[t.name] for t in self.tasks], axis=1)),
        tf.ones([split.num_rows, self.num_tasks]), training=False).numpy()
    return task_losses, self.metrics_of(split, predictions, final)

  def _original_units(self, task, split, predictions):
    scaler = self.prepared.target_scalers[task.name]
    y_true = scaler.inverse_transform(split.labels[task.name])
    if task.kind == schema.BINARY:
      return y_true, metrics_lib.sigmoid(predictions[task.name])
    return y_true, scaler.inverse_transform(predictions[task.name])

  def metrics_of(self, split, predictions, final=False):
    """{task: metrics in original units}: Keras metrics per epoch, scikit-learn when `final`."""
    out = {}
    for task in self.tasks:
      mask = split.masks[task.name]
      y_true, y_pred = self._original_units(task, split, predictions)
      if final:
        rows = mask > 0
        out[task.name] = metrics_lib.task_metrics(task, y_true[rows], y_pred[rows])
      else:
        out[task.name] = self.epoch_metrics[task.name](y_true, y_pred, mask)
    return out

  def _unit_scores(self, val_losses):
    has_val = np.array([self.val.masks[t.name].sum() > 0 for t in self.tasks])
    return self.stopping.scores(val_losses, has_val)

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
      if self.feature_smoothing is not None:
        self._update_feature_statistics()
      val_losses, val_metrics = self.evaluate(self.val)

      newly_stopped = self.stopping.update(self._unit_scores(val_losses), epoch)
      for u in newly_stopped:
        for t in self.stopping.unit_tasks[u]:
          self.task_active[t].assign(0.0)
      self.epoch.assign(epoch)
      record = {"epoch": epoch, "seconds": time.perf_counter() - start,
                "train_loss": dict(zip([t.name for t in self.tasks],
                                       train_losses.numpy().tolist())),
                "val_loss": dict(zip([t.name for t in self.tasks], val_losses.tolist())),
                "weighted_loss": dict(zip([t.name for t in self.tasks],
                                          weighted_losses.numpy().tolist())),
                "task_weights": dict(zip([t.name for t in self.tasks],
                                         weights.numpy().tolist())),
                "val": val_metrics,
                "learning_rate": float(self.optimizer.learning_rate.numpy()),
                "stopped": [self.stopping.names[u] for u in newly_stopped]}
      if self.config.summaries:
        record["train"] = self.metrics_of(self.train_probe,
                                          self.predict(self.train_probe.features))
      if self.config.grad_stats:
        record["grad"] = gradients.summarize(stats, [t.name for t in self.tasks])
      if self.net.task_graph is not None:
        record["task_graph"] = np.asarray(self.net.task_graph.adjacency()).tolist()
      history.append(record)
      if save is not None:
        save(epoch)
      self._log(record, progbar)
      if on_epoch_end is not None:
        on_epoch_end(record)
    self.stopping.restore_best()
    return history

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

  def _log(self, record, progbar):
    headline = []
    for task in self.tasks:
      name = metrics_lib.HEADLINE[task.kind]
      headline.append((f"{task.name}_{name}", record["val"][task.name][name]))
    if progbar is not None:
      progbar.update(record["epoch"], values=[(k, v) for k, v in headline if math.isfinite(v)])
      return
    logging.info("epoch %d/%d %.1fs train_loss %s | val %s%s", record["epoch"],
                 self.config.epochs, record["seconds"],
                 " ".join(f"{k}={v:.4f}" for k, v in record["train_loss"].items()),
                 " ".join(f"{k}={v:.4f}" for k, v in headline),
                 f" | stopped {', '.join(record['stopped'])}" if record["stopped"] else "")
