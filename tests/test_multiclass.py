"""Multiclass tasks: spec, labels, masked softmax loss, metrics, training, export and predict."""

import json
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import export
from kmtl import gbm
from kmtl import losses
from kmtl import metrics
from kmtl.data import io
from kmtl.data import repeats
from kmtl.data import scaling
from kmtl.data import schema
from kmtl.data import splits
from kmtl.data import tables
from kmtl.data import validation
from tests import helpers

PHASE = schema.TaskSpec("structure", schema.MULTICLASS, classes=("BCC", "FCC", "mixed"))


def _with_structure(frame):
  """The tiny synthetic table plus a structure class from VEC (Guo's rule: BCC below 6.87,
  FCC above 8.0, mixed between), labelled on the hardness rows."""
  vec = frame["vec"].to_numpy()
  structure = np.where(vec < 6.87, "BCC", np.where(vec > 8.0, "FCC", "mixed")).astype(object)
  frame["structure"] = np.where(frame["hardness"].notna(), structure, None)
  return frame


def test_task_spec_parses_classes_in_the_given_order():
  resistivity, phase, gfa = schema.parse_tasks(
      "resistivity,phase:multiclass,gfa:multiclass:crystal|ribbon|BMG")
  assert phase.kind == schema.MULTICLASS and phase.classes == ()
  assert gfa.classes == ("crystal", "ribbon", "BMG") and gfa.num_outputs == 3
  assert resistivity.num_outputs == 1


@pytest.mark.parametrize("text, fragment", [
    ("phase:multiclass:BCC", "needs at least 2"),
    ("phase:multiclass:BCC|BCC", "must be distinct"),
    ("phase:multiclass:BCC||FCC", "must be distinct and non-empty"),
    ("phase:multiclass:BCC|FCC:extra", "expected name:multiclass"),
])
def test_bad_class_lists_are_refused(text, fragment):
  with pytest.raises(schema.SchemaError, match=fragment):
    schema.parse_tasks(text)


def test_classes_come_from_the_data_sorted_or_from_the_spec():
  frame = pd.DataFrame({"phase": ["FCC", None, " BCC", "other", "", "FCC", "BCC", "other"]})
  codes, task = validation.class_labels(frame, schema.parse_tasks("phase:multiclass")[0], "f.csv")
  assert task.classes == ("BCC", "FCC", "other")
  np.testing.assert_array_equal(codes, [1, np.nan, 0, 2, np.nan, 1, 0, 2])
  listed = schema.parse_tasks("phase:multiclass:other|FCC|BCC")[0]
  codes, task = validation.class_labels(frame, listed, "f.csv")
  assert task.classes == ("other", "FCC", "BCC")
  np.testing.assert_array_equal(codes, [1, np.nan, 2, 0, np.nan, 1, 2, 0])


def test_numeric_class_names_read_the_same_as_integers_or_floats():
  ints = pd.DataFrame({"grade": [1, 2, 3, 2, 1, 3]})
  floats = pd.DataFrame({"grade": [1.0, 2.0, np.nan, 3.0, 1.0, 2.0, 3.0]})
  task = schema.parse_tasks("grade:multiclass")[0]
  assert validation.class_labels(ints, task, "a")[1].classes == ("1", "2", "3")
  np.testing.assert_array_equal(validation.class_labels(floats, task, "b")[0],
                                [0, 1, np.nan, 2, 0, 1, 2])


@pytest.mark.parametrize("labels, message", [
    (["BCC", "BCC", "FCC", "HCP", "FCC"], r"row 4, column 'phase': class 'HCP' is on this row"),
    (["0", "1", "BCC", "1", "0", "BCC"], r"row 3, column 'phase': class 'BCC' is a name but "
                                         r"\['0', '1'\] are numbers"),
    (["BCC", "FCC", "bcc", "FCC", "BCC", "bcc"], r"row 3, column 'phase': classes 'BCC' and "
                                                 r"'bcc' differ only in case")])
def test_classes_read_from_the_data_must_be_one_clean_set(labels, message):
  """A class on one row, numbers beside names, a case slip: each would become a class of its
  own, seen only as a metric of null; listed in --tasks they are accepted as listed."""
  frame = pd.DataFrame({"phase": labels})
  with pytest.raises(tables.DataError, match=r"^f\.csv: " + message):
    validation.class_labels(frame, schema.parse_tasks("phase:multiclass")[0], "f.csv")
  listed = "|".join(sorted(set(labels)))
  _, task = validation.class_labels(frame, schema.parse_tasks(f"phase:multiclass:{listed}")[0],
                                    "f.csv")
  assert task.classes == tuple(sorted(set(labels)))


