"""What a gradient surgery or weighting method is.

A method combines the per-task gradients of the shared parameters, stacked as `task_grads`
[T, P], the task losses [T] and the presence mask [T] into one shared gradient [P] and the task
weights [T] it applied (task-specific parameters take their task's gradient times that weight).
`present[t]` is 1 when task t has a labelled row in the batch (and is still training), from the
labels themselves: a present task whose loss is exactly 0 is still present. An absent task has
loss 0 and a zero gradient row; a method never divides by it, and its learned per-task state
does not move on that step. Methods run inside the training step's `tf.function` and use TF ops
only. Stateful methods hold `tf.Variable`s created in `build`, saved with the checkpoint and
cleared by `reset`.

What a method reads, and how the heads are updated:
- gradient aggregators (`family = "aggregator"`) combine the [T, P] stack, or only its Gramian
  G G^T [T, T] (`GramianAggregator`: the method returns weights w, and the shared gradient is
  G^T w); each task's head takes its own task's gradient (times the configured task weight),
  so a task weighted 0 in the shared combination still trains its head;
- loss weightings (`family = "weighting"`) return task weights, from the losses alone
  (`LossWeighting`, no per-task gradients) or from the stack; the heads take the gradient of
  the weighted loss sum_t w_t L_t.
Hooks: `end_epoch` sees each epoch's mean training losses (in Python), and a method that sets
`needs_losses_after_update` gets `after_update` with the batch's losses at the updated
parameters (one more forward pass per step, paid by that method alone).
"""

import functools

import keras
import tensorflow as tf


def in_float32(fn):
  """For a method whose state is float32 (learned weights, running averages, random
  generators): its floating inputs are computed with in float32 and its floating outputs
  returned in the first input's dtype, so it runs on float64 stacks too."""
  @functools.wraps(fn)
  def wrapped(self, first, *rest):
    dtype = first.dtype
    cast = lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t
    out = fn(self, cast(first), *map(cast, rest))
    back = lambda t: tf.cast(t, dtype) if t.dtype.is_floating else t
    return tuple(map(back, out)) if isinstance(out, (tuple, list)) else back(out)
  return wrapped


class Method(tf.Module):
  """Base class. Subclasses set `name` and implement `combine` (or `weights`, below)."""

  name = None
  # False: the method only reweights losses, so the loop may skip the [T, P] stack and
  # differentiate sum_t w_t L_t directly (one backward pass instead of T).
  needs_task_grads = True
  family = "weighting"  # or "aggregator": see the module docstring for the heads' update
  needs_losses_after_update = False

  def __init__(self):
    super().__init__(name=self.name)
    self.num_tasks = None
    self.norm_columns = None
    self.num_params = None

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    """Creates the method's state for `num_tasks` tasks.

    Args:
      num_tasks: T.
      norm_columns: (start, stop) columns of the stack holding the last shared layer, where
        gradient-norm methods take their norms; None means every column.
      seed: seed of any randomness the method uses.
      num_params: P, the stack's width, for methods whose state has a row per task and
        parameter; None where the caller has no stack.
    """
    del seed
    self.num_tasks = num_tasks
    self.norm_columns = norm_columns
    self.num_params = num_params

  def reset(self):
    """Clears learned state, for a new experiment."""

  def combine(self, task_grads, task_losses, present):
    """[T, P] gradients, [T] losses and [T] presence (0/1) -> (shared gradient [P], task
    weights [T])."""
    raise NotImplementedError

  def end_epoch(self, mean_task_losses):
    """Once per epoch, in Python: the epoch's mean training loss per task [T] (NumPy)."""
    del mean_task_losses

  def after_update(self, task_losses, present):
    """In-graph, after the update, for methods with `needs_losses_after_update`: the batch's
    (configured-weight) task losses [T] at the updated parameters, and the presence mask."""
    del task_losses, present

  def epoch_diagnostics(self):
    """Once per epoch, in Python: {name: value} of what the method measured about itself over
    the epoch (TensorBoard's `method/{name}`), clearing it for the next epoch."""
    return {}

  def norm_block(self, task_grads):
    """The columns of the stack where norms are taken (the last shared layer)."""
    if self.norm_columns is None:
      return task_grads
    start, stop = self.norm_columns
    return task_grads[:, start:stop]

  def __repr__(self):
    return f"{type(self).__name__}()"


class LossWeighting(Method):
  """A method that only weights the losses: shared gradient = sum_t w_t g_t."""

  needs_task_grads = False

  def weights(self, task_losses, present):
    """[T] losses and [T] presence -> [T] weights (and any state update the method makes per
    step)."""
    raise NotImplementedError

  def combine(self, task_grads, task_losses, present):
    w = tf.cast(self.weights(tf.cast(task_losses, tf.float32), tf.cast(present, tf.float32)),
                task_grads.dtype)
    return tf.linalg.matvec(task_grads, w, transpose_a=True), w


class LearnedLossScales(LossWeighting):
  """A loss weighting with a learnable value s_t per task (start at 0) that takes an Adam step
  at `learning_rate` on the method's objective each step (`weights_and_gradient` gives the
  weights and that gradient). A task without labels in the batch keeps its value exactly,
  although Adam's moment estimates of it decay as for any zero gradient. State: s and the Adam
  slots."""

  def __init__(self, learning_rate=1e-3):
    super().__init__()
    check_value("learning_rate", learning_rate, learning_rate > 0, "> 0")
    self.learning_rate = float(learning_rate)

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.values = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="values")
    self.optimizer = own_optimizer(self.values, self.learning_rate)

  def reset(self):
    self.values.assign(tf.zeros([self.num_tasks]))
    clear_optimizer(self.optimizer)

  def weights_and_gradient(self, values, task_losses, present):
    """s [T], losses [T], presence [T] -> (task weights [T], the objective's gradient in s)."""
    raise NotImplementedError

  @in_float32
  def weights(self, task_losses, present):
    previous = tf.identity(self.values)
    w, gradient = self.weights_and_gradient(previous, task_losses, present)
    self.optimizer.apply([gradient * present], [self.values])
    self.values.assign(keep_absent(self.values, previous, present))
    return w

  def __repr__(self):
    return f"{type(self).__name__}(learning_rate={self.learning_rate})"


