"""Balanced MSE, batch-based Monte-Carlo variant (Ren et al., "Balanced MSE for Imbalanced
Visual Regression", CVPR 2022, arXiv:2203.16427, BMC).

Over the labelled rows of a batch, with predictions p_i, labels y_j and a learnable noise
variance s^2 = sigma^2:
  L = mean_i [ -log softmax_j( -(p_i - y_j)^2 / (2 s^2) )_i ] * (2 s^2, held constant),
a classification of which label in the batch each prediction belongs to, which corrects the
bias that the training label distribution puts on plain MSE. sigma is a task-specific
trainable variable (initial value from config). A batch with no labelled row gives 0.

The batch labels serve as Monte-Carlo samples of the training label distribution. With masked
multi-task batches a rare task has 0 or 1 labelled rows in most batches, where that estimate is
empty (a single candidate gives loss 0 and no gradient). kmtl therefore draws its samples from
a fixed bank of the task's training labels (up to `BANK_SIZE`, drawn once with the run's
seed): candidates for row i are its own label and the bank,
  L_i = -log [ e^{-(p_i - y_i)^2 / 2s^2} / (e^{-(p_i - y_i)^2 / 2s^2} + sum_k e^{-(p_i - b_k)^2 / 2s^2}) ].
`bmc_loss(..., bank=None)` is the paper's batch form.
"""

import numpy as np
import tensorflow as tf


BANK_SIZE = 512


def bmc_loss(predictions, labels, mask, noise_sigma, bank=None):
  """Scalar BMC loss of one task over the rows with mask 1; candidates are the batch's
  labelled rows, or each row's own label and the label `bank` [K] when given."""
  mask = tf.cast(mask, predictions.dtype)
  noise_var = tf.square(noise_sigma)
  if bank is None:
    logits = -tf.square(predictions[:, None] - labels[None, :]) / (2.0 * noise_var)
    logits += (mask[None, :] - 1.0) * 1e9  # only labelled rows are candidate labels
    per_row = -tf.linalg.diag_part(tf.nn.log_softmax(logits, axis=1))
  else:
    own = -tf.square(predictions - labels) / (2.0 * noise_var)
    others = -tf.square(predictions[:, None] - bank[None, :]) / (2.0 * noise_var)
    per_row = tf.reduce_logsumexp(tf.concat([own[:, None], others], axis=1), axis=1) - own
  per_row = tf.where(mask > 0, per_row, tf.zeros_like(per_row))
  loss = tf.math.divide_no_nan(tf.reduce_sum(per_row), tf.reduce_sum(mask))
  return loss * tf.stop_gradient(2.0 * noise_var)


class BalancedMSE(tf.Module):
  """The learnable noise scale per regression task, and the loss functions that use it."""

  def __init__(self, training_labels, init_noise_sigma=1.0, seed=0):
    """`training_labels`: {task: its labelled training targets in model units}."""
    super().__init__(name="balanced_mse")
    if init_noise_sigma <= 0:
      raise ValueError(f"Invalid initial noise sigma {init_noise_sigma}. Expected > 0.")
    rng = np.random.default_rng(seed)
    self.noise_sigma, self.banks = {}, {}
    for t, y in training_labels.items():
      self.noise_sigma[t] = tf.Variable(float(init_noise_sigma), name=f"noise_sigma_{t}")
      y = np.asarray(y, np.float32)
      chosen = y if len(y) <= BANK_SIZE else rng.choice(y, BANK_SIZE, replace=False)
      self.banks[t] = tf.constant(chosen, tf.float32)

  def loss_fn(self, task_name):
    sigma, bank = self.noise_sigma[task_name], self.banks[task_name]
    return lambda labels, predictions, mask: bmc_loss(predictions, labels, mask, sigma, bank)
