"""A trained model's (or ensemble's) uncertainty on the validation and test splits: member
outputs, the predictive distribution (kmtl/predictive.py), one variance scale per regression
task fitted on validation, and test metrics of accuracy and calibration after it."""

import numpy as np
from sklearn import calibration as sk_calibration

from kmtl import metrics as metrics_lib
from kmtl import predictive
from kmtl import uncertainty_metrics
from kmtl.data import schema


def member_outputs(models, features, mc_samples=0, chunk=8192):
  """[{task: output}] per member: each model in inference mode, or `mc_samples` dropout samples
  of the one model."""
  calls = ([(models[0], True)] * mc_samples) if mc_samples else [(m, False) for m in models]
  members = []
  for model, training in calls:
    parts = [model(features[i:i + chunk], training=training)
             for i in range(0, max(len(features), 1), chunk)]
    members.append({name: np.concatenate([np.asarray(p[name]) for p in parts])
                    for name in parts[0]})
  return members


def distributions(tasks, members):
  """{task: predictive distribution} (kmtl/predictive.py `combine`)."""
  return {t.name: predictive.combine(t, [m[t.name] for m in members]) for t in tasks}


def variance_scales(tasks, split, dists):
  """{regression task: the variance scale that calibrates it on `split`}; 1 where it cannot be
  fitted (no labelled row, or a zero variance)."""
  scales = {}
  for task in tasks:
    if task.kind != schema.REGRESSION:
      continue
    rows = split.masks[task.name] > 0
    d = dists[task.name]
    scale = predictive.variance_scale(split.labels[task.name][rows], d["mean"][rows],
                                      d["variance"][rows])
    scales[task.name] = 1.0 if scale is None else scale
  return scales


def task_metrics(task, target, split, dist, scale=1.0):
  """Accuracy metrics of the distribution's mean and, for regression, of its uncertainty
  (variance multiplied by `scale`), over the split's labelled rows; `target` as in
  preprocessing.json."""
  rows = split.masks[task.name] > 0
  labels = split.labels[task.name][rows]
  if task.kind != schema.REGRESSION:
    return metrics_lib.task_metrics(task, labels, dist["probability"][rows])
  mean, std = predictive.in_target_units(target, dist["mean"][rows],
                                         dist["variance"][rows] * scale)
  y_true = predictive.to_original(target, labels * target["scale"] + target["mean"])
  out = metrics_lib.task_metrics(task, y_true, predictive.to_original(target, mean))
  out.update(uncertainty_metrics.regression_uncertainty(target, y_true, mean, std))
  return out


def calibration_curve(task, target, split, dist, scale=1.0):
  """What a calibration plot draws, over the split's labelled rows: for regression the observed
  against the nominal coverage of central intervals; for classification the reliability
  diagram (observed frequency against mean confidence in 10 equal-width bins; for a
  multiclass task of the most probable class)."""
  rows = split.masks[task.name] > 0
  labels = split.labels[task.name][rows]
  if not rows.any():
    return {}
  if task.kind == schema.REGRESSION:
    mean, std = predictive.in_target_units(target, dist["mean"][rows],
                                           dist["variance"][rows] * scale)
    if not (std > 0).all():
      return {}
    z = uncertainty_metrics.standardized_errors(labels * target["scale"] + target["mean"], mean,
                                                std)
    return {"nominal": uncertainty_metrics.NOMINAL_LEVELS.tolist(),
            "observed": uncertainty_metrics.observed_coverage(z).tolist()}
  probability = dist["probability"][rows]
  if task.kind == schema.MULTICLASS:
    outcome, probability = probability.argmax(axis=1) == labels, probability.max(axis=1)
  else:
    outcome = labels > 0.5
  frequency, confidence = sk_calibration.calibration_curve(outcome, probability, n_bins=10)
  return {"confidence": confidence.tolist(), "frequency": frequency.tolist()}


def evaluate(models, tasks, prepared, targets, mc_samples=0):
  """(test metrics {task: {metric: value}} after recalibration, {task: variance scale},
  {task: uncalibrated test metrics}, {task: calibration curve}) of `models`' predictive
  distribution."""
  val = distributions(tasks, member_outputs(models, prepared.val.features, mc_samples))
  test = distributions(tasks, member_outputs(models, prepared.test.features, mc_samples))
  scales = variance_scales(tasks, prepared.val, val)
  calibrated = {t.name: task_metrics(t, targets[t.name], prepared.test, test[t.name],
                                     scales.get(t.name, 1.0)) for t in tasks}
  raw = {t.name: task_metrics(t, targets[t.name], prepared.test, test[t.name])
         for t in tasks if t.kind == schema.REGRESSION}
  curves = {t.name: calibration_curve(t, targets[t.name], prepared.test, test[t.name],
                                      scales.get(t.name, 1.0)) for t in tasks}
  return calibrated, scales, raw, curves
