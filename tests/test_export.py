"""Export for TF Serving and the predict command."""

import json
import os
import shutil
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
from kmtl import exported
from kmtl import predictions
from kmtl.data import conditions
from kmtl.data import io
from kmtl.data import schema
from tests import helpers


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp("export")
  frame = helpers.tiny_frame(per_task=60)
  data_path = root / "tiny.csv"
  frame.to_csv(data_path, index=False)
  workdir = root / "run"
  experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(data_path)),
      train=config_lib.TrainConfig(arch="structured", surgery="pcgrad", epochs=2,
                                   jit_compile=False, grad_stats=False),
      workdir=str(workdir)))
  return root, workdir, frame


def _expected_outputs(workdir, features):
  """The in-memory Keras model on scaled features, then the inverse transforms by hand."""
  model = keras.models.load_model(workdir / "model.keras")
  prep = json.loads((workdir / "preprocessing.json").read_text())
  scaled = (features - np.array(prep["feature_mean"])) / np.array(prep["feature_scale"])
  raw = model(scaled.astype(np.float32))
  out = {}
  for name, target in prep["targets"].items():
    z = np.asarray(raw[name], np.float64)
    if target["kind"] == schema.BINARY:
      out[f"{name}_probability"] = 1 / (1 + np.exp(-z))
      out[f"{name}_label"] = (out[f"{name}_probability"] >= 0.5).astype(np.int64)
    else:
      y = z * target["scale"] + target["mean"]
      out[name] = np.exp(y) if target["transform"] == "log" else y
  return out


def test_serving_default_in_a_fresh_process_matches_keras(trained, tmp_path):
  _, workdir, frame = trained
  version = export.export_run(str(workdir), str(tmp_path / "serving"))
  assert version == str(tmp_path / "serving" / "kmtl" / "1")
  features = frame[list(schema.feature_names())].to_numpy(np.float32)[:25]
  np.save(tmp_path / "x.npy", features)
  script = (
      "import json, sys, numpy as np, tensorflow as tf\n"
      f"m = tf.saved_model.load({version!r})\n"
      f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
      "out = m.signatures['serving_default'](features=tf.constant(x))\n"
      "json.dump({k: v.numpy().astype(str).tolist() if v.dtype == tf.string else\n"
      "           v.numpy().tolist() for k, v in out.items()}, sys.stdout)\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
  served = json.loads(result.stdout)
  expected = _expected_outputs(workdir, features)
  domain = {"out_of_domain", "out_of_domain_reason", "nearest_training_distance"}
  assert set(served) - domain == set(expected) == {"resistivity", "hardness",
                                                   "amorphous_probability", "amorphous_label"}
  assert domain <= set(served) and min(served["nearest_training_distance"]) >= 0
  assert all((r == "") != flagged for r, flagged in zip(served["out_of_domain_reason"],
                                                        served["out_of_domain"]))
  for name, values in expected.items():
    np.testing.assert_allclose(served[name], values, rtol=1e-5, atol=1e-6)
  metadata = exported.read_metadata(version)
  assert metadata["feature_names"] == list(schema.feature_names())
  assert set(metadata["test_metrics"]) == {"resistivity", "hardness", "amorphous"}


def test_saved_model_cli_lists_the_signature(trained, tmp_path):
  _, workdir, _ = trained
  version = export.export_run(str(workdir), str(tmp_path / "serving"))
  cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable),
                                                        "saved_model_cli")
  result = subprocess.run([cli, "show", "--dir", version, "--tag_set", "serve",
                           "--signature_def", "serving_default"],
                          capture_output=True, text=True, check=True)
  text = result.stdout
  assert "inputs['features'] tensor_info:" in text
  assert "dtype: DT_FLOAT" in text and "shape: (-1, 21)" in text
  for name, dtype in (("resistivity", "DT_FLOAT"), ("hardness", "DT_FLOAT"),
                      ("amorphous_probability", "DT_FLOAT"), ("amorphous_label", "DT_INT64")):
    block = text.split(f"outputs['{name}'] tensor_info:")[1].split("outputs[")[0]
    assert dtype in block and "shape: (-1)" in block


def test_versions_count_up_and_a_failed_export_leaves_nothing(trained, tmp_path, monkeypatch):
  _, workdir, _ = trained
  base = tmp_path / "serving"
  export.export_run(str(workdir), str(base))
  assert export.next_version(str(base / "kmtl")) == 2

  # Fail after the SavedModel is written, while its metadata is being written.
  seen = []

  def fail_writing_metadata(path, text):
    del text
    seen.append(os.listdir(os.path.dirname(os.path.dirname(path))))
    raise OSError("disk full")
  monkeypatch.setattr(export.atomic, "write_text", fail_writing_metadata)
  with pytest.raises(OSError, match="disk full"):
    export.export_run(str(workdir), str(base))
  assert "saved_model.pb" in seen[0]  # the failure really came mid-export
  assert sorted(os.listdir(base / "kmtl")) == ["1"]


