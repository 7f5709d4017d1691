"""Tests over resampled splits: the corrected resampled t-test, the correlated Bayesian t-test
with a ROPE, the detectable difference and the ROPE flag, on values worked out by hand."""

import math

import pytest
from scipy import stats

from kmtl import resampled_tests

# Five differences with mean 0.02 and sample variance 2.5e-4 (squared deviations 1e-4, 1e-4,
# 0, 4e-4, 4e-4 over 4).
DIFFS = [0.01, 0.03, 0.02, 0.04, 0.00]


def test_the_corrected_t_test_by_hand():
  # 5-fold CV: test/train 1/4. Scale sqrt(2.5e-4 * (1/5 + 1/4)) = sqrt(1.125e-4).
  assert resampled_tests.corrected_scale(DIFFS, 0.25) == pytest.approx(math.sqrt(1.125e-4))
  t, p = resampled_tests.corrected_t_test(DIFFS, 0.25)
  assert t == pytest.approx(0.02 / math.sqrt(1.125e-4))  # 1.8856
  assert p == pytest.approx(2 * stats.t.sf(0.02 / math.sqrt(1.125e-4), 4))
  # The plain one-sample t-test is the uncorrected case; the correction only widens.
  plain = stats.ttest_1samp(DIFFS, 0.0)
  assert resampled_tests.corrected_t_test(DIFFS, 0.0) == pytest.approx(
      (plain.statistic, plain.pvalue))
  assert p > plain.pvalue
  assert resampled_tests.corrected_interval(DIFFS, 0.25) == pytest.approx(
      stats.t.ppf(0.975, 4) * math.sqrt(1.125e-4))
  # Undefined without two differences that differ.
  assert all(math.isnan(v) for v in resampled_tests.corrected_t_test([0.1, 0.1, 0.1], 0.25))
  assert all(math.isnan(v) for v in resampled_tests.corrected_t_test([0.1], 0.25))


def test_the_posterior_by_hand_and_beside_the_t_test():
  scale = math.sqrt(1.125e-4)
  post = resampled_tests.posterior(DIFFS, 0.25, rope=0.01)
  # t(4) at 0.02 with that scale, split at -0.01 and 0.01.
  assert post.below == pytest.approx(stats.t.cdf((-0.01 - 0.02) / scale, 4))
  assert post.above == pytest.approx(stats.t.sf((0.01 - 0.02) / scale, 4))
  assert post.below + post.inside + post.above == pytest.approx(1.0)
  # Without a ROPE, P(mu > 0) is one minus the corrected test's one-sided p.
  _, p = resampled_tests.corrected_t_test(DIFFS, 0.25)
  assert resampled_tests.posterior(DIFFS, 0.25, 0.0).above == pytest.approx(1 - p / 2)
  assert post.oriented(lower_is_better=False) == (post.above, post.inside, post.below)
  assert post.oriented(lower_is_better=True) == (post.below, post.inside, post.above)
  assert resampled_tests.posterior([0.1, 0.1], 0.25, 0.01) is None


def test_verdicts_need_a_posterior_of_095():
  p = resampled_tests.Posterior
  assert resampled_tests.verdict(p(0.01, 0.02, 0.97, 0.01), False) == "positive transfer"
  assert resampled_tests.verdict(p(0.01, 0.02, 0.97, 0.01), True) == "negative transfer"
  assert resampled_tests.verdict(p(0.02, 0.96, 0.02, 0.01), False) == "equivalent"
  assert resampled_tests.verdict(p(0.06, 0.04, 0.90, 0.01), False) == "undecided"
  assert resampled_tests.verdict(None, False) == "undecided"


def test_the_detectable_difference_and_the_runs_it_needs():
  want = (stats.t.ppf(0.975, 9) + stats.t.ppf(0.8, 9)) * 0.02 * math.sqrt(1 / 10 + 0.25)
  assert resampled_tests.detectable_effect(0.02, 10, 0.25) == pytest.approx(want)
  runs = resampled_tests.runs_needed(0.02, 0.05, 0.25)
  assert resampled_tests.detectable_effect(0.02, runs, 0.25) <= 0.05
  assert resampled_tests.detectable_effect(0.02, runs - 1, 0.25) > 0.05
  # The correction's floor: about 2.8 * sd * sqrt(1/4) = 0.028 here, whatever the repeats.
  assert resampled_tests.runs_needed(0.02, 0.02, 0.25) is None
  assert math.isnan(resampled_tests.detectable_effect(0.02, 1, 0.25))


def test_ropes_parse_over_the_defaults_and_refuse_bad_entries():
  ropes = resampled_tests.ropes("r2:0.02,mae:5%", ["r2", "mae", "recall"])
  assert ropes["r2"] == resampled_tests.Rope(0.02)
  assert ropes["mae"] == resampled_tests.Rope(0.05, relative=True)
  assert ropes["mae"].half_width(-80.0) == pytest.approx(4.0)
  assert ropes["recall"] == resampled_tests.Rope(0.02)  # a default
  assert str(ropes["mae"]) == "5%"
  for text, message in (("r2:-0.1", "a width of 0 or more"), ("r2", "expected METRIC:WIDTH"),
                        ("r2:x", "expected METRIC:WIDTH"), ("r2:0.1,r2:0.2", "r2 is given twice")):
    with pytest.raises(ValueError, match=f"--rope: .*{message}"):
      resampled_tests.ropes(text, ["r2"])
  with pytest.raises(ValueError, match="--rope: the study reports no auroc"):
    resampled_tests.ropes("auroc:0.01", ["r2", "mae"])
