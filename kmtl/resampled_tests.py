"""Paired comparisons over resampled splits whose training sets overlap.

Two configurations scored on the same J splits give J paired differences d_j. The splits share
most of their training rows, so the d_j are correlated and the plain paired t-test, which takes
them as independent, understates the variance of their mean. Nadeau & Bengio (Machine Learning
52, 2003) correct it: Var(mean d) ~ (1/J + n_test/n_train) s^2, with s^2 the sample variance of
the d_j. The corrected resampled t-test (Bouckaert & Frank, PAKDD 2004) compares
mean d / sqrt((1/J + n_test/n_train) s^2) with Student's t on J - 1 degrees of freedom. The
correlated Bayesian t-test (Corani & Benavoli, Machine Learning 100, 2015; Benavoli et al., JMLR
18, 2017) has, under its non-informative prior, the posterior of the mean difference mu a
Student t on J - 1 degrees of freedom with location mean d and that same scale; a region of
practical equivalence (ROPE) [-r, r] splits it into P(mu < -r), P(-r <= mu <= r) and P(mu > r).
For K-fold cross-validation n_test/n_train = 1/(K - 1).
"""

import dataclasses
import math

import numpy as np

DECIDED = 0.95  # the posterior probability a verdict needs
POWER = 0.8  # the power at which the smallest detectable effect is stated


def _stats():
  from scipy import stats  # pylint: disable=g-import-not-at-top  (slow to import)
  return stats


def corrected_scale(differences, test_train_ratio):
  """The corrected standard error of the mean difference: s * sqrt(1/J + n_test/n_train)."""
  d = np.asarray(differences, np.float64)
  return float(d.std(ddof=1) * math.sqrt(1.0 / len(d) + test_train_ratio))


def _spread(d):
  """Whether the differences vary beyond rounding (relative to their own size)."""
  return np.ptp(d) > 1e-12 * max(1.0, float(np.abs(d).max()))


def corrected_t_test(differences, test_train_ratio):
  """(t, two-sided p) of the corrected resampled t-test that the mean difference is 0; NaNs for
  fewer than 2 differences or none that differ (the test is then undefined)."""
  d = np.asarray(differences, np.float64)
  if len(d) < 2 or not _spread(d):
    return float("nan"), float("nan")
  t = float(d.mean()) / corrected_scale(d, test_train_ratio)
  return t, float(2.0 * _stats().t.sf(abs(t), len(d) - 1))


def corrected_interval(differences, test_train_ratio, confidence=0.95):
  """The half-width of the corrected confidence interval of the mean difference (NaN for fewer
  than 2 differences)."""
  d = np.asarray(differences, np.float64)
  if len(d) < 2:
    return float("nan")
  return float(_stats().t.ppf(0.5 + confidence / 2, len(d) - 1)
               * corrected_scale(d, test_train_ratio))


@dataclasses.dataclass(frozen=True)
class Posterior:
  """The correlated Bayesian t-test's posterior of the mean difference (configuration minus
  baseline) split by the ROPE [-rope, rope]: P(below), P(inside), P(above)."""
  below: float
  inside: float
  above: float
  rope: float

  def oriented(self, lower_is_better):
    """(P(better), P(equivalent), P(worse)) of the configuration, beyond the ROPE."""
    if lower_is_better:
      return self.below, self.inside, self.above
    return self.above, self.inside, self.below


def posterior(differences, test_train_ratio, rope):
  """The `Posterior` of the differences with half-width `rope` (>= 0); None for fewer than 2
  differences or none that differ (no variance to scale it by: the verdict stays undecided
  rather than certain)."""
  d = np.asarray(differences, np.float64)
  if len(d) < 2 or not _spread(d):
    return None
  mean = float(d.mean())
  dist = _stats().t(len(d) - 1, loc=mean, scale=corrected_scale(d, test_train_ratio))
  below, above = float(dist.cdf(-rope)), float(dist.sf(rope))
  return Posterior(below, max(0.0, 1.0 - below - above), above, rope)


