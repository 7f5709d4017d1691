"""Training under a `tf.distribute` strategy (`--strategy=mirrored|multiworker`).

Every replica takes its share of the global batch (rows r, r + R, r + 2R, ...) and returns, per
task, the sum of its labelled rows' losses, their count and the gradient of that sum for every
trainable variable, stacked [T, P_all]. The sums are all-reduced, so a task's loss is its mean
over its labelled rows across all replicas (not a mean of per-replica means), and its gradient
is the gradient of that mean. The surgery method then runs once, in cross-replica context, on
the all-reduced per-task gradients of the shared parameters; task-specific parameters take
sum_t w_t (gradient of task t) with the method's task weights w, as on one device.

Batch-level losses (Balanced MSE) and FDS's per-batch calibration are not split across replicas,
so they are refused; XLA is not used under a strategy.
"""

import tensorflow as tf

from kmtl import gradients


class DistributeError(ValueError):
  """A strategy that cannot run what was asked."""


def make_strategy(name):
  """The named strategy: `mirrored` over every local GPU, or over the logical CPUs when there
  is no GPU; `multiworker` from TF_CONFIG; `default` the no-op strategy (None here)."""
  if name == "default":
    return None
  if name == "mirrored":
    devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multiworker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise DistributeError(f"--strategy={name!r}: expected default, mirrored or multiworker")


def is_chief(strategy):
  """Whether this process writes the run's results: always, except on the workers other than
  the chief of a multi-worker cluster (TF_CONFIG's `chief`, or worker 0 without one)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def check_supported(strategy, feature_smoothing, batch_losses):
  if strategy is None:
    return
  if feature_smoothing is not None or batch_losses:
    raise DistributeError("--strategy: FDS and Balanced MSE work on whole batches and are not "
                          "supported under a distribution strategy; LDS is")


def replica_sums(update, x, y, m, sw):
  """On one replica, for its share of the batch: per-task loss sums [T], label counts [T], the
  gradients of the sums [T, P_all] and the regularisation gradient [P_all] over replicas.
  `update` is the run's `step.UpdateStep`."""
  context = tf.distribute.get_replica_context()
  replica, replicas = context.replica_id_in_sync_group, context.num_replicas_in_sync
  x, y, m, sw = (t[replica::replicas] for t in (x, y, m, sw))
  variables = update.shared_vars + update.task_vars
  with tf.GradientTape(persistent=True) as tape:
    predictions = update.model(x, training=True)
    sums, counts = update.task_loss_sums(y, predictions, m, sw)
    model_losses = update.model.losses
    regularization = (tf.add_n(model_losses) if model_losses else tf.constant(0.0)) / replicas
  stack, _ = gradients.task_gradients(tape, sums, None, variables)
  regularization_grad = gradients.flatten(tape.gradient(regularization, variables), variables)
  del tape
  return tf.stack(sums), tf.stack(counts), stack, regularization_grad


def step(update, strategy, x, y, m, sw):
  """One update from the global batch. Returns what `step.UpdateStep.__call__` returns."""
  if update.method.needs_losses_after_update:
    raise DistributeError(f"--strategy: {update.method.name} needs the losses after each "
                          "update, which the distributed step does not compute")
  per_replica = strategy.run(replica_sums, args=(update, x, y, m, sw))
  sums, counts, stack, regularization_grad = (
      strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in per_replica)
  raw = tf.math.divide_no_nan(sums, counts)
  scale = tf.math.divide_no_nan(update.base_weights * update.task_active, counts)
  weighted = raw * update.base_weights * update.task_active
  stack = stack * scale[:, None]
  num_shared = sum(update.shared_sizes)
  shared_stack, task_stack = stack[:, :num_shared], stack[:, num_shared:]
  present = tf.cast(counts > 0, tf.float32) * update.task_active
  if num_shared:
    shared_flat, task_weights = update.combine(shared_stack, weighted, present)
  else:
    shared_flat, task_weights = tf.zeros([0]), update.method.weights(weighted, present)
  head_weights = update.head_weights(task_weights)
  flat = tf.concat([shared_flat, tf.linalg.matvec(task_stack, head_weights, transpose_a=True)],
                   axis=0) + regularization_grad
  variables = update.shared_vars + update.task_vars
  sizes = update.shared_sizes + [v.shape.num_elements() for v in update.task_vars]
  grads = [tf.reshape(g, v.shape) for g, v in zip(tf.split(flat, sizes), variables)]
  finite = update.apply(raw, grads)
  return (raw, task_weights, finite, tf.math.is_finite(raw),
          shared_stack if num_shared else None, grads[:len(update.shared_vars)])
