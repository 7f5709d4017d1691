"""`rlw`: random loss weighting (Lin et al., "Reasonable Effectiveness of Random Weighting: A
Litmus Test for Multi-Task Learning", TMLR 2022, arXiv:2111.10603)."""

import tensorflow as tf

from kmtl.surgery import base


class RandomLossWeighting(base.Randomized, base.LossWeighting):
  """Each step draws z_t ~ N(0, 1) and weights the present tasks' losses by softmax(z) over
  the present tasks (the paper's normal-distribution variant, LibMTL's default). The weights
  sum to 1. State: the random generator (checkpointed, so a resumed run draws the same
  weights).

  Example: z = (0, log 3) gives w = (1/4, 3/4).
  """

  name = "rlw"

  @base.in_float32
  def weights(self, task_losses, present):
    del task_losses
    z = self.generator.normal([self.num_tasks])
    z = z - tf.reduce_max(z)
    scores = tf.exp(z) * present
    return tf.math.divide_no_nan(scores, tf.reduce_sum(scores))
