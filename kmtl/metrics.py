"""Per-task metrics in original units: R2, MAE, RMSE (and MAPE) for regression; recall,
precision, F1, accuracy, AUROC and balanced accuracy at a decision threshold for binary tasks;
accuracy, balanced accuracy, macro-F1, macro one-vs-rest AUROC and per-class recall for
multiclass tasks; for both, the Brier score and the expected calibration error of the
probabilities."""

import os
import threading

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # pylint: disable=g-import-not-at-top
import numpy as np
from sklearn import metrics as sk_metrics
import tensorflow as tf

from kmtl.data import schema

REGRESSION_METRICS = ("r2", "mae", "rmse", "mape", "tail_mae")
TAIL_FRACTION = 0.1
BINARY_METRICS = ("recall", "precision", "f1", "accuracy", "auroc", "balanced_accuracy",
                  "brier", "ece", "threshold")
MULTICLASS_METRICS = ("balanced_accuracy", "accuracy", "macro_f1", "auroc", "brier", "ece")
CALIBRATION_BINS = 10
# A binary task's headline is threshold-free: AUROC ranks every test row, where recall at one
# threshold moves only when a row crosses it (recall is still reported beside it).
HEADLINE = {schema.REGRESSION: "r2", schema.BINARY: "auroc",
            schema.MULTICLASS: "balanced_accuracy"}
METRICS_OF_KIND = {schema.REGRESSION: REGRESSION_METRICS, schema.BINARY: BINARY_METRICS,
                   schema.MULTICLASS: MULTICLASS_METRICS}
LOG_METRICS = ("r2_log", "mae_log10")


def headline(task):
  """The metric a study table shows for `task`: R2 (in log space for log-transformed targets,
  where a few huge values would dominate R2 in original units), AUROC or balanced accuracy."""
  if task.kind == schema.REGRESSION and task.transform == "log":
    return "r2_log"
  return HEADLINE[task.kind]


class EpochMetrics:
  """Per-epoch metrics of one task with Keras metrics over all rows at once; masked rows get
  sample weight 0. MAPE is reported as a fraction, like scikit-learn's. AUROC is Keras's
  trapezoidal estimate over 1,000 thresholds (the end-of-run report uses scikit-learn's exact
  value). The compiled metric function is shared by every task of one kind and threshold in
  the process (it resets its metrics on each call), so that it is traced once, not once per
  task and run."""

  def __init__(self, task, threshold=0.5):
    self.task, self.threshold = task, threshold
    if task.kind != schema.MULTICLASS:  # multiclass: scikit-learn's (`task_metrics`)
      self._compute = _compiled_metrics(task.kind, threshold)

  def __call__(self, y_true, y_pred, mask):
    """{metric: float} for [n] labels and predictions in original units (probabilities for
    binary tasks, [n, C] class probabilities for multiclass ones), counting only rows with
    mask 1."""
    mask = np.asarray(mask, np.float32)
    if self.task.kind == schema.MULTICLASS:
      rows = mask > 0
      return task_metrics(self.task, np.asarray(y_true)[rows], np.asarray(y_pred)[rows])
    column = lambda a: tf.constant(np.asarray(a, np.float32).reshape(-1, 1))
    with _COMPILED_LOCK:
      results = self._compute(column(y_true), column(y_pred), tf.constant(mask))
    out = {name: float(value) for name, value in results.items()}
    if self.task.kind == schema.REGRESSION:
      positive = (np.asarray(y_true)[mask > 0] > 0).all()
      out["mape"] = out["mape"] / 100.0 if positive else float("nan")
    else:
      out["threshold"] = float(self.threshold)
    out["count"] = int(mask.sum())
    return out


_COMPILED = {}
_COMPILED_LOCK = threading.Lock()  # the shared metrics' variables take one call at a time


