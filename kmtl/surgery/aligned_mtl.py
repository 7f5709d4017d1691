"""`aligned_mtl`: independent component alignment (Senushkin et al., "Independent Component
Alignment for Multi-Task Learning", CVPR 2023, arXiv:2305.19000)."""

import tensorflow as tf

from kmtl.surgery import base
from kmtl.surgery import solvers


class AlignedMTL(base.GramianAggregator):
  """Aligns the principal components of the gradient stack: with the eigendecomposition
  G = V L V^T of the present tasks' Gramian (eigenvalues below 1e-6 of the largest dropped,
  the stack's rank), the aligned stack is sqrt(l_min) V L^(-1/2) V^T J, whose singular values
  all equal the smallest one, and the update is its sum over tasks: weights
  alpha = sqrt(l_min) V L^(-1/2) V^T 1 (as LibMTL's `B.sum(0)`). Orthogonal gradients of
  equal norm are left as they are; a dominant direction is shrunk to the weakest one.
  Stateless.

  Example: g1 = (2, 0), g2 = (0, 1): G = diag(4, 1), l_min = 1, alpha = (1/2, 1), so both
  aligned gradients have norm 1 and the update is (1, 1).
  """

  name = "aligned_mtl"

  def weights_from_gramian(self, gramian, task_losses, present):
    del task_losses
    g, present = solvers.to_solve_dtype(gramian, present)
    g = solvers.normalized(g, present)
    values, vectors = tf.linalg.eigh(g)
    keep = values > 1e-6 * tf.reduce_max(values)
    safe = tf.where(keep, values, tf.ones_like(values))
    smallest = tf.reduce_min(tf.where(keep, values, tf.reduce_max(values)))
    scales = tf.where(keep, tf.sqrt(smallest / safe), 0.0)
    alpha = tf.linalg.matvec(vectors, scales * tf.linalg.matvec(vectors, present,
                                                                transpose_a=True)) * present
    return tf.cast(alpha, gramian.dtype)