def verdict(post, lower_is_better):
  """Positive transfer, equivalent or negative transfer when the posterior gives it at least
  `DECIDED`, else undecided (also without a posterior)."""
  if post is None:
    return "undecided"
  better, equivalent, worse = post.oriented(lower_is_better)
  if better >= DECIDED:
    return "positive transfer"
  if worse >= DECIDED:
    return "negative transfer"
  if equivalent >= DECIDED:
    return "equivalent"
  return "undecided"


def detectable_effect(sd, runs, test_train_ratio, alpha=0.05, power=POWER):
  """The smallest true mean difference the corrected t-test at two-sided `alpha` detects with
  probability `power`, from `runs` paired splits whose differences have standard deviation
  `sd` (NaN for fewer than 2 runs)."""
  if runs < 2:
    return float("nan")
  t = _stats().t
  return float((t.ppf(1 - alpha / 2, runs - 1) + t.ppf(power, runs - 1))
               * sd * math.sqrt(1.0 / runs + test_train_ratio))


def runs_needed(sd, target, test_train_ratio, alpha=0.05, power=POWER, most=10_000):
  """The fewest paired splits whose `detectable_effect` is at most `target`; None if even
  `most` are not enough (the correction's floor, z * sd * sqrt(n_test/n_train), can lie above
  `target`: more repeats of the same design then never suffice)."""
  if sd == 0:
    return 2
  if detectable_effect(sd, most, test_train_ratio, alpha, power) > target:
    return None
  low, high = 2, most
  while low < high:
    mid = (low + high) // 2
    if detectable_effect(sd, mid, test_train_ratio, alpha, power) <= target:
      high = mid
    else:
      low = mid + 1
  return low


# The default ROPEs: differences a materials scientist would not act on. R2 and balanced
# accuracy 0.01 and recall 0.02 (one glass former in fifty) are absolute; the MAE's 2% is of the
# baseline's own MAE, since its units are the property's.
DEFAULT_ROPES = "r2:0.01,r2_log:0.01,recall:0.02,balanced_accuracy:0.01,auroc:0.01,mae:2%"


@dataclasses.dataclass(frozen=True)
class Rope:
  """A metric's region of practical equivalence: +-`width`, or +-`width` times the baseline's
  mean when `relative`."""
  width: float
  relative: bool = False

  def half_width(self, baseline_mean):
    return self.width * abs(baseline_mean) if self.relative else self.width

  def __str__(self):
    return f"{self.width * 100:g}%" if self.relative else f"{self.width:g}"


def parse_ropes(text, flag="--rope"):
  """{metric: Rope} of `metric:width[%],...`; a ValueError naming `flag` for a bad entry."""
  out = {}
  for entry in filter(None, (e.strip() for e in text.split(","))):
    metric, sep, value = entry.partition(":")
    relative = value.endswith("%")
    try:
      width = float(value[:-1] if relative else value)
    except ValueError:
      width = float("nan")
    if not sep or not metric or not math.isfinite(width) or width < 0:
      raise ValueError(f"{flag}: {entry!r}: expected METRIC:WIDTH or METRIC:PERCENT%, a "
                       "width of 0 or more")
    if metric in out:
      raise ValueError(f"{flag}: {metric} is given twice")
    out[metric] = Rope(width / 100 if relative else width, relative)
  return out


def ropes(text, reported, flag="--rope", defaults=DEFAULT_ROPES):
  """`defaults` with `text`'s entries over them; a ValueError naming `flag` for a metric the
  study does not report (`reported`)."""
  given = parse_ropes(text, flag)
  unknown = sorted(set(given) - set(reported))
  if unknown:
    raise ValueError(f"{flag}: the study reports no {', '.join(unknown)} (it reports "
                     f"{', '.join(sorted(reported))})")
  return {**parse_ropes(defaults), **given}