def _compiled_metrics(kind, threshold):
  """A tf.function (y_true [n, 1], y_pred [n, 1], mask [n]) -> {metric: scalar} over Keras
  metrics of a regression or binary task, made once per (kind, threshold)."""
  key = (kind, float(threshold))
  with _COMPILED_LOCK:
    if key not in _COMPILED:
      if kind == schema.REGRESSION:
        named = {"r2": keras.metrics.R2Score(), "mae": keras.metrics.MeanAbsoluteError(),
                 "rmse": keras.metrics.RootMeanSquaredError(),
                 "mape": keras.metrics.MeanAbsolutePercentageError()}
      else:
        named = {"recall": keras.metrics.Recall(thresholds=threshold),
                 "precision": keras.metrics.Precision(thresholds=threshold),
                 "f1": keras.metrics.F1Score(threshold=threshold),
                 "accuracy": keras.metrics.BinaryAccuracy(threshold=threshold),
                 "auroc": keras.metrics.AUC(num_thresholds=1000, curve="ROC")}

      def results(y_true, y_pred, mask):
        out = {}
        for name, metric in named.items():
          metric.reset_state()
          metric.update_state(y_true, y_pred, sample_weight=mask)
          out[name] = tf.reshape(metric.result(), [-1])[0]
        return out
      _COMPILED[key] = tf.function(results, input_signature=[
          tf.TensorSpec([None, 1], tf.float32), tf.TensorSpec([None, 1], tf.float32),
          tf.TensorSpec([None], tf.float32)])
    return _COMPILED[key]


