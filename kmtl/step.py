"""One training update: forward pass, masked task losses, per-task gradients, the surgery
method, one Adam step. The single-device loop (kmtl/trainer.py) calls it; the `tf.distribute`
step (kmtl/distribute.py) shares its losses, its method call and its tail.

Each step scales the masked task losses [T] by the configured task weights (and by whether the
task is still training), stacks the per-task gradients of the shared parameters as [T, P] when
the method needs them, lets the method combine them, and applies one update: shared
parameters take the combined gradient, task-specific parameters the gradient of sum_t w_t L_t
with the method's task weights w. Regularisation losses (`model.losses`) are added once, after
the method.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from kmtl import grad_space
from kmtl import gradients
from kmtl import losses as losses_lib


@dataclasses.dataclass
class UpdateStep:
  """What an update needs: the model and its variables, the method, the optimizer, the task
  weights and flags, and the loss choices."""
  net: object
  tasks: tuple
  method: object
  optimizer: object
  shared_vars: list
  task_vars: list
  base_weights: tf.Tensor
  task_active: tf.Variable
  loss_config: object
  grad_mode: str = "loop"
  feature_smoothing: object = None
  batch_losses: dict = dataclasses.field(default_factory=dict)
  grad_space: str = "parameters"

  @property
  def model(self):
    return self.net.model

  @property
  def shared_sizes(self):
    return [int(np.prod(v.shape)) for v in self.shared_vars]

  def by_task(self, columns):
    """[B, T] -> {task: [B]}."""
    return {t.name: columns[:, i] for i, t in enumerate(self.tasks)}

  def task_losses(self, labels, predictions, masks, sample_weights, rows=None):
    """The T training losses as separate scalars (batch-level losses such as Balanced MSE
    included); `rows` are the batch's training-split row indices."""
    return losses_lib.task_loss_list(
        self.tasks, self.by_task(labels), predictions, self.by_task(masks),
        self.by_task(sample_weights), self.loss_config, self.batch_losses, rows)

  def task_loss_sums(self, labels, predictions, masks, sample_weights):
    """(T masked loss sums, T label counts) of a batch, as lists of scalars."""
    return losses_lib.task_loss_sums(self.tasks, self.by_task(labels), predictions,
                                     self.by_task(masks), self.by_task(sample_weights),
                                     self.loss_config)

  def forward(self, x, y, m, epoch):
    """Training-mode predictions; with FDS, the regression heads read calibrated inputs."""
    if self.feature_smoothing is None:
      return self.model(x, training=True)
    reps = self.net.representations(x, training=True)
    for t in self.feature_smoothing.task_indices:
      name = self.tasks[t].name
      reps[name] = self.feature_smoothing.calibrate(t, tf.cast(reps[name], tf.float32),
                                                    y[:, t], m[:, t], epoch)
    return {task.name: self.net.head(task.name, reps[task.name]) for task in self.tasks}

  def present(self, masks):
    """[T] 1 where a task has a labelled row among `masks` [B, T] and is still training."""
    return tf.cast(tf.reduce_sum(masks, axis=0) > 0, tf.float32) * self.task_active

  def combine(self, stack, weighted, present):
    """The method on the shared parameters' [T, P] stack: (shared gradient [P], weights [T]),
    constants for the update."""
    shared_flat, task_weights = self.method.combine(stack, weighted, present)
    return tf.stop_gradient(shared_flat), tf.stop_gradient(task_weights)

  def head_weights(self, task_weights):
    """What scales each task's head gradient: 1 for an aggregator (its own gradient), the
    method's task weights for a loss weighting."""
    if self.method.family == "aggregator":
      return tf.ones_like(task_weights)
    return task_weights

  def apply(self, raw, grads):
    """The step's tail: whether the losses [T] and every gradient are finite, and the update
    of every variable (shared, then task-specific) with `grads`."""
    finite = tf.logical_and(tf.reduce_all(tf.math.is_finite(raw)),
                            tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads]))
    self.optimizer.apply(grads, self.shared_vars + self.task_vars)
    return finite

  def __call__(self, x, y, m, sw, epoch, with_stats, rows=None):
    """One update. `with_stats` (a Python bool: two traced variants, no per-step branch) asks
    for the [T, P] stack even from methods that do not need it. Returns (unweighted task
    losses [T], method task weights [T], all finite, per-task finite [T], the stack or None,
    the shared parameters' gradients)."""
    if self.method.needs_task_grads and (self.grad_space == "representation" or
                                         self.grad_mode == "batched"):
      return grad_space.stacked_update(self, x, y, m, sw, rows)
    with tf.GradientTape(persistent=True) as tape:
      raw_list = self.task_losses(y, self.forward(x, y, m, epoch), m, sw, rows)
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
        stack, _ = gradients.task_gradients(tape, weighted_list, weighted, self.shared_vars,
                                            self.grad_mode)
    if self.model.losses:
      extra = gradients.zeros_for_none(tape.gradient(regularization, variables), variables)
      grads = [g + e for g, e in zip(grads, extra)]
    del tape
    finite = self.apply(raw, grads)
    if self.method.needs_losses_after_update:
      after = self.task_losses(y, self.forward(x, y, m, epoch), m, sw, rows)
      self.method.after_update(
          tf.stack(after) * self.base_weights * self.task_active, present)
    return (raw, task_weights, finite, tf.math.is_finite(raw), stack,
            grads[:len(self.shared_vars)])

  def _surgery_grads(self, tape, weighted, weighted_list, present):
    """For a method that needs the [T, P] stack: (the stack, the method's task weights, the
    gradients of every variable). Task-specific parameters take d(sum_t w_t L_t) with w held
    constant; in `loop` mode the per-task backward passes give them too."""
    num_shared = len(self.shared_vars)
    stack, per_task = gradients.task_gradients(
        tape, weighted_list, weighted, self.shared_vars + self.task_vars, self.grad_mode,
        stacked=num_shared)
    shared_flat, task_weights = self.combine(stack, weighted, present)
    head_weights = self.head_weights(task_weights)
    if per_task is not None:
      task_grads = []
      for j, v in enumerate(self.task_vars):
        parts = [head_weights[t] * g[num_shared + j] for t, g in enumerate(per_task)
                 if g[num_shared + j] is not None]
        task_grads.append(tf.add_n(parts) if parts else tf.zeros_like(v))
    else:
      task_grads = gradients.zeros_for_none(
          tape.gradient(weighted, self.task_vars, output_gradients=head_weights),
          self.task_vars)
    shared_grads = [tf.reshape(g, v.shape) for g, v in
                    zip(tf.split(shared_flat, self.shared_sizes), self.shared_vars)]
    return stack, task_weights, shared_grads + task_grads
