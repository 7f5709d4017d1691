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
seed): candidates for row i are its own label and the bank without row i itself (a bank entry
drawn from row i would count its label twice). With a_i(y) = e^{-(p_i - y)^2 / 2s^2},
  L_i = -log [ a_i(y_i) / (a_i(y_i) + sum_{k: bank row k != i} a_i(b_k)) ].
`bmc_loss(..., bank=None)` is the paper's batch form.
"""

import numpy as np
import tensorflow as tf


BANK_SIZE = 512


def bmc_loss(predictions, labels, mask, noise_sigma, bank=None, bank_rows=None, row_ids=None):
  """Scalar BMC loss of one task over the rows with mask 1; candidates are the batch's
  labelled rows, or each row's own label and the label `bank` [K] when given, leaving out the
  bank entries whose training row `bank_rows` [K] is the batch row's own (`row_ids` [B])."""
  mask = tf.cast(mask, predictions.dtype)
  noise_var = tf.square(noise_sigma)
  if bank is None:
    logits = -tf.square(predictions[:, None] - labels[None, :]) / (2.0 * noise_var)
    logits += (mask[None, :] - 1.0) * 1e9  # only labelled rows are candidate labels
    per_row = -tf.linalg.diag_part(tf.nn.log_softmax(logits, axis=1))
  else:
    own = -tf.square(predictions - labels) / (2.0 * noise_var)
    others = -tf.square(predictions[:, None] - bank[None, :]) / (2.0 * noise_var)
    if row_ids is not None:
      own_entry = tf.equal(tf.cast(row_ids, tf.int64)[:, None], bank_rows[None, :])
      others = tf.where(own_entry, tf.fill(tf.shape(others), -1e9), others)
    per_row = tf.reduce_logsumexp(tf.concat([own[:, None], others], axis=1), axis=1) - own
  per_row = tf.where(mask > 0, per_row, tf.zeros_like(per_row))
  loss = tf.math.divide_no_nan(tf.reduce_sum(per_row), tf.reduce_sum(mask))
  return loss * tf.stop_gradient(2.0 * noise_var)


class BalancedMSE(tf.Module):
  """The learnable noise scale per regression task, and the loss functions that use it."""

  def __init__(self, labels, masks, init_noise_sigma=1.0, seed=0):
    """`labels`, `masks`: {task: [N_train]} training targets in model units and label masks;
    the banks remember which training row each entry came from."""
    super().__init__(name="balanced_mse")
    if init_noise_sigma <= 0:
      raise ValueError(f"Invalid initial noise sigma {init_noise_sigma}. Expected > 0.")
    rng = np.random.default_rng(seed)
    self.noise_sigma, self.banks, self.bank_rows = {}, {}, {}
    for t, y in labels.items():
      self.noise_sigma[t] = tf.Variable(float(init_noise_sigma), name=f"noise_sigma_{t}")
      rows = np.flatnonzero(np.asarray(masks[t]) > 0)
      if len(rows) > BANK_SIZE:
        rows = np.sort(rng.choice(rows, BANK_SIZE, replace=False))
      self.bank_rows[t] = tf.constant(rows, tf.int64)
      self.banks[t] = tf.constant(np.asarray(y, np.float32)[rows], tf.float32)

  def loss_fn(self, task_name):
    """fn(labels, predictions, mask, row_ids) of one task; `row_ids` are the batch rows'
    indices in the training split."""
    sigma, bank = self.noise_sigma[task_name], self.banks[task_name]
    bank_rows = self.bank_rows[task_name]
    return lambda labels, predictions, mask, row_ids: bmc_loss(
        predictions, labels, mask, sigma, bank, bank_rows, row_ids)
