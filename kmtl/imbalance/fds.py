"""Feature distribution smoothing (Yang et al., ICML 2021, arXiv:2102.09554, section 3.2).

FDS acts on what each regression task's final regressor reads: its head input (the task tower's
64-d output; for `structured`, after the task-graph mixing), not on the trunk. The trunk is
shared, so the calibration changes only how this task's regressor sees the shared
representation, while its gradient still reaches the trunk through the calibration.

Per task and label bin b (bins over the training labels in model units) it keeps running
feature means mu_b and variances var_b, updated once per epoch over the training rows with
momentum m (mu_b <- m mu_b + (1 - m) mean_b; the first update takes the epoch's values), and
their smoothed versions mu~_b, var~_b (convolution over bins with the sum-normalised kernel).
From `start_epoch` on, each labelled training row is re-calibrated
  z' = (z - mu_b) * sqrt(clip(var~_b / var_b, 0.1, 10)) + mu~_b.
Validation, test and serving never see FDS. The `reference` kernel form mirrors the bins at the
ends, as the paper's code does; `exact` repeats the end bins. State: the statistics
(checkpointed).
"""

import numpy as np
import tensorflow as tf

from kmtl.imbalance import smoothing


class FeatureSmoothing(tf.Module):
  """FDS statistics and calibration for the regression tasks `task_indices` of a model."""

  def __init__(self, task_indices, edges, feature_dim, momentum=0.9, start_epoch=2,
               kernel="gaussian", size=5, sigma=2.0, form="reference"):
    super().__init__(name="feature_smoothing")
    if not 0.0 <= momentum < 1.0:
      raise ValueError(f"Invalid FDS momentum {momentum}. Expected 0 <= momentum < 1.")
    self.task_indices = tuple(task_indices)
    self.momentum, self.start_epoch = float(momentum), int(start_epoch)
    window = smoothing.kernel_window(kernel, size, sigma, form)
    self.window = window / window.sum()
    self.padding = "reflect" if form == "reference" else "edge"
    self.edges = {t: tf.constant(e, tf.float32) for t, e in edges.items()}
    # Keyed by name: a checkpoint cannot hold a dict with integer keys.
    self.statistics = {}
    for t in self.task_indices:
      bins = len(edges[t]) - 1
      self.statistics[f"task_{t}"] = {
          name: tf.Variable(tf.fill([bins, feature_dim], 1.0 if "var" in name else 0.0),
                            trainable=False, name=f"{name}_{t}")
          for name in ("mean", "var", "smoothed_mean", "smoothed_var")}
    self.updated = tf.Variable(False, trainable=False)

  def stats(self, t):
    """{mean, var, smoothed_mean, smoothed_var} of task t: [bins, H] variables."""
    return self.statistics[f"task_{t}"]

  def _bins(self, t, labels):
    edges = self.edges[t]
    index = tf.searchsorted(edges, labels, side="right") - 1
    return tf.clip_by_value(index, 0, tf.shape(edges)[0] - 2)

  def calibrate(self, t, features, labels, mask, epoch):
    """[B, H] head inputs of task t -> calibrated where labelled and `epoch >= start_epoch`."""
    s = self.stats(t)
    b = self._bins(t, labels)
    factor = tf.sqrt(tf.clip_by_value(tf.math.divide_no_nan(
        tf.gather(s["smoothed_var"], b), tf.gather(s["var"], b)), 0.1, 10.0))
    calibrated = (features - tf.gather(s["mean"], b)) * factor + tf.gather(s["smoothed_mean"], b)
    active = tf.logical_and(mask > 0, tf.logical_and(
        epoch >= self.start_epoch, self.updated))
    return tf.where(active[:, None], calibrated, features)

  def update(self, t, features, labels, mask):
    """Per-epoch statistics update from all training rows' head inputs [N, H] (NumPy)."""
    s = self.stats(t)
    rows = np.asarray(mask) > 0
    z, bins = np.asarray(features)[rows], self._bins(t, labels[rows]).numpy()
    mean, var = s["mean"].numpy(), s["var"].numpy()
    first = not bool(self.updated.numpy())
    for b in np.unique(bins):
      zb = z[bins == b]
      m = 0.0 if first else self.momentum
      mean[b] = m * mean[b] + (1 - m) * zb.mean(axis=0)
      var[b] = m * var[b] + (1 - m) * (zb.var(axis=0, ddof=1) if len(zb) > 1 else var[b])
    s["mean"].assign(mean)
    s["var"].assign(var)
    s["smoothed_mean"].assign(smoothing.smooth(mean, self.window, self.padding))
    s["smoothed_var"].assign(smoothing.smooth(var, self.window, self.padding))

  def finish_update(self):
    self.updated.assign(True)


def update_from_split(smoother, net, tasks, train, chunk=8192):
  """Per-epoch statistics from every training row's head input (`net.representations`)."""
  reps = [net.representations(tf.constant(train.features[i:i + chunk]), training=False)
          for i in range(0, train.num_rows, chunk)]
  for t in smoother.task_indices:
    name = tasks[t].name
    features = np.concatenate([np.asarray(r[name]) for r in reps])
    smoother.update(t, features, train.labels[name], train.masks[name])
  smoother.finish_update()