def test_predict_command_matches_the_served_numbers(trained, tmp_path):
  root, workdir, frame = trained
  base = tmp_path / "serving"
  version = export.export_run(str(workdir), str(base))
  new = frame[["composition"]].iloc[:10]
  new.to_csv(tmp_path / "new.csv", index=False)
  out = tmp_path / "pred.csv"
  subprocess.run([sys.executable, "-m", "kmtl.predict", f"--model={base / 'kmtl'}",
                  f"--data={tmp_path / 'new.csv'}", f"--out={out}"], check=True,
                 capture_output=True)
  predicted = pd.read_csv(out)
  assert list(predicted["composition"]) == list(new["composition"])
  assert list(predicted["row"]) == list(range(1, 11))
  features = io.load_features(tmp_path / "new.csv", schema.DEFAULT_ELEMENTS).features
  expected = _expected_outputs(workdir, features)
  for name, values in expected.items():
    np.testing.assert_allclose(predicted[name], values, rtol=1e-5, atol=1e-6)
  del root, version


def _predict_csv(trained, tmp_path, text, *extra):
  """Exports the trained run and runs `kmtl.predict` on a CSV of `text` into p.csv."""
  _, workdir, _ = trained
  base = tmp_path / "serving"
  export.export_run(str(workdir), str(base))
  (tmp_path / "in.csv").write_text(text)
  return subprocess.run([sys.executable, "-m", "kmtl.predict", f"--model={base}/kmtl",
                         f"--data={tmp_path / 'in.csv'}", f"--out={tmp_path / 'p.csv'}", *extra],
                        capture_output=True, text=True, check=False)


def test_predict_bad_input_is_one_line(trained, tmp_path):
  result = _predict_csv(trained, tmp_path, "composition\nFe70Ni30\nCu50Qq50\n")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      f"kmtl.predict: error: {tmp_path / 'in.csv'}: row 2, column 'composition'")
  assert not (tmp_path / "p.csv").exists()


def test_a_corrupt_model_is_unreadable_not_missing(trained, tmp_path):
  _, workdir, _ = trained
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  (copy / "model.keras").write_bytes(b"not a zip archive")
  with pytest.raises(export.ExportError, match=r"model\.keras: unreadable \(not a Keras model "
                                               r"archive: damaged or truncated\)"):
    export.export_run(str(copy), str(tmp_path / "serving"))
  assert not (tmp_path / "serving" / "kmtl" / "1").exists()


def test_a_version_without_saved_model_is_refused(tmp_path):
  (tmp_path / "kmtl" / "3").mkdir(parents=True)
  with pytest.raises(export.ExportError, match=r"3: no saved_model.pb; an incomplete or "
                                               r"damaged export"):
    exported.resolve_version(str(tmp_path / "kmtl"))


def test_an_export_finishing_second_takes_the_next_version(tmp_path):
  """Two exports that both saw version 1 free: the one renaming second gets 2."""
  (tmp_path / "1").mkdir()
  (tmp_path / "1" / "saved_model.pb").write_bytes(b"first")
  partial = tmp_path / ".partial-1"
  partial.mkdir()
  (partial / "saved_model.pb").write_bytes(b"second")
  original = export.next_version
  calls = []
  def stale_then_fresh(model_dir):
    calls.append(model_dir)
    return 1 if len(calls) == 1 else original(model_dir)
  try:
    export.next_version = stale_then_fresh
    final = export._publish(str(partial), str(tmp_path))  # pylint: disable=protected-access
  finally:
    export.next_version = original
  assert final == str(tmp_path / "2") and len(calls) == 2
  assert (tmp_path / "1" / "saved_model.pb").read_bytes() == b"first"
  assert (tmp_path / "2" / "saved_model.pb").read_bytes() == b"second"


def test_abandoned_partial_exports_are_removed(trained, tmp_path):
  _, workdir, _ = trained
  model_dir = tmp_path / "serving" / "kmtl"
  model_dir.mkdir(parents=True)
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True).stdout.strip()
  (model_dir / f".partial-{dead}").mkdir()
  (model_dir / f".partial-{os.getpid()}x").mkdir()  # not ours to judge: left alone
  export.export_run(str(workdir), str(tmp_path / "serving"))
  assert sorted(os.listdir(model_dir)) == [f".partial-{os.getpid()}x", "1"]


