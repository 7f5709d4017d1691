"""The predictive distribution, the Gaussian likelihood loss, recalibration and the uncertainty
metrics, against values worked out by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kmtl import losses
from kmtl import predictive
from kmtl import uncertainty
from kmtl import uncertainty_metrics
from kmtl.data import schema
from kmtl.data import splits

REGRESSION = schema.TaskSpec("hardness", schema.REGRESSION)
BINARY = schema.TaskSpec("amorphous", schema.BINARY)
MULTICLASS = schema.TaskSpec("phase", schema.MULTICLASS, classes=("A", "B"))
IDENTITY = {"mean": 0.0, "scale": 1.0, "transform": "none"}


def test_regression_members_combine_as_a_mixture():
  # Means 1 and 3, variances 1 and 4: aleatoric 2.5, epistemic ((1-2)^2 + (3-2)^2)/2 = 1.
  members = [np.array([[1.0, 0.0]]), np.array([[3.0, math.log(4.0)]])]
  d = predictive.combine(REGRESSION, members)
  np.testing.assert_allclose([d["mean"][0], d["aleatoric"][0], d["epistemic"][0],
                              d["variance"][0]], [2.0, 2.5, 1.0, 3.5])
  # Without a log-variance output only the members' disagreement remains.
  d = predictive.combine(REGRESSION, [np.array([1.0]), np.array([3.0])])
  np.testing.assert_allclose([d["mean"][0], d["variance"][0]], [2.0, 1.0])


def test_classification_members_average_probabilities():
  d = predictive.combine(BINARY, [np.array([0.0]), np.array([math.log(3.0)])])
  np.testing.assert_allclose([d["probability"][0], d["spread"][0]], [0.625, 0.125])
  # Logits (0, log 3) give (1/4, 3/4); logits (0, 0) give (1/2, 1/2).
  d = predictive.combine(MULTICLASS, [np.array([[0.0, math.log(3.0)]]), np.zeros((1, 2))])
  np.testing.assert_allclose(d["probability"][0], [0.375, 0.625])
  np.testing.assert_allclose(d["spread"][0], [0.125, 0.125])


def test_variance_scale_maximises_the_likelihood():
  assert predictive.variance_scale([1.0, -1.0], [0.0, 0.0], [4.0, 1.0]) == pytest.approx(0.625)
  assert predictive.variance_scale([1.0], [0.0], [0.0]) is None
  rng = np.random.default_rng(0)
  y, variance = rng.normal(size=50), rng.uniform(0.5, 2.0, size=50)
  s = predictive.variance_scale(y, 0.0, variance)
  nll = lambda c: np.mean(0.5 * np.log(c * variance) + y**2 / (2 * c * variance))
  assert nll(s) < min(nll(0.99 * s), nll(1.01 * s))


def test_uncertainty_metrics_by_hand():
  # z = 0 and 2: NLL = log(2 pi)/2 + (0 + 4)/4; only z = 0 lies inside the 68% and 95%
  # intervals; the 95% interval is +-1.96 wide; z = 2 lies outside every level up to 95%, so
  # the observed coverage is 1/2 at each and the ECE the mean of |1/2 - p|, 4.5 / 19.
  m = uncertainty_metrics.regression_uncertainty(IDENTITY, [0.0, 2.0], np.zeros(2), np.ones(2))
  assert m["nll"] == pytest.approx(0.5 * math.log(2 * math.pi) + 1.0)
  assert (m["coverage_68"], m["coverage_95"]) == (0.5, 0.5)
  assert m["width_95"] == pytest.approx(2 * 1.959964, rel=1e-6)
  assert m["ece"] == pytest.approx(4.5 / 19)
  assert math.isnan(m["spearman_std"])  # two rows


def test_uncertainty_metrics_of_a_log_target():
  # The Gaussian lives in log space: label e^1 at mean 0, std 1 is z = 1, just outside the 68%
  # interval (+-0.994); the 95% interval is e^(+-1.96 std) in original units.
  target = {"mean": 0.0, "scale": 1.0, "transform": "log"}
  m = uncertainty_metrics.regression_uncertainty(target, [math.e, 1.0, 1.0], np.zeros(3),
                                                 np.array([1.0, 1.0, 2.0]))
  assert (m["coverage_68"], m["coverage_95"]) == (pytest.approx(2 / 3), 1.0)
  widths = [math.exp(1.959964 * s) - math.exp(-1.959964 * s) for s in (1, 1, 2)]
  assert m["width_95"] == pytest.approx(np.mean(widths), rel=1e-5)
  # Errors 1, 0, 0 against std 1, 1, 2: ranks of std (1.5, 1.5, 3) and of errors (3, 1.5, 1.5).
  assert m["spearman_std"] == pytest.approx(-0.5)


def test_gaussian_nll_loss_and_gradient():
  labels = tf.constant([1.0, 5.0])
  predictions = tf.Variable([[0.0, math.log(2.0)], [9.0, 0.0]])
  with tf.GradientTape() as tape:
    loss = losses.masked_mean(losses.per_row_loss(REGRESSION, labels, predictions),
                              tf.constant([1.0, 0.0]))
  # Row 1 only: (log 2 + 1/2) / 2; d/dmu = (mu - y) e^-s = -1/2, d/ds = (1 - e^-s (y - mu)^2) / 2
  # = 1/4.
  assert float(loss) == pytest.approx((math.log(2.0) + 0.5) / 2)
  np.testing.assert_allclose(tape.gradient(loss, predictions).numpy(),
                             [[-0.5, 0.25], [0.0, 0.0]], rtol=1e-6)


def test_log_variance_outside_its_range_still_has_a_gradient_back():
  """A log-variance head that drifted to 30 (past the +-10 bound) gets a gradient that pulls
  it back towards a residual of 1 (a hard clip gave it 0 and left it there); inside +-8 the
  bound is the identity."""
  for raw in (30.0, -30.0):
    predictions = tf.Variable([[0.0, raw]])
    with tf.GradientTape() as tape:
      loss = losses.per_row_loss(REGRESSION, tf.constant([1.0]), predictions)
    step = float(tape.gradient(loss, predictions)[0, 1])
    assert step != 0.0 and np.sign(step) == np.sign(raw)  # descent moves it towards 0
  inside = np.array([-8.0, -3.0, 0.0, 5.0, 8.0])
  np.testing.assert_array_equal(predictive.bounded_log_variance(inside), inside)
  outside = predictive.bounded_log_variance(np.array([-1e3, 9.0, 1e3]))
  assert -10.0 <= outside[0] < -9.99 and 8.0 < outside[1] < 9.0 and 9.99 < outside[2] <= 10.0


def test_a_task_without_labels_gives_zero_loss_and_gradient():
  predictions = tf.Variable([[0.5, 30.0]])  # a log-variance far outside the clipped range
  with tf.GradientTape() as tape:
    loss = losses.masked_mean(losses.per_row_loss(REGRESSION, tf.constant([0.0]), predictions),
                              tf.constant([0.0]))
  assert float(loss) == 0.0
  assert np.all(tape.gradient(loss, predictions).numpy() == 0.0)


def test_recalibrated_validation_errors_have_unit_variance():
  rng = np.random.default_rng(1)
  labels = rng.normal(scale=3.0, size=40)
  split = splits.SplitArrays(np.zeros((40, 1), np.float32), {"hardness": labels},
                             {"hardness": np.r_[np.ones(30), np.zeros(10)]})
  dists = {"hardness": predictive.combine(REGRESSION, [np.zeros((40, 2))])}
  scale = uncertainty.variance_scales([REGRESSION], split, dists)["hardness"]
  assert np.mean(labels[:30]**2 / scale) == pytest.approx(1.0)
  calibrated = uncertainty.task_metrics(REGRESSION, IDENTITY, split, dists["hardness"], scale)
  raw = uncertainty.task_metrics(REGRESSION, IDENTITY, split, dists["hardness"])
  assert calibrated["nll"] < raw["nll"]
  assert calibrated["count"] == 30


def test_methods_that_need_positive_losses_are_registered_and_refused():
  from kmtl import config as config_lib  # pylint: disable=g-import-not-at-top
  from kmtl import uncertainty_config  # pylint: disable=g-import-not-at-top
  from kmtl.surgery import registry  # pylint: disable=g-import-not-at-top
  for name in registry.POSITIVE_LOSSES:
    with pytest.raises(ValueError, match=f"--surgery={name} reads task losses as positive"):
      config_lib.RunConfig(train=config_lib.TrainConfig(surgery=name),
                           uncertainty=uncertainty_config.UncertaintyConfig(heteroscedastic=True))
  config_lib.RunConfig(train=config_lib.TrainConfig(surgery="pcgrad"),
                       uncertainty=uncertainty_config.UncertaintyConfig(heteroscedastic=True))
