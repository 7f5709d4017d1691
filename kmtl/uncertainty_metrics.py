"""How good a regression task's predicted uncertainty is, over its labelled test rows.

Every metric reads Gaussian predictions N(mean, std^2) in the target's modelled units (the
natural log of the original units for a log-transformed target), where the model's Gaussian
lives:
  nll            mean negative log-likelihood, 0.5 log(2 pi std^2) + (y - mean)^2 / (2 std^2);
  coverage_68/95 the share of labels inside the central 68% / 95% interval;
  width_95       the mean width of the 95% interval, in original units;
  spearman_std   Spearman's rank correlation of std with |y - mean| (does a larger predicted
                 uncertainty go with a larger error?);
  ece            the interval calibration error: the mean, over central intervals of nominal
                 level 5%, 10%, ..., 95%, of |observed coverage - nominal level|.
"""

import statistics

import numpy as np
from scipy import stats

from kmtl import predictive

UNCERTAINTY_METRICS = ("nll", "coverage_68", "coverage_95", "width_95", "spearman_std", "ece")
NOMINAL_LEVELS = np.round(np.arange(0.05, 0.951, 0.05), 2)
_Z_OF_LEVEL = np.array([statistics.NormalDist().inv_cdf(0.5 + p / 2) for p in NOMINAL_LEVELS])


def standardized_errors(y, mean, std):
  """|y - mean| / std."""
  return np.abs(np.asarray(y, np.float64) - mean) / std


def observed_coverage(z):
  """[len(NOMINAL_LEVELS)]: the share of |z| inside each nominal central interval."""
  z = np.asarray(z, np.float64)
  return np.array([float(np.mean(z <= q)) for q in _Z_OF_LEVEL])


def regression_uncertainty(target, y_true, mean, std):
  """{metric: float} of `UNCERTAINTY_METRICS` for labels `y_true` in original units and
  predictions `mean`, `std` in target units (kmtl/predictive.py `in_target_units`)."""
  y_true, mean, std = (np.asarray(a, np.float64) for a in (y_true, mean, std))
  nan = float("nan")
  if not y_true.size or not (std > 0).all():
    return {name: nan for name in UNCERTAINTY_METRICS}
  y = np.log(y_true) if target["transform"] == "log" else y_true
  z = standardized_errors(y, mean, std)
  lower = predictive.to_original(target, mean - predictive.Z_95 * std)
  upper = predictive.to_original(target, mean + predictive.Z_95 * std)
  spearman = (float(stats.spearmanr(std, np.abs(y - mean)).statistic)
              if y.size > 2 and np.ptp(std) > 0 else nan)
  return {
      "nll": float(np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5 * z**2)),
      "coverage_68": float(np.mean(z <= predictive.Z_68)),
      "coverage_95": float(np.mean(z <= predictive.Z_95)),
      "width_95": float(np.mean(upper - lower)),
      "spearman_std": spearman,
      "ece": float(np.mean(np.abs(observed_coverage(z) - NOMINAL_LEVELS))),
  }
