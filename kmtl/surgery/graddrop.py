"""`graddrop`: gradient sign dropout (Chen et al., "Just Pick a Sign: Optimizing Deep Multitask
Models with Gradient Sign Dropout", NeurIPS 2020, arXiv:2010.06808)."""

import tensorflow as tf

from kmtl.surgery import base


class GradDrop(base.Randomized, base.Method):
  """Per shared parameter, the positive sign purity P = (1 + sum_t g_t / sum_t |g_t|) / 2 and a
  uniform draw U: where P > U only the tasks' positive components are kept, otherwise only the
  negative ones; the shared gradient is the sum of what is kept (plus `leak` times the rest).
  The paper drops signs on the activations' gradients at one layer; kmtl applies the same
  rule to the shared parameters' gradients, as LibMTL does without representation gradients.
  Task weights are 1. An absent task's zero row keeps nothing and drops nothing. State: the
  random generator (checkpointed).

  Example: at one parameter, gradients (3, -1): P = (1 + 2/4) / 2 = 3/4; a draw U = 0.5 < P
  keeps the 3, a draw U = 0.9 keeps the -1.
  """

  name = "graddrop"
  family = "aggregator"

  def __init__(self, leak=0.0):
    super().__init__()
    base.check_value("leak", leak, 0.0 <= leak <= 1.0, "0 <= leak <= 1")
    self.leak = float(leak)

  @base.in_float32
  def combine(self, task_grads, task_losses, present):
    del task_losses, present
    total = tf.reduce_sum(task_grads, axis=0)
    purity = 0.5 * (1.0 + tf.math.divide_no_nan(total, tf.reduce_sum(tf.abs(task_grads), 0)))
    draw = self.generator.uniform(tf.shape(total))
    keep_positive = purity > draw
    kept = tf.where(keep_positive[None, :], tf.maximum(task_grads, 0.0),
                    tf.minimum(task_grads, 0.0))
    shared = tf.reduce_sum(kept, axis=0)
    shared = shared + self.leak * (total - shared)
    return shared, tf.ones([self.num_tasks], task_grads.dtype)

  def __repr__(self):
    return f"GradDrop(leak={self.leak})"