def sigmoid(logits):
  return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def softmax(logits):
  """[n, C] class probabilities of [n, C] logits."""
  z = np.asarray(logits, np.float64)
  z = np.exp(z - z.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def task_metrics(task, y_true, y_pred, threshold=0.5):
  """Metrics of one task over its labelled rows.

  Args:
    task: its `schema.TaskSpec`.
    y_true: [n] labels in original units (0/1 for binary tasks, class indices for multiclass).
    y_pred: [n] predictions in original units; for binary tasks, probabilities; for multiclass
      tasks [n, C] class probabilities.
    threshold: decision threshold on the probability.

  Returns:
    {metric: float}; NaN where a metric is undefined (AUROC with one class, R2 with < 2 rows).
  """
  y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
  nan = float("nan")
  if len(y_true) == 0:
    return {name: nan for name in METRICS_OF_KIND[task.kind]} | {"count": 0}
  if task.kind == schema.MULTICLASS:
    out = class_metrics(task, y_true.astype(int), y_pred)
  elif task.kind == schema.REGRESSION:
    out = regression_metrics(task, y_true, y_pred)
  else:
    out = binary_metrics(y_true.astype(int), y_pred, threshold)
  out["count"] = int(len(y_true))
  return out


def regression_metrics(task, y_true, y_pred):
  """R2, MAE, RMSE, MAPE (NaN unless every label is positive) and the tails' MAE; in log10
  space too for a log-transformed task with positive labels and predictions."""
  nan = float("nan")
  out = {
      "r2": float(sk_metrics.r2_score(y_true, y_pred)) if len(y_true) > 1 else nan,
      "mae": float(sk_metrics.mean_absolute_error(y_true, y_pred)),
      "rmse": float(np.sqrt(sk_metrics.mean_squared_error(y_true, y_pred))),
      "mape": (float(sk_metrics.mean_absolute_percentage_error(y_true, y_pred))
               if (y_true > 0).all() else nan),
      "tail_mae": tail_mae(y_true, y_pred),
  }
  if task.transform == "log" and (y_true > 0).all() and (y_pred > 0).all():
    log_true, log_pred = np.log10(y_true), np.log10(y_pred)
    out["r2_log"] = float(sk_metrics.r2_score(log_true, log_pred)) if len(y_true) > 1 else nan
    out["mae_log10"] = float(sk_metrics.mean_absolute_error(log_true, log_pred))
  return out


def binary_metrics(truth, probability, threshold=0.5):
  """Metrics of [n] 0/1 labels and probabilities: at the threshold, and of the probabilities
  (AUROC and balanced accuracy are NaN with one class present)."""
  labels = (probability >= threshold).astype(int)
  both = len(np.unique(truth)) == 2
  return {
      "recall": float(sk_metrics.recall_score(truth, labels, zero_division=0)),
      "precision": float(sk_metrics.precision_score(truth, labels, zero_division=0)),
      "f1": float(sk_metrics.f1_score(truth, labels, zero_division=0)),
      "accuracy": float(sk_metrics.accuracy_score(truth, labels)),
      "auroc": float(sk_metrics.roc_auc_score(truth, probability)) if both else float("nan"),
      # Matbench's "ROC-AUC" of hard labels is this balanced accuracy.
      "balanced_accuracy": (float(sk_metrics.balanced_accuracy_score(truth, labels)) if both
                            else float("nan")),
      "brier": float(sk_metrics.brier_score_loss(truth, probability, pos_label=1)),
      "ece": calibration_error(truth, probability),
      "threshold": float(threshold),
  }


def class_metrics(task, truth, probabilities):
  """Multiclass metrics of [n] true class indices and [n, C] probabilities; the predicted class
  is the most probable. AUROC is the mean one-vs-rest AUROC over the classes with both
  positive and negative rows here (NaN if none); `recall_<class>` is NaN for an absent class."""
  classes = range(len(task.classes))
  predicted = probabilities.argmax(axis=1)
  present = np.unique(truth)
  out = {
      "balanced_accuracy": float(sk_metrics.recall_score(truth, predicted, labels=present,
                                                         average="macro", zero_division=0)),
      "accuracy": float(sk_metrics.accuracy_score(truth, predicted)),
      "macro_f1": float(sk_metrics.f1_score(truth, predicted, labels=list(classes),
                                            average="macro", zero_division=0)),
  }
  aucs = [sk_metrics.roc_auc_score(truth == c, probabilities[:, c]) for c in classes
          if 0 < np.sum(truth == c) < len(truth)]
  out["auroc"] = float(np.mean(aucs)) if aucs else float("nan")
  one_hot = np.eye(len(task.classes))[truth]
  out["brier"] = float(sk_metrics.mean_squared_error(one_hot, probabilities,
                                                     multioutput="raw_values").sum())
  out["ece"] = calibration_error(predicted == truth, probabilities.max(axis=1))
  recalls = sk_metrics.recall_score(truth, predicted, labels=list(classes), average=None,
                                    zero_division=0)
  for c, name in enumerate(task.classes):
    out[f"recall_{name}"] = float(recalls[c]) if c in present else float("nan")
  return out


def calibration_error(outcome, confidence, bins=CALIBRATION_BINS):
  """Expected calibration error: over `bins` equal-width bins of the confidence, the
  row-weighted mean of |observed frequency - mean confidence|. For a binary task the outcome
  is the label and the confidence the probability of 1; for a multiclass task, whether the
  most probable class is right and its probability."""
  outcome = np.asarray(outcome, np.float64)
  confidence = np.asarray(confidence, np.float64)
  which = np.minimum((confidence * bins).astype(int), bins - 1)
  gap = np.bincount(which, weights=outcome - confidence, minlength=bins)
  return float(np.abs(gap).sum() / len(outcome))


def tail_mae(y_true, y_pred, fraction=TAIL_FRACTION):
  """MAE over the rows whose label lies in the bottom or top `fraction` of the labels: how
  well the rare extremes of an imbalanced target are predicted."""
  if len(y_true) < 2:
    return float("nan")
  low, high = np.quantile(y_true, [fraction, 1.0 - fraction])
  tail = (y_true <= low) | (y_true >= high)
  return float(sk_metrics.mean_absolute_error(y_true[tail], y_pred[tail]))


def format_table(results, tasks):
  """A printable per-task table of `{task: metrics}`."""
  lines, width = [], max([16] + [len(t.name) + 2 for t in tasks])
  uncertain = [t for t in tasks if "coverage_95" in results[t.name]]
  for chosen, names in (([t for t in tasks if t.kind == schema.REGRESSION],
                         REGRESSION_METRICS[:3]),
                        (uncertain, ("nll", "coverage_68", "coverage_95", "width_95", "ece")),
                        ([t for t in tasks if t.kind == schema.BINARY], BINARY_METRICS[:5]),
                        ([t for t in tasks if t.kind == schema.MULTICLASS],
                         MULTICLASS_METRICS)):
    if not chosen:
      continue
    columns = [max(11, len(n) + 2) for n in names]
    lines.append(f"{'task':<{width}}{'n':>7}" + "".join(f"{n:>{w}}" for n, w in
                                                       zip(names, columns)))
    for task in chosen:
      row = results[task.name]
      lines.append(f"{task.name:<{width}}{row['count']:>7}"
                   + "".join(f"{row[n]:>{w}.4g}" for n, w in zip(names, columns)))
  return "\n".join(lines)