class GramianAggregator(Method):
  """An aggregator that reads only the Gramian G G^T [T, T] of the stack (computed once per
  step, in float64: with gradients of very different norms, or nearly parallel ones, the
  differences the methods resolve are below float32's rounding of the products) and returns
  task weights; the shared gradient is J^T w, summed in float64 too (weights of both signs
  can cancel) and returned in the stack's dtype."""

  family = "aggregator"

  def weights_from_gramian(self, gramian, task_losses, present):
    """[T, T] Gramian, [T] losses and [T] presence -> [T] weights."""
    raise NotImplementedError

  def combine(self, task_grads, task_losses, present):
    wide = tf.cast(task_grads, tf.float64)
    gramian = tf.matmul(wide, wide, transpose_b=True)
    w = self.weights_from_gramian(gramian, tf.cast(task_losses, tf.float64),
                                  tf.cast(present, tf.float64))
    shared = tf.linalg.matvec(wide, w, transpose_a=True)
    return tf.cast(shared, task_grads.dtype), tf.cast(w, task_grads.dtype)


class SolverAggregator(GramianAggregator):
  """A Gramian aggregator whose weights come from an in-graph solve
  (kmtl/surgery/solvers.py): it keeps the largest solver residual of the epoch (0 when every
  solve was exact), reported as `method/solver_residual`."""

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self.solver_residual = tf.Variable(
        0.0, trainable=False, name="solver_residual",
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

  def reset(self):
    super().reset()
    self.solver_residual.assign(0.0)

  def note_residual(self, residual):
    """Keeps the epoch's largest residual; returns nothing."""
    self.solver_residual.assign(tf.maximum(self.solver_residual, tf.cast(residual, tf.float32)))

  def epoch_diagnostics(self):
    value = float(self.solver_residual.numpy())
    self.solver_residual.assign(0.0)
    return {"solver_residual": value}


def keep_absent(updated, previous, present):
  """`updated` where the task is present, `previous` where it is absent: per-task state that
  must not move on a step without that task's labels."""
  return tf.where(present > 0, updated, previous)


def own_optimizer(variable, learning_rate):
  """A built Adam for a method's own learnable state (GradNorm's weights, UW's variances)."""
  optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
  optimizer.build([variable])
  return optimizer


def clear_optimizer(optimizer):
  """Zeroes an optimizer's slots and step count, as at the start of an experiment; its
  learning rate stays."""
  learning_rate = optimizer.learning_rate
  for v in optimizer.variables:
    if v is not learning_rate:
      v.assign(tf.zeros_like(v))


class LossAnchor(tf.Module):
  """Each task's reference loss L(0): the mean of its loss over its first `batches` batches
  with labels (a running mean until then), since a rare task's first labelled batch often
  holds a single row. State: the sums and counts."""

  def __init__(self, num_tasks, batches):
    super().__init__(name="loss_anchor")
    self.batches = batches
    self.total = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="anchor_sum")
    self.count = tf.Variable(tf.zeros([num_tasks]), trainable=False, name="anchor_count")

  def reset(self):
    self.total.assign(tf.zeros_like(self.total))
    self.count.assign(tf.zeros_like(self.count))

  def update(self, task_losses, present):
    taking = tf.cast(self.count < self.batches, present.dtype) * present
    self.total.assign_add(taking * task_losses)
    self.count.assign_add(taking)

  @property
  def losses(self):
    """L(0) [T] so far (0 for a task not seen yet)."""
    return tf.math.divide_no_nan(self.total, self.count)

  @property
  def complete(self):
    """[T] 1 where the task's anchor has all its batches."""
    return tf.cast(self.count >= self.batches, self.total.dtype)


def check_value(name, value, valid, expected):
  """A one-line error naming a hyper-parameter outside its range and what it accepts."""
  if not valid:
    raise ValueError(f"Invalid value for `{name}`. Expected {expected}. Received: {value!r}")


class Randomized:
  """Mixin for methods that draw random numbers: a generator seeded at `build`, saved with the
  checkpoint (so a resumed run draws the same numbers) and reseeded by `reset`."""

  def build(self, num_tasks, norm_columns=None, seed=0, num_params=None):
    super().build(num_tasks, norm_columns, seed, num_params)
    self._seed = seed
    self.generator = tf.random.Generator.from_seed(seed)

  def reset(self):
    super().reset()
    self.generator.reset_from_seed(self._seed)

  def random_order(self, task):
    """The other tasks than `task` [T - 1], in an order drawn afresh."""
    others = tf.constant([j for j in range(self.num_tasks) if j != task], tf.int32)
    return tf.gather(others, tf.argsort(self.generator.uniform([self.num_tasks - 1])))


def per_parameter_state(method, name):
  """A [T, P] zero variable of a method's state with a row per task and shared parameter."""
  if method.num_params is None:
    raise ValueError(f"{method.name} needs the number of shared parameters")
  return tf.Variable(tf.zeros([method.num_tasks, method.num_params]), trainable=False,
                     name=name)
