"""Per-task gradients through the shared trunk of `--arch=shared`, two ways that need no T
backward passes through it.

- `--grad_space=representation` (an approximation, as LibMTL's `rep_grad` and MGDA-UB): the
  [T, B * H] stack of each task's gradient with respect to the shared representation z =
  trunk(x) of the batch, each a backward pass through that task's head only. The method
  combines them and the combined gradient runs back through the trunk once, so the trunk gets
  J_z^T (the combination of dL_t/dz) rather than the combination of J_z^T dL_t/dz: the same for
  a plain sum, not for a projection or a min-norm solution. Gradient statistics of such a run
  are representation-space statistics too.
- `--grad_mode=batched` (exact): the T cotangents of z [T, B, H] go back through the ReLU Dense
  trunk together, one einsum per layer: for h = relu(x W + b) with cotangent d, d' = d (h > 0),
  dW_t = x^T d'_t, db_t = sum_b d'_t and x's cotangent d' W^T. The result is the [T, P] stack of
  `--grad_mode=loop`, built without T passes through the trunk.
"""

from kmtl.surgery import registry

GRAD_SPACES = ("parameters", "representation")
TRUNK_ARCHS = ("shared",)


def check(train, imbalance, model):
  """A ValueError naming the flag when `--grad_space` or `--grad_mode=batched` cannot apply to
  these settings."""
  if train.grad_space not in GRAD_SPACES:
    raise ValueError(f"--grad_space={train.grad_space}: expected one of {list(GRAD_SPACES)}")
  what = ("--grad_space=representation" if train.grad_space == "representation" else
          "--grad_mode=batched" if train.grad_mode == "batched" else None)
  if what is None:
    return
  if train.arch not in TRUNK_ARCHS:
    raise ValueError(f"{what} needs one trunk that every task reads ({', '.join(TRUNK_ARCHS)}); "
                     f"--arch={train.arch} has none")
  if train.grad_space == "representation" and train.surgery in registry.PER_PARAMETER_STATE:
    raise ValueError(f"--surgery={train.surgery} keeps a running state per parameter, which "
                     "representation gradients of different batches cannot feed; use "
                     "--grad_space=parameters")
  if (train.strategy != "default" or "fds" in imbalance.methods or model.has_dropout or
      model.input_noise > 0):
    raise ValueError(f"{what} runs on one device without --imbalance=fds, --dropout or "
                     "--input_noise")
  if train.grad_mode == "batched" and model.layer_norm:
    raise ValueError("--grad_mode=batched differentiates plain ReLU Dense layers; "
                     "--layer_norm adds normalisation (use --grad_mode=loop)")


def stack_layout(space, net, batch_size):
  """{norm_columns, num_params} of the method's stack (`Method.build`): the shared parameters'
  (norms on the last shared layer), or a batch's representation, B * H wide."""
  from kmtl import gradients  # pylint: disable=g-import-not-at-top
  if space == "representation":
    width = int(net.trunk_activations.outputs[0][-1].shape[-1])
    return {"norm_columns": None, "num_params": batch_size * width}
  shared = list(net.shared_variables)
  return {"norm_columns": gradients.columns_of(shared, net.last_shared_variables),
          "num_params": sum(int(v.shape.num_elements()) for v in shared)}


def trunk_stack(tf, cotangents, inputs, activations, kernels):
  """[T, P] exact per-task gradients of the trunk's kernels and biases (layer by layer, kernel
  then bias) from the cotangents [T, B, H] of its last activation."""
  delta, parts = cotangents, []
  for x, h, kernel in reversed(list(zip(inputs, activations, kernels))):
    delta = delta * tf.cast(h > 0, delta.dtype)
    flat_kernel = tf.reshape(tf.einsum("bi,tbo->tio", tf.cast(x, delta.dtype), delta),
                             [tf.shape(delta)[0], -1])
    parts = [flat_kernel, tf.reduce_sum(delta, axis=1)] + parts
    delta = tf.einsum("tbo,io->tbi", delta, tf.cast(kernel, delta.dtype))
  return tf.concat(parts, axis=1)


def stacked_update(update, x, y, m, sw, rows=None):
  """One update of `update` (a `step.UpdateStep`) with the stack of `--grad_space=
  representation` or `--grad_mode=batched`; returns what `UpdateStep.__call__` does."""
  # Imported here: the settings checks above run before TensorFlow is loaded.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmtl import gradients  # pylint: disable=g-import-not-at-top
  with tf.GradientTape(persistent=True) as tape:
    activations, predictions = update.net.trunk_activations(x, training=True)
    raw_list = update.task_losses(y, predictions, m, sw, rows)
    weighted_list = [loss * update.base_weights[t] * update.task_active[t]
                     for t, loss in enumerate(raw_list)]
    weighted = tf.stack(weighted_list)
    regularization = tf.add_n(update.model.losses) if update.model.losses else None
  z, present = activations[-1], update.present(m)
  # Under bfloat16 the cotangents are bfloat16; methods and their statistics work in float32.
  cotangents = tf.cast(tf.stack(gradients.zeros_for_none(
      [tape.gradient(w, z) for w in weighted_list], [z] * len(weighted_list))), tf.float32)
  if update.grad_space == "representation":
    stack = tf.reshape(cotangents, [len(weighted_list), -1])
  else:
    stack = trunk_stack(tf, cotangents, [x] + activations[:-1], activations,
                        update.shared_vars[::2])
  combined, task_weights = update.combine(stack, weighted, present)
  if update.grad_space == "representation":
    shared_grads = tape.gradient(z, update.shared_vars,
                                 output_gradients=tf.cast(tf.reshape(combined, tf.shape(z)),
                                                          z.dtype))
  else:
    shared_grads = [tf.reshape(g, v.shape) for g, v in
                    zip(tf.split(combined, update.shared_sizes), update.shared_vars)]
  task_grads = tape.gradient(weighted, update.task_vars,
                             output_gradients=update.head_weights(task_weights))
  variables = update.shared_vars + update.task_vars
  grads = gradients.zeros_for_none(list(shared_grads) + list(task_grads), variables)
  if regularization is not None:
    extra = gradients.zeros_for_none(tape.gradient(regularization, variables), variables)
    grads = [g + e for g, e in zip(grads, extra)]
  del tape
  return _finish(update, tf, tf.stack(raw_list), grads, stack, task_weights, present,
                 (x, y, m, sw, rows))


def _finish(update, tf, raw, grads, stack, task_weights, present, batch):
  """The update's tail: apply, the after-update losses some methods read, the results."""
  x, y, m, sw, rows = batch
  finite = update.apply(raw, grads)
  if update.method.needs_losses_after_update:
    _, after = update.net.trunk_activations(x, training=True)
    update.method.after_update(
        tf.stack(update.task_losses(y, after, m, sw, rows)) * update.base_weights *
        update.task_active, present)
  return (raw, task_weights, finite, tf.math.is_finite(raw), stack,
          grads[:len(update.shared_vars)])
