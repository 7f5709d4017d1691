"""The serving graph of an exported model (kmtl/export.py): raw inputs in, predictions in
original units out, with the predictive distribution of an ensemble, a heteroscedastic head or
MC dropout (kmtl/predictive.py) and the out-of-domain check (kmtl/domain.py) inside it.

Outputs per task kind:
  regression  `<task>` (a log-transformed target's median, exp of its log-space mean); with
              uncertainty also `<task>_std` (the standard deviation in original units; for a
              log target that of the log-normal), `<task>_lower` and `<task>_upper` (the
              central 95% interval, recalibrated on validation);
  binary      `<task>_probability` (the members' mean), `<task>_label` (probability >=
              THRESHOLD) and, for several members or samples, `<task>_probability_std`;
  multiclass  `<task>_probabilities` [None, C], `<task>` (the most probable class's name) and,
              for several members or samples, `<task>_probabilities_std`;
and, where the run recorded its domain, `out_of_domain` (bool), `out_of_domain_reason` (text,
empty inside the domain) and `nearest_training_distance`.
"""

import tensorflow as tf

from kmtl import domain as domain_lib
from kmtl import predictive
from kmtl.data import conditions
from kmtl.data import schema

THRESHOLD = 0.5


def _condition_columns(encoder, values):
  """[None, k] float32 model inputs of one test condition (kmtl/data/conditions.py): a
  numeric one as it is (an empty value, NaN, as its fill), a categorical one one-hot over
  its training vocabulary (all zeros for any other category)."""
  if encoder["kind"] == conditions.NUMERIC:
    if encoder["fill"] is not None:
      values = tf.where(tf.math.is_nan(values), tf.constant(encoder["fill"], tf.float32), values)
    return values[:, None]
  vocabulary = tf.constant(encoder["vocabulary"], tf.string)
  return tf.cast(tf.equal(values[:, None], vocabulary[None, :]), tf.float32)


def serving_function(members, preprocessing, mc_samples=0, domain=None):
  """A tf.function: raw features [None, F] and one [None] input per test condition ->
  {output name: tensor}. `members`: the ensemble's Keras models (one for a single model);
  `mc_samples` > 0 samples the one model's dropout that many times."""
  mean = tf.constant(preprocessing["feature_mean"], tf.float32)
  scale = tf.constant(preprocessing["feature_scale"], tf.float32)
  encoders = preprocessing.get("conditions") or []
  signature = [tf.TensorSpec([None, len(preprocessing["feature_names"])], tf.float32,
                             name="features")] + [
      tf.TensorSpec([None], tf.float32 if e["kind"] == conditions.NUMERIC else tf.string,
                    name=e["name"]) for e in encoders]

  @tf.function(input_signature=signature)
  def serve(features, *condition_values):
    inputs = tf.concat([features] + [_condition_columns(e, v) for e, v in
                                     zip(encoders, condition_values)], axis=1)
    scaled = (inputs - mean) / scale
    calls = ([members[0](scaled, training=True) for _ in range(mc_samples)] if mc_samples
             else [m(scaled, training=False) for m in members])
    result = {}
    for name, target in preprocessing["targets"].items():
      outputs = [c[name] for c in calls]
      if target["kind"] == schema.MULTICLASS:
        result.update(_class_outputs(name, outputs, target["classes"]))
      elif target["kind"] == schema.BINARY:
        result.update(_binary_outputs(name, outputs))
      else:
        result.update(_regression_outputs(name, outputs, target))
    if domain is not None:
      result.update(_domain_outputs(features, domain, mean, scale))
    return result

  return serve


def _named(outputs):
  return {name: tf.identity(value, name=name) for name, value in outputs.items()}


