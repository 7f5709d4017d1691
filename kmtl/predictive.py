"""The predictive distribution of a model, an ensemble or MC-dropout samples, task by task.

A regression head with a log-variance output (`--uncertainty_head`) predicts a Gaussian
N(mu, sigma^2) in model units (the standardised, possibly log-transformed target); M members
(ensemble members or dropout samples) combine as the mixture's moments:
  mean = (1/M) sum_k mu_k,  variance = (1/M) sum_k sigma_k^2 + (1/M) sum_k (mu_k - mean)^2,
aleatoric plus epistemic. Classification members average their probabilities; their spread is
the members' standard deviation. Recalibration multiplies a task's variance by the scale that
maximises the Gaussian likelihood of the validation labels, mean((y - mean)^2 / variance).
"""

import statistics

import numpy as np

from kmtl.data import schema

LOG_VARIANCE_RANGE = (-10.0, 10.0)  # sigma from 0.0067 to 148 standard deviations
_LOG_VARIANCE_LINEAR = 8.0  # the bound is the identity up to here


def bounded_log_variance(raw, xp=np):
  """The heteroscedastic head's log-variance, held softly inside LOG_VARIANCE_RANGE: the raw
  output itself within +-8, then 8 + 2 z / (1 + z) with z the excess in units of 2, which
  approaches +-10 with a gradient 1 / (1 + z)^2 that decays slowly and never vanishes (a hard
  clip's is 0 outside, so a head that drifted there could not return). `xp` is numpy or
  tensorflow."""
  width = LOG_VARIANCE_RANGE[1] - _LOG_VARIANCE_LINEAR
  excess = xp.maximum(xp.abs(raw) - _LOG_VARIANCE_LINEAR, 0.0) / width
  bounded = _LOG_VARIANCE_LINEAR + width * excess / (1.0 + excess)
  return xp.where(xp.abs(raw) > _LOG_VARIANCE_LINEAR, xp.sign(raw) * bounded, raw)
Z_68 = statistics.NormalDist().inv_cdf(0.84)
Z_95 = statistics.NormalDist().inv_cdf(0.975)


def head_outputs(tasks, heteroscedastic=False):
  """{task: outputs of its head}: C class logits, 2 (mean and log-variance) for a regression
  task with the heteroscedastic head, else 1."""
  return {t.name: (2 if heteroscedastic and t.kind == schema.REGRESSION else t.num_outputs)
          for t in tasks}


def point(task, output):
  """The point prediction in model units of one member's output: a regression head's mean
  (its first column when it also predicts a log-variance), or the logits as they are."""
  output = np.asarray(output)
  if task.kind == schema.REGRESSION and output.ndim == 2:
    return output[:, 0]
  return output


def _member_moments(task, outputs):
  """([M, n] means, [M, n] aleatoric variances) of a regression task's member outputs."""
  stacked = np.stack([np.asarray(o, np.float64) for o in outputs])
  if stacked.ndim == 3:
    log_variance = bounded_log_variance(stacked[..., 1])
    return stacked[..., 0], np.exp(log_variance)
  return stacked, np.zeros_like(stacked)


def combine(task, outputs):
  """One task's predictive distribution from its M members' model outputs: for regression
  {"mean", "variance", "aleatoric", "epistemic"} [n] in model units; for classification
  {"probability", "spread"}: the mean probability ([n] or [n, C]) and its standard deviation
  over members."""
  if task.kind == schema.REGRESSION:
    means, aleatoric = _member_moments(task, outputs)
    mean = means.mean(axis=0)
    epistemic = means.var(axis=0)
    return {"mean": mean, "aleatoric": aleatoric.mean(axis=0), "epistemic": epistemic,
            "variance": aleatoric.mean(axis=0) + epistemic}
  logits = np.stack([np.asarray(o, np.float64) for o in outputs])
  if task.kind == schema.MULTICLASS:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
  else:
    probabilities = 1.0 / (1.0 + np.exp(-logits))
  return {"probability": probabilities.mean(axis=0), "spread": probabilities.std(axis=0)}


def variance_scale(labels, mean, variance):
  """The factor s that makes N(mean, s * variance) most likely for `labels` (model units):
  mean((y - mean)^2 / variance); None without rows or where a variance is 0."""
  labels, mean, variance = (np.asarray(a, np.float64) for a in (labels, mean, variance))
  if not labels.size or not (variance > 0).all():
    return None
  return float(np.mean(np.square(labels - mean) / variance))


def in_target_units(target, mean, variance):
  """(mean, std) in the units the target is modelled in: original units, or the natural log of
  them for a log-transformed target. `target` holds the scaler's `mean`, `scale` and
  `transform`, as preprocessing.json records it."""
  return (np.asarray(mean) * target["scale"] + target["mean"],
          np.sqrt(np.asarray(variance)) * target["scale"])


def to_original(target, values):
  """Target units (see `in_target_units`) -> original units."""
  return np.exp(values) if target["transform"] == "log" else np.asarray(values)
