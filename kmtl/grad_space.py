"""Where per-task gradients are taken (`--grad_space`).

- `parameters` (exact, the default): the [T, P] stack of each task's gradient with respect to
  the shared parameters.
- `representation` (an approximation, as LibMTL's `rep_grad` and MGDA-UB): the [T, B * H]
  stack of each task's gradient with respect to the shared representation z = trunk(x) of the
  batch. Each costs a backward pass through that task's head only; the method combines them,
  and the combined gradient runs back through the trunk once. The trunk's parameters thus get
  J_z^T (method's combination of dL_t/dz) instead of the method's combination of J_z^T dL_t/dz:
  the same for a plain sum, not for a projection or a min-norm solution. Gradient statistics
  of such a run are representation-space statistics too.
"""

from kmtl.surgery import registry

GRAD_SPACES = ("parameters", "representation")
REPRESENTATION_ARCHS = ("shared",)


def check(train, imbalance):
  """A ValueError naming the flag when `--grad_space` cannot apply to these settings."""
  if train.grad_space not in GRAD_SPACES:
    raise ValueError(f"--grad_space={train.grad_space}: expected one of {list(GRAD_SPACES)}")
  if train.grad_space != "representation":
    return
  if train.arch not in REPRESENTATION_ARCHS:
    raise ValueError(f"--grad_space=representation needs one representation shared by every "
                     f"task ({', '.join(REPRESENTATION_ARCHS)}); --arch={train.arch} has none")
  if train.surgery in registry.PER_PARAMETER_STATE:
    raise ValueError(f"--surgery={train.surgery} keeps a running state per parameter, which "
                     "representation gradients of different batches cannot feed; use "
                     "--grad_space=parameters")
  if train.strategy != "default" or "fds" in imbalance.methods:
    raise ValueError("--grad_space=representation runs on one device without --imbalance=fds")


def stack_layout(space, net, batch_size):
  """{norm_columns, num_params} of the method's stack (`Method.build`): the shared parameters'
  (norms on the last shared layer), or a batch's representation, B * H wide."""
  from kmtl import gradients  # pylint: disable=g-import-not-at-top
  if space == "representation":
    width = int(net.shared_representation.outputs[0].shape[-1])
    return {"norm_columns": None, "num_params": batch_size * width}
  shared = list(net.shared_variables)
  return {"norm_columns": gradients.columns_of(shared, net.last_shared_variables),
          "num_params": sum(int(v.shape.num_elements()) for v in shared)}


def representation_update(update, x, y, m, sw, epoch, rows=None):
  """One update of `update` (a `step.UpdateStep`) with representation-space task gradients;
  returns what `UpdateStep.__call__` does, the stack being [T, B * H]."""
  # Imported here: the settings checks above run before TensorFlow is loaded.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmtl import gradients  # pylint: disable=g-import-not-at-top
  del epoch
  with tf.GradientTape(persistent=True) as tape:
    shared, predictions = update.net.shared_representation(x, training=True)
    raw_list = update.task_losses(y, predictions, m, sw, rows)
    weighted_list = [loss * update.base_weights[t] * update.task_active[t]
                     for t, loss in enumerate(raw_list)]
    raw, weighted = tf.stack(raw_list), tf.stack(weighted_list)
    regularization = tf.add_n(update.model.losses) if update.model.losses else None
  present = update.present(m)
  stack = tf.stack([tf.reshape(g, [-1]) for g in gradients.zeros_for_none(
      [tape.gradient(loss, shared) for loss in weighted_list], [shared] * len(weighted_list))])
  combined, task_weights = update.combine(stack, weighted, present)
  shared_grads = gradients.zeros_for_none(tape.gradient(
      shared, update.shared_vars, output_gradients=tf.reshape(combined, tf.shape(shared))),
                                          update.shared_vars)
  task_grads = gradients.zeros_for_none(tape.gradient(
      weighted, update.task_vars, output_gradients=update.head_weights(task_weights)),
                                        update.task_vars)
  grads = shared_grads + task_grads
  variables = update.shared_vars + update.task_vars
  if regularization is not None:
    extra = gradients.zeros_for_none(tape.gradient(regularization, variables), variables)
    grads = [g + e for g, e in zip(grads, extra)]
  del tape
  finite = update.apply(raw, grads)
  if update.method.needs_losses_after_update:
    _, after = update.net.shared_representation(x, training=True)
    update.method.after_update(
        tf.stack(update.task_losses(y, after, m, sw, rows)) * update.base_weights *
        update.task_active, present)
  return (raw, task_weights, finite, tf.math.is_finite(raw), stack,
          grads[:len(update.shared_vars)])
