"""Per-epoch Keras metrics and the final scikit-learn report agree, masked rows excluded."""

import numpy as np
import pytest
from sklearn import metrics as sk

from kmtl import metrics
from kmtl.data import schema

REG = schema.TaskSpec("hardness", schema.REGRESSION, nonnegative=True)
BIN = schema.TaskSpec("amorphous", schema.BINARY)

# Rows 2 and 5 are masked: their wild values must not count.
Y_REG = np.array([100.0, 200.0, -1e6, 300.0, 400.0, 1e9])
P_REG = np.array([110.0, 190.0, 5.0, 330.0, 380.0, 0.0])
Y_BIN = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
P_BIN = np.array([0.9, 0.2, 0.1, 0.6, 0.7, 0.4, 0.3])


def test_regression_matches_sklearn_on_labelled_rows():
  mask = np.array([1, 1, 0, 1, 1, 0], np.float32)
  rows = mask > 0
  y, p = Y_REG[rows], P_REG[rows]
  epoch = metrics.EpochMetrics(REG)(Y_REG, P_REG, mask)
  final = metrics.task_metrics(REG, y, p)
  expected = {"r2": sk.r2_score(y, p), "mae": sk.mean_absolute_error(y, p),
              "rmse": np.sqrt(sk.mean_squared_error(y, p)),
              "mape": sk.mean_absolute_percentage_error(y, p)}
  for name, value in expected.items():
    assert epoch[name] == pytest.approx(value, rel=1e-5), name
    assert final[name] == pytest.approx(value, rel=1e-12), name
  # By hand: errors 10, -10, 30, -20 -> MAE 17.5.
  assert final["mae"] == pytest.approx(17.5)
  # 10% / 90% quantiles of (100, 200, 300, 400) are 130 and 370: the tail is 100 and 400.
  assert final["tail_mae"] == pytest.approx((10 + 20) / 2)
  assert epoch["count"] == final["count"] == 4


def test_binary_matches_sklearn_on_labelled_rows():
  mask = np.array([1, 1, 0, 1, 1, 1, 1], np.float32)
  rows = mask > 0
  y, p = Y_BIN[rows], P_BIN[rows]
  labels = (p >= 0.5).astype(int)
  epoch = metrics.EpochMetrics(BIN)(Y_BIN, P_BIN, mask)
  final = metrics.task_metrics(BIN, y, p)
  # Labelled: y = 1 0 1 0 0 1, predicted 1 0 1 1 0 0 -> TP 2, FP 1, FN 1.
  assert final["recall"] == pytest.approx(2 / 3) and final["precision"] == pytest.approx(2 / 3)
  expected = {"recall": sk.recall_score(y, labels), "precision": sk.precision_score(y, labels),
              "f1": sk.f1_score(y, labels), "accuracy": sk.accuracy_score(y, labels)}
  for name, value in expected.items():
    assert epoch[name] == pytest.approx(value, rel=1e-5), name
    assert final[name] == pytest.approx(value, rel=1e-12), name
  assert final["auroc"] == pytest.approx(sk.roc_auc_score(y, p))
  assert epoch["auroc"] == pytest.approx(final["auroc"], abs=0.01)
  assert final["threshold"] == epoch["threshold"] == 0.5
  # TPR 2/3, TNR 2/3 (true negatives 2 of 3): matbench's "ROC-AUC" of hard labels.
  assert final["balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)
  assert sk.roc_auc_score(y, labels) == pytest.approx(final["balanced_accuracy"])


def test_undefined_metrics_are_nan():
  one_class = metrics.task_metrics(BIN, np.ones(3), np.array([0.2, 0.7, 0.9]))
  assert np.isnan(one_class["auroc"]) and np.isnan(one_class["balanced_accuracy"])
  with_zero = metrics.task_metrics(REG, np.array([0.0, 1.0]), np.array([0.5, 1.0]))
  assert np.isnan(with_zero["mape"])
  assert metrics.task_metrics(REG, np.array([]), np.array([]))["count"] == 0


def test_log_space_metrics_for_log_targets():
  task = schema.TaskSpec("resistivity", schema.REGRESSION, transform="log")
  y = np.array([1.0, 10.0, 100.0, 1000.0])
  p = np.array([10.0, 10.0, 100.0, 100.0])
  out = metrics.task_metrics(task, y, p)
  # log10 errors 1, 0, 0, -1: MAE 0.5 decades; R2 = 1 - 2 / 5 on log10 y = 0, 1, 2, 3.
  assert out["mae_log10"] == pytest.approx(0.5)
  assert out["r2_log"] == pytest.approx(1 - 2 / 5)
  assert metrics.headline(task) == "r2_log" and metrics.headline(REG) == "r2"
  assert "r2_log" not in metrics.task_metrics(REG, y, p)


def test_calibration_error_and_brier_score_by_hand():
  # Bins of width 0.1: .05, .15 and .85 each alone, .95, .92 and .97 together in the last.
  y = np.array([0, 1, 1, 0, 1, 1])
  p = np.array([0.05, 0.15, 0.85, 0.95, 0.92, 0.97])
  # |0 - .05| + |1 - .15| + |1 - .85| + |0 + 1 + 1 - (.95 + .92 + .97)|, over 6 rows.
  expected = (0.05 + 0.85 + 0.15 + abs(2 - (0.95 + 0.92 + 0.97))) / 6
  assert metrics.calibration_error(y, p) == pytest.approx(expected)
  got = metrics.task_metrics(BIN, y, p)
  assert got["ece"] == pytest.approx(expected)
  assert got["brier"] == pytest.approx(np.mean((p - y) ** 2))
  assert metrics.calibration_error(np.ones(4), np.ones(4)) == 0.0  # certain and right


def test_multiclass_brier_and_top_label_calibration_by_hand():
  task = schema.TaskSpec("phase", schema.MULTICLASS, classes=("a", "b", "c"))
  truth = np.array([0, 1, 2, 1])
  probabilities = np.array([[.7, .2, .1], [.1, .8, .1], [.2, .2, .6], [.3, .4, .3]])
  got = metrics.task_metrics(task, truth, probabilities)
  # Squared distance to the one-hot truth, summed over classes, averaged over rows.
  rows = [.09 + .04 + .01, .01 + .04 + .01, .04 + .04 + .16, .09 + .36 + .09]
  assert got["brier"] == pytest.approx(np.mean(rows))
  # Every top label is right; confidences .7, .8, .6, .4 fall in four bins.
  assert got["ece"] == pytest.approx((.3 + .2 + .4 + .6) / 4)