def _regression_outputs(name, outputs, target):
  """The mean in original units and, with a spread, its std and 95% interval."""
  stacked = tf.stack(outputs)  # [M, B], or [M, B, 2] with a log-variance
  means = stacked[..., 0] if stacked.shape.rank == 3 else stacked
  variance = tf.math.reduce_variance(means, axis=0)
  if stacked.shape.rank == 3:
    log_variance = predictive.bounded_log_variance(stacked[..., 1], tf)
    variance += tf.reduce_mean(tf.exp(log_variance), axis=0)
  y = tf.reduce_mean(means, axis=0) * target["scale"] + target["mean"]
  log = target["transform"] == "log"
  result = {name: tf.exp(y) if log else y}
  if stacked.shape.rank == 2 and len(outputs) == 1:
    return _named(result)
  std = tf.sqrt(variance * target.get("variance_scale", 1.0)) * target["scale"]
  lower, upper = y - predictive.Z_95 * std, y + predictive.Z_95 * std
  if log:
    std = tf.sqrt(tf.math.expm1(tf.square(std))) * tf.exp(y + tf.square(std) / 2)
    lower, upper = tf.exp(lower), tf.exp(upper)
  result.update({f"{name}_std": std, f"{name}_lower": lower, f"{name}_upper": upper})
  return _named(result)


def _binary_outputs(name, outputs):
  probabilities = tf.sigmoid(tf.stack(outputs))
  probability = tf.reduce_mean(probabilities, axis=0)
  result = {f"{name}_probability": probability,
            f"{name}_label": tf.cast(probability >= THRESHOLD, tf.int64)}
  if len(outputs) > 1:
    result[f"{name}_probability_std"] = tf.math.reduce_std(probabilities, axis=0)
  return _named(result)


def _class_outputs(name, outputs, classes):
  """A multiclass task's class probabilities, most probable class and members' spread."""
  probabilities = tf.nn.softmax(tf.stack(outputs), axis=-1)
  mean = tf.reduce_mean(probabilities, axis=0)
  result = {f"{name}_probabilities": mean,
            name: tf.gather(tf.constant(classes, tf.string), tf.argmax(mean, axis=-1))}
  if len(outputs) > 1:
    result[f"{name}_probabilities_std"] = tf.math.reduce_std(probabilities, axis=0)
  return _named(result)


def _domain_outputs(features, domain, feature_mean, feature_scale):
  """Whether each row lies outside the training domain, why, and its nearest training
  distance."""
  columns = tf.constant(domain["columns"], tf.int32)
  x = tf.gather(features, columns, axis=1)
  if domain["space"] == domain_lib.FEATURES:
    x = (x - tf.gather(feature_mean, columns)) / tf.gather(feature_scale, columns)
  training = tf.constant(domain["training"], tf.float32)
  squared = (tf.reduce_sum(tf.square(x), axis=1, keepdims=True) - 2.0 * tf.matmul(
      x, training, transpose_b=True) + tf.reduce_sum(tf.square(training), axis=1)[None, :])
  distance = tf.sqrt(tf.maximum(tf.reduce_min(squared, axis=1), 0.0))
  unseen = tf.logical_and(x > 0, tf.logical_not(tf.constant(domain["seen"], tf.bool))[None, :])
  names = tf.strings.strip(tf.strings.reduce_join(
      tf.where(unseen, tf.constant([str(n) + " " for n in domain["names"]]), ""), axis=1))
  new_elements = tf.where(tf.reduce_any(unseen, axis=1),
                          "elements never in training: " + names, "")
  # Distances are float32 here and float64 when the threshold was fitted.
  far = distance > domain["threshold"] * (1 + 1e-5) + 1e-6
  what = "composition" if domain["space"] == domain_lib.COMPOSITION else "feature vector"
  too_far = tf.where(far, tf.strings.join([
      f"nearest training {what} at ", tf.strings.as_string(distance, precision=3),
      f", beyond the test split's farthest ({domain['threshold']:.3f})"]), "")
  both = tf.logical_and(new_elements != "", too_far != "")
  reason = tf.where(both, new_elements + "; " + too_far, new_elements + too_far)
  return _named({"out_of_domain": reason != "", "out_of_domain_reason": reason,
                 "nearest_training_distance": distance})
