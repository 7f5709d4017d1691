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
    # Every running g_i stays a combination sum_j C[i, j] g_j of the original gradients, so
    # the projections run on the [T, T] Gramian (all i at once, T - 1 steps) and the [T, P]
    # stack is touched twice: for the Gramian and for the final sum.
    num_tasks = self.num_tasks
    gram = tf.matmul(task_grads, task_grads, transpose_b=True)
    orders = tf.stack([self.random_order(i) for i in range(num_tasks)])  # [T, T - 1]
    coefficients = tf.eye(num_tasks, dtype=task_grads.dtype)
    for k in range(num_tasks - 1):
      j = orders[:, k]
      dots = tf.gather(tf.matmul(coefficients, gram), j, axis=1, batch_dims=1)  # g_i . g_j
      scale = tf.math.divide_no_nan(tf.minimum(dots, 0.0), tf.gather(tf.linalg.diag_part(gram),
                                                                     j))
      coefficients -= scale[:, None] * tf.one_hot(j, num_tasks, dtype=task_grads.dtype)
    return (tf.linalg.matvec(task_grads, tf.reduce_sum(coefficients, axis=0), transpose_a=True),
            tf.ones([num_tasks], task_grads.dtype))
