"""Balanced MSE, batch-based Monte-Carlo variant (Ren et al., "Balanced MSE for Imbalanced
Visual Regression", CVPR 2022, arXiv:2203.16427, BMC).

Over the labelled rows of a batch, with predictions p_i, labels y_j and a learnable noise
variance s^2 = sigma^2:
  L = mean_i [ -log softmax_j( -(p_i - y_j)^2 / (2 s^2) )_i ] * (2 s^2, held constant),
a classification of which label in the batch each prediction belongs to, which corrects the
bias that the training label distribution puts on plain MSE. sigma is a task-specific
trainable variable (initial value from config). A batch with no labelled row gives 0.
"""

import tensorflow as tf


def bmc_loss(predictions, labels, mask, noise_sigma):
  """Scalar BMC loss of one task over the rows with mask 1."""
  mask = tf.cast(mask, predictions.dtype)
  noise_var = tf.square(noise_sigma)
  logits = -tf.square(predictions[:, None] - labels[None, :]) / (2.0 * noise_var)
  logits += (mask[None, :] - 1.0) * 1e9  # only labelled rows are candidate labels
  per_row = -tf.linalg.diag_part(tf.nn.log_softmax(logits, axis=1))
  per_row = tf.where(mask > 0, per_row, tf.zeros_like(per_row))
  loss = tf.math.divide_no_nan(tf.reduce_sum(per_row), tf.reduce_sum(mask))
  return loss * tf.stop_gradient(2.0 * noise_var)


class BalancedMSE(tf.Module):
  """The learnable noise scale per regression task, and the loss functions that use it."""

  def __init__(self, task_names, init_noise_sigma=1.0):
    super().__init__(name="balanced_mse")
    if init_noise_sigma <= 0:
      raise ValueError(f"Invalid initial noise sigma {init_noise_sigma}. Expected > 0.")
    self.noise_sigma = {t: tf.Variable(float(init_noise_sigma), name=f"noise_sigma_{t}")
                        for t in task_names}

  def loss_fn(self, task_name):
    sigma = self.noise_sigma[task_name]
    return lambda labels, predictions, mask: bmc_loss(predictions, labels, mask, sigma)
