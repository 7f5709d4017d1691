"""A run's optimizer: Adam, or AdamW (Loshchilov & Hutter, ICLR 2019) whose decoupled weight
decay shrinks kernels only (biases, normalisation scales and offsets, the task graph's logits
and the cross-stitch matrices keep their values); its learning-rate schedule; and the moving
average of the weights that validation, early stopping and the kept model read.

- `constant`: the learning rate throughout.
- `cosine`: lr * (1 + cos(pi * k / K)) / 2 at step k of K = epochs x steps per epoch
  (Keras' `CosineDecay`, reaching 0 at the last epoch).
- `plateau`: the learning rate times `factor` after `patience` epochs in which the
  early-stopping score did not improve by more than `min_delta` (checked per epoch, in Python).
- The moving average is Keras' (`use_ema`): after each step, avg = m * avg + (1 - m) * w, with
  avg = w after the first step.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

DECAYED_NAMES = ("kernel",)


def decays(variable):
  """Whether weight decay shrinks `variable`: Dense and expert kernels."""
  return variable.name.split("/")[-1].split(":")[0] in DECAYED_NAMES


def build(config, variables, steps_per_epoch):
  """The built optimizer of `config` (a `config.TrainConfig`) for `variables`."""
  learning_rate = config.learning_rate
  if config.lr_schedule == "cosine":
    learning_rate = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, config.epochs * steps_per_epoch))
  average = ({"use_ema": True, "ema_momentum": config.ema_momentum}
             if config.ema_momentum > 0 else {})
  if config.weight_decay > 0:
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate,
                                       weight_decay=config.weight_decay, **average)
    optimizer.exclude_from_weight_decay(var_list=[v for v in variables if not decays(v)])
  else:
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, **average)
  optimizer.build(variables)
  return optimizer


class Plateau(tf.Module):
  """Reduce-on-plateau: the best score and the epochs since it (checkpointed), and the
  optimizer whose learning rate it lowers."""

  def __init__(self, optimizer, factor, patience, min_delta=0.0):
    super().__init__(name="lr_plateau")
    self.optimizer, self.factor, self.patience = optimizer, factor, patience
    self.min_delta = min_delta
    self.best = tf.Variable(np.inf, dtype=tf.float64, trainable=False)
    self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False)

  def update(self, score):
    """Records one epoch's score; returns whether the learning rate was lowered."""
    if score < float(self.best.numpy()) - self.min_delta:
      self.best.assign(score)
      self.bad_epochs.assign(0)
      return False
    self.bad_epochs.assign_add(1)
    if int(self.bad_epochs.numpy()) < self.patience:
      return False
    self.optimizer.learning_rate = float(self.optimizer.learning_rate.numpy()) * self.factor
    self.bad_epochs.assign(0)
    return True


@contextlib.contextmanager
def averaged_weights(optimizer, variables):
  """Within the block `variables` hold the optimizer's moving averages (when it keeps them);
  after it, the trained values again."""
  if not optimizer.use_ema:
    yield
    return
  trained = [tf.identity(v) for v in variables]
  optimizer.finalize_variable_values(variables)
  try:
    yield
  finally:
    for v, value in zip(variables, trained):
      v.assign(value)
