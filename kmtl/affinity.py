"""How tasks act on each other, measured on one batch: per pair of tasks, the cosine of their
gradients of the shared parameters over all rows and over co-labelled rows only, their norms,
and the lookahead affinity of Task Affinity Grouping (Fifty et al. 2021),
Z[i, j] = 1 - L_j(after a step on L_i) / L_j(before): how much a step on task i's loss lowers
task j's. The step is plain gradient descent on the shared parameters with the training's
learning rate and task i's training weight (the heads stay), as TAG measures it with SGD.
"""

import numpy as np
import tensorflow as tf

from kmtl import losses as losses_lib


class AffinityProbe:
  """Batch statistics of a `models.MultiTaskNet` with shared parameters, in one tf.function."""

  def __init__(self, net, tasks, loss_config, step_size=1e-3, task_weights=None):
    if not net.shared_variables:
      raise ValueError("affinity needs an architecture with shared parameters")
    self.net, self.tasks, self.loss_config = net, tuple(tasks), loss_config
    self.step_size = step_size
    self.task_weights = (np.ones(len(self.tasks), np.float32) if task_weights is None
                         else np.asarray(task_weights, np.float32))
    trainable = net.model.trainable_variables
    position = {id(v): k for k, v in enumerate(trainable)}
    self.shared_positions = [position[id(v)] for v in net.shared_variables]
    self.statistics = tf.function(self._statistics)

  def _losses(self, y, predictions, masks):
    """[T] masked mean losses of a batch under `masks` [B, T]."""
    by_task = lambda columns: {t.name: columns[:, i] for i, t in enumerate(self.tasks)}
    return tf.stack(losses_lib.task_loss_list(self.tasks, by_task(y), predictions,
                                              by_task(masks), None, self.loss_config))

  def _flat(self, tape, loss):
    grads = tape.gradient(loss, self.net.shared_variables)
    return tf.concat([tf.reshape(tf.zeros_like(v) if g is None else g, [-1])
                      for g, v in zip(grads, self.net.shared_variables)], axis=0)

  def _statistics(self, x, y, m):
    """{"losses" [T], "norms" [T], "cosine" [T, T], "colabelled_cosine" [T, T],
    "colabelled_rows" [T, T], "lookahead" [T, T]} of the batch (x, y, m)."""
    num_tasks = len(self.tasks)
    pairs = [(i, j) for i in range(num_tasks) for j in range(i + 1, num_tasks)]
    with tf.GradientTape(persistent=True) as tape:
      predictions = self.net.model(x, training=False)
      losses = self._losses(y, predictions, m)
      both = {(i, j): self._losses(y, predictions, m * (m[:, i] * m[:, j])[:, None])
              for i, j in pairs}
      task_losses = [losses[t] for t in range(num_tasks)]
      pair_losses = {p: (both[p][p[0]], both[p][p[1]]) for p in pairs}
    stack = tf.stack([self._flat(tape, loss) for loss in task_losses])
    colabelled = tf.zeros([num_tasks, num_tasks])
    for (i, j), (loss_i, loss_j) in pair_losses.items():
      value = _cosine(self._flat(tape, loss_i), self._flat(tape, loss_j))
      colabelled = tf.tensor_scatter_nd_update(colabelled, [[i, j], [j, i]], [value, value])
    del tape
    norms = tf.norm(stack, axis=1)
    cosine = tf.matmul(stack, stack, transpose_b=True) / tf.maximum(
        norms[:, None] * norms[None, :], 1e-12)
    return {"losses": losses, "norms": norms, "cosine": cosine,
            "colabelled_cosine": colabelled, "colabelled_rows": tf.matmul(m, m, transpose_a=True),
            "lookahead": self._lookahead(x, y, m, stack, losses)}

  def _lookahead(self, x, y, m, stack, losses):
    """[T, T] Z[i, j] after a step of the shared parameters on task i's gradient alone."""
    model = self.net.model
    values = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    sizes = [int(np.prod(v.shape)) for v in self.net.shared_variables]
    rows = []
    for i in range(len(self.tasks)):
      grad = float(self.task_weights[i]) * stack[i]
      stepped = list(values)
      for k, part in zip(self.shared_positions, tf.split(grad, sizes)):
        stepped[k] = values[k] - self.step_size * tf.reshape(part, values[k].shape)
      after, _ = model.stateless_call(stepped, frozen, x, training=False)
      rows.append(1.0 - tf.math.divide_no_nan(self._losses(y, after, m), losses))
    return tf.stack(rows)


def _cosine(a, b):
  """Cosine of two vectors; 0 where either is zero (a task without a row)."""
  return tf.math.divide_no_nan(tf.reduce_sum(a * b), tf.norm(a) * tf.norm(b))


class EpochSample:
  """The statistics of `batches` task-balanced batches (kmtl/advisor.py) drawn from `pool`
  (`SplitArrays`, the training probe) after each epoch, for TensorBoard beside the gradient
  statistics: {"colabelled_cosine": {"a:b": ...}, "lookahead": {"a->b": ...}}."""

  def __init__(self, probe, pool, seed, batches):
    from kmtl import advisor  # pylint: disable=g-import-not-at-top
    self.advisor, self.probe, self.pool, self.batches = advisor, probe, pool, batches
    self.names = [t.name for t in probe.tasks]
    self.masks = np.stack([pool.masks[n] for n in self.names], axis=1)
    self.labels = np.stack([pool.labels[n] for n in self.names], axis=1)
    self.seed = seed

  def sample(self, epoch):
    """The statistics after `epoch`, on batches drawn from (seed, epoch): a resumed run
    samples what the uninterrupted one did."""
    accumulator, rng = self.advisor.Accumulator(len(self.names)), np.random.default_rng(
        [self.seed, epoch])
    for _ in range(self.batches):
      rows = self.advisor.balanced_batch(self.masks, rng)
      stats = self.probe.statistics(tf.constant(self.pool.features[rows]),
                                    tf.constant(self.labels[rows]), tf.constant(self.masks[rows]))
      accumulator.add({k: v.numpy() for k, v in stats.items()})
    means, names = accumulator.means(), self.names
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    return {"colabelled_cosine": {f"{names[i]}:{names[j]}": float(means["colabelled_cosine"][i, j])
                                  for i, j in pairs
                                  if np.isfinite(means["colabelled_cosine"][i, j])},
            "lookahead": {f"{names[i]}->{names[j]}": float(means["lookahead"][i, j])
                          for i in range(len(names)) for j in range(len(names)) if i != j}}


def epoch_sample(net, tasks, pool, loss_config, learning_rate, task_weights, seed, batches):
  """An `EpochSample` for a model with shared parameters and two or more tasks, else None."""
  if batches < 1 or len(tasks) < 2 or not net.shared_variables:
    return None
  return EpochSample(AffinityProbe(net, tasks, loss_config, learning_rate, task_weights),
                     pool, seed, batches)