def test_predict_skip_predicts_good_rows_and_lists_bad_ones(trained, tmp_path):
  result = _predict_csv(trained, tmp_path,
                        "composition\nFe70Ni30\nCu50Qq50\nCoCrFeNi\nFe50Xe50\n", "--on_error=skip")
  assert result.returncode == 0, result.stderr
  assert "skipped 2 bad rows" in result.stdout
  predicted = pd.read_csv(tmp_path / "p.csv")
  assert predicted["row"].tolist() == [1, 3]
  assert predicted["composition"].tolist() == ["Fe70Ni30", "CoCrFeNi"]
  errors = pd.read_csv(tmp_path / "p.errors.csv")
  assert errors["row"].tolist() == [2, 4]
  assert "row 2, column 'composition': unknown element 'Qq'" in errors["reason"][0]
  assert "row 4" in errors["reason"][1]


def test_two_exports_started_at_once_both_succeed_under_consecutive_versions(trained, tmp_path):
  _, workdir, _ = trained
  command = [sys.executable, "-m", "kmtl.export", f"--workdir={workdir}",
             f"--export_dir={tmp_path / 'serving'}"]
  processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
  results = [(p.communicate(), p.returncode) for p in processes]
  assert [code for _, code in results] == [0, 0], [err for (_, err), _ in results]
  model_dir = tmp_path / "serving" / "kmtl"
  assert sorted(out.strip() for (out, _), _ in results) == [
      f"exported {model_dir / '1'}", f"exported {model_dir / '2'}"]
  assert sorted(os.listdir(model_dir)) == ["1", "2"]
  for version in ("1", "2"):
    assert exported.read_metadata(str(model_dir / version))["feature_names"]
    assert (model_dir / version / "saved_model.pb").stat().st_size > 0


def test_conditions_are_named_signature_inputs_and_predict_reads_them(tmp_path):
  """A numeric condition (with its fill) and a categorical one enter the graph by name and
  are encoded there as in training; predict passes them from the file's columns."""
  frame = helpers.tiny_frame(per_task=40)
  frame["test_temperature_c"] = np.where(np.arange(len(frame)) % 4 == 0, np.nan,
                                         20.0 + np.arange(len(frame)))
  frame["test_type"] = np.where(np.arange(len(frame)) % 2 == 0, "tension", "compression")
  frame.to_csv(tmp_path / "tiny.csv", index=False)
  specs = conditions.parse("test_temperature_c:numeric:25,test_type:categorical")
  workdir = tmp_path / "run"
  experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(tmp_path / "tiny.csv"), conditions=specs),
      train=config_lib.TrainConfig(epochs=1, jit_compile=False, summaries=False),
      workdir=str(workdir)))
  version = export.export_run(str(workdir), str(tmp_path / "serving"))
  rows = frame.iloc[:6]
  features = rows[list(schema.feature_names())].to_numpy(np.float32)
  temperature = rows["test_temperature_c"].to_numpy(np.float32)
  test_type = rows["test_type"].to_numpy().astype(object)
  test_type[5] = "bending"  # outside the vocabulary: all zeros, as in evaluation
  serve = tf.saved_model.load(version).signatures["serving_default"]
  served = serve(features=tf.constant(features), test_temperature_c=tf.constant(temperature),
                 test_type=tf.constant(test_type.astype(str)))
  encoded = np.stack([np.nan_to_num(temperature, nan=25.0), test_type == "compression",
                      test_type == "tension"], axis=1).astype(np.float32)
  expected = _expected_outputs(workdir, np.concatenate([features, encoded], axis=1))
  for name, values in expected.items():
    np.testing.assert_allclose(served[name].numpy(), values, rtol=1e-5, atol=1e-5)
  assert [c["name"] for c in exported.read_metadata(version)["conditions"]] == [
      "test_temperature_c", "test_type"]

  rows.to_csv(tmp_path / "in.csv", index=False)
  result = subprocess.run([sys.executable, "-m", "kmtl.predict", f"--model={version}",
                           f"--data={tmp_path / 'in.csv'}", f"--out={tmp_path / 'p.csv'}"],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  predicted = pd.read_csv(tmp_path / "p.csv")
  np.testing.assert_allclose(predicted["hardness"][:5], expected["hardness"][:5], rtol=1e-4)


def test_prediction_columns_follow_the_tasks_with_the_domain_columns_last():
  """Each task's prediction, then its spread and interval; the out-of-domain columns after
  every task (alphabetical order put `resistivity` after them)."""
  n = np.zeros(2, np.float32)
  outputs = {"out_of_domain": np.array([False, True]), "hardness_upper_95": n,
             "resistivity": n, "hardness": n, "nearest_training_distance": n,
             "hardness_std": n, "phase_probabilities": np.zeros((2, 2), np.float32),
             "phase": np.array([b"BCC", b"FCC"], dtype=object)}
  targets = {"resistivity": {}, "hardness": {}, "phase": {"classes": ["BCC", "FCC"]}}
  assert list(predictions.output_columns(outputs, targets)) == [
      "resistivity", "hardness", "hardness_std", "hardness_upper_95", "phase", "phase_p_BCC",
      "phase_p_FCC", "nearest_training_distance", "out_of_domain"]