def test_a_class_outside_the_listed_ones_names_row_and_column():
  frame = pd.DataFrame({"phase": ["BCC", "FCC", "HCP"]})
  task = schema.parse_tasks("phase:multiclass:BCC|FCC")[0]
  with pytest.raises(tables.DataError,
                     match=r"^f\.csv: row 3, column 'phase': unknown class 'HCP'; expected one "
                           r"of \['BCC', 'FCC'\]$"):
    validation.class_labels(frame, task, "f.csv")


def test_masked_softmax_cross_entropy_matches_the_hand_value():
  logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5], [9.0, -9.0, 3.0]], np.float32)
  labels = np.array([0.0, 2.0, 1.0], np.float32)
  mask = np.array([1.0, 1.0, 0.0], np.float32)
  # -log softmax: row 0 class 0, row 1 class 2 (uniform: log 3); row 2 is masked.
  row0 = -(2.0 - np.log(np.exp(2.0) + 1.0 + np.exp(-1.0)))
  expected = (row0 + np.log(3.0)) / 2
  per_row = losses.per_row_loss(PHASE, tf.constant(labels), tf.constant(logits))
  got = losses.masked_mean(per_row, tf.constant(mask))
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_a_batch_with_no_class_label_gives_zero_loss_and_zero_gradient():
  logits = tf.Variable(np.array([[1e4, -1e4, 0.0], [3.0, 1.0, 2.0]], np.float32))
  with tf.GradientTape() as tape:
    loss = losses.masked_mean(losses.per_row_loss(PHASE, tf.zeros([2]), logits), tf.zeros([2]))
  assert loss.numpy() == 0.0
  np.testing.assert_array_equal(tape.gradient(loss, logits).numpy(), np.zeros((2, 3)))


def test_class_metrics_match_values_worked_by_hand():
  truth = np.array([0, 0, 0, 1, 1, 2])
  probabilities = np.array([[.7, .2, .1], [.6, .3, .1], [.2, .7, .1],
                            [.1, .8, .1], [.5, .4, .1], [.1, .2, .7]])
  got = metrics.task_metrics(PHASE, truth, probabilities)
  # Predicted 0,0,1,1,0,2: recalls 2/3, 1/2, 1; precisions 2/3, 1/2, 1.
  assert got["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
  assert got["accuracy"] == pytest.approx(4 / 6)
  assert got["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
  assert got["recall_FCC"] == pytest.approx(0.5) and got["count"] == 6
  # One-vs-rest AUROC by counting ordered (positive, negative) pairs, ties as one half.
  def auc(c):
    pos, neg = probabilities[truth == c, c], probabilities[truth != c, c]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
  assert got["auroc"] == pytest.approx(np.mean([auc(0), auc(1), auc(2)]))


def test_an_absent_class_has_no_recall_and_no_auroc_term():
  truth = np.array([0, 1, 1, 0])
  probabilities = np.array([[.6, .3, .1], [.2, .7, .1], [.3, .3, .4], [.5, .1, .4]])
  got = metrics.task_metrics(PHASE, truth, probabilities)
  assert np.isnan(got["recall_mixed"])
  assert got["balanced_accuracy"] == pytest.approx((1.0 + 0.5) / 2)
  # Class 0 separates perfectly; class 1 (.7, .3 against .3, .1) wins 3 pairs and ties 1.
  assert got["auroc"] == pytest.approx((1.0 + 3.5 / 4) / 2)


def test_repeats_keep_their_most_frequent_class_and_groups_split_as_units():
  frame = pd.DataFrame({"composition": ["Fe", "Ni", "Fe", "Fe", "Ni", "Cu"],
                        "phase": ["FCC", "FCC", "BCC", "BCC", None, "FCC"]})
  data = io.load(frame, schema.parse_tasks("phase:multiclass"), ("Cu", "Fe", "Ni"))
  averaged = repeats.average_repeats(data)
  np.testing.assert_array_equal(averaged.labels["phase"], [0, 1, 1])  # Fe: BCC twice
  split = splits.assign_grouped_splits(data.labels, data.tasks, data.groups(), 0.0, 0.34, 0)
  assert len(set(split[[0, 2, 3]])) == 1 and len(set(split[[1, 4]])) == 1


def test_a_multiclass_task_with_one_class_is_refused():
  frame = pd.DataFrame({"composition": ["Fe", "Ni", "Cu"], "phase": ["FCC"] * 3})
  data = io.load(frame, schema.parse_tasks("phase:multiclass"), ("Cu", "Fe", "Ni"))
  with pytest.raises(tables.DataError, match="multiclass task 'phase' has 3 labels, all 'FCC'"):
    splits.row_splits(data, 0.0, 0.34, 0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp("multiclass")
  frame = _with_structure(helpers.tiny_frame(per_task=60))
  frame.to_csv(root / "tiny.csv", index=False)
  tasks = schema.parse_tasks("resistivity,hardness,structure:multiclass:BCC|FCC|mixed")
  workdir = root / "run"
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(root / "tiny.csv"), tasks=tasks),
      train=config_lib.TrainConfig(arch="structured", surgery="pcgrad", epochs=3,
                                   jit_compile=True, summaries=False),
      baseline_gbm=True, workdir=str(workdir)))
  return root, workdir, frame, result


