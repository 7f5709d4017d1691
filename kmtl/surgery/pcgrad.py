"""`pcgrad`: projecting conflicting gradients (Yu et al., "Gradient Surgery for Multi-Task
Learning", NeurIPS 2020, arXiv:2001.06782, algorithm 1)."""

import tensorflow as tf

from kmtl.surgery import base


class PCGrad(base.Randomized, base.Method):
  """For each task i, start from g_i and visit the other tasks j in a random order drawn afresh
  for every i and every step; where the running g_i conflicts with the original g_j
  (g_i . g_j < 0), subtract its projection on g_j. The shared gradient is the sum of the results.
  Task weights are 1. State: the random generator (checkpointed, so a resumed run draws the
  same orders). A zero row (a task without labels in the batch) never conflicts and is never
  divided by.

  Example: g1 = (1, 0), g2 = (-1, 1) conflict (dot -1): g1' = g1 + (1/2) g2 = (0.5, 0.5),
  g2' = g2 + 1 * g1 = (0, 1); the sum is (0.5, 1.5).
  """

  name = "pcgrad"
  family = "aggregator"

  def combine(self, task_grads, task_losses, present):
    del task_losses, present  # an absent task's zero row never conflicts
    num_tasks = self.num_tasks
    squared_norms = tf.reduce_sum(task_grads * task_grads, axis=1)
    projected = []
    for i in range(num_tasks):
      order = self.random_order(i)
      g = task_grads[i]
      for k in range(num_tasks - 1):
        j = order[k]
        g_j = tf.gather(task_grads, j)
        dot = tf.reduce_sum(g * g_j)
        coefficient = tf.math.divide_no_nan(tf.minimum(dot, 0.0), tf.gather(squared_norms, j))
        g = g - coefficient * g_j
      projected.append(g)
    return tf.add_n(projected), tf.ones([num_tasks], task_grads.dtype)