def test_training_reports_class_metrics_beside_the_regression_ones(trained):
  _, workdir, frame, result = trained
  test = result["test"]["structure"]
  assert set(metrics.MULTICLASS_METRICS) <= set(test)
  assert {"recall_BCC", "recall_FCC", "recall_mixed"} <= set(test)
  assert 0.0 <= test["balanced_accuracy"] <= 1.0 and test["count"] > 0
  assert set(metrics.MULTICLASS_METRICS) <= set(result["gbm_test"]["structure"])
  history = [json.loads(line) for line in (workdir / "history.jsonl").read_text().splitlines()]
  assert np.isfinite(history[-1]["val"]["structure"]["balanced_accuracy"])
  prep = json.loads((workdir / "preprocessing.json").read_text())
  assert prep["targets"]["structure"]["classes"] == ["BCC", "FCC", "mixed"]


def test_export_serves_class_probabilities_and_the_class_name(trained):
  root, workdir, frame, _ = trained
  version = export.export_run(str(workdir), str(root / "serving"))
  features = frame[list(schema.feature_names())].to_numpy(np.float32)[:8]
  served = tf.saved_model.load(version).signatures["serving_default"](
      features=tf.constant(features))
  prep = json.loads((workdir / "preprocessing.json").read_text())
  scaled = (features - np.array(prep["feature_mean"])) / np.array(prep["feature_scale"])
  logits = np.asarray(keras.models.load_model(workdir / "model.keras")(
      scaled.astype(np.float32))["structure"], np.float64)
  expected = metrics.softmax(logits)
  np.testing.assert_allclose(served["structure_probabilities"].numpy(), expected, atol=1e-5)
  names = np.array(["BCC", "FCC", "mixed"])[expected.argmax(axis=1)]
  assert [v.decode() for v in served["structure"].numpy()] == names.tolist()

  frame.iloc[:8].to_csv(root / "in.csv", index=False)
  result = subprocess.run([sys.executable, "-m", "kmtl.predict", f"--model={version}",
                           f"--data={root / 'in.csv'}", f"--out={root / 'p.csv'}"],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  predicted = pd.read_csv(root / "p.csv")
  assert predicted["structure"].tolist() == names.tolist()
  columns = ["structure_p_BCC", "structure_p_FCC", "structure_p_mixed"]
  np.testing.assert_allclose(predicted[columns].to_numpy(), expected, atol=1e-5)


def test_boosting_fills_zero_for_a_class_absent_from_training():
  features = np.arange(12, dtype=np.float32).reshape(6, 2)
  train = splits.SplitArrays(features[:4], {"structure": np.array([0, 1, 0, 1], np.float32)},
                             {"structure": np.ones(4, np.float32)})
  test = splits.SplitArrays(features[4:], {"structure": np.array([2, 0], np.float32)},
                            {"structure": np.ones(2, np.float32)})
  prepared = splits.PreparedData(train, test, test, None, None,
                                 {"structure": scaling.TargetScaler(PHASE)})
  got = gbm.gradient_boosting(prepared, [PHASE])["structure"]
  assert got["recall_mixed"] == 0.0  # present in the test rows, never predicted
  assert got["count"] == 2
