"""Deep ensembles, MC dropout and the out-of-domain check, from training to the served graph."""

import dataclasses
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import domain
from kmtl import ensemble
from kmtl import experiment
from kmtl import export
from kmtl import predictions
from kmtl import run_files
from kmtl import uncertainty_config
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import splits
from tests import helpers

ELEMENTS = list(schema.DEFAULT_ELEMENTS)


def _config(path, workdir, dropout=0.0, **uncertainty):
  return config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(path)), model=config_lib.ModelConfig(dropout=dropout),
      train=config_lib.TrainConfig(epochs=2, jit_compile=False, summaries=False,
                                   grad_stats=False),
      uncertainty=uncertainty_config.UncertaintyConfig(**uncertainty),
      workdir=str(workdir) if workdir else None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """An ensemble of two heteroscedastic members on alloys without zirconium, and its export."""
  root = tmp_path_factory.mktemp("ensemble")
  frame = helpers.tiny_frame(per_task=40)
  frame = frame[frame["Zr"] == 0].reset_index(drop=True)
  path = root / "no_zr.csv"
  frame.drop(columns="composition").to_csv(path, index=False)
  cfg = _config(path, root / "run", ensemble=2, heteroscedastic=True)
  result = ensemble.train_and_evaluate(cfg, log=lambda _: None)
  version = export.export_run(cfg.workdir, str(root / "serving"))
  return cfg, result, version, frame


def _member_outputs(cfg, features):
  return [keras.models.load_model(os.path.join(ensemble.member_dir(cfg.workdir, k),
                                               "model.keras"))(features) for k in range(2)]


def test_members_differ_and_the_first_is_the_single_model(trained, tmp_path):
  cfg, result, _, _ = trained
  assert result["ensemble"] == 2 and len(result["members"]) == 2
  assert result["members"][0]["hardness"]["r2"] != result["members"][1]["hardness"]["r2"]
  single = experiment.train_and_evaluate(dataclasses.replace(
      cfg, workdir=str(tmp_path / "single"),
      uncertainty=uncertainty_config.UncertaintyConfig(heteroscedastic=True)))
  assert single["test"] == result["members"][0]


def test_ensemble_metrics_are_those_of_the_members_mean(trained):
  cfg, result, _, _ = trained
  data = io.load_from_config(cfg.data)
  prepared = splits.prepare(data, 0.1, 0.2, cfg.seed, True)
  outputs = _member_outputs(cfg, prepared.test.features)
  scaler = prepared.target_scalers["hardness"]
  rows = prepared.test.masks["hardness"] > 0
  mean = np.mean([np.asarray(o["hardness"])[:, 0] for o in outputs], axis=0)
  y = scaler.inverse_transform(prepared.test.labels["hardness"][rows])
  mae = np.mean(np.abs(scaler.inverse_transform(mean[rows]) - y))
  assert result["test"]["hardness"]["mae"] == pytest.approx(mae, rel=1e-5)
  assert 0 < result["variance_scale"]["hardness"] != 1.0
  for name in ("nll", "coverage_95", "width_95", "ece"):
    assert np.isfinite(result["test"]["hardness"][name])


def test_a_finished_ensemble_resumes_without_training(trained):
  cfg, result, _, _ = trained
  history = os.path.join(ensemble.member_dir(cfg.workdir, 1), run_files.HISTORY)
  before = os.stat(history).st_mtime_ns
  with pytest.raises(experiment.ExperimentError, match="already holds a run"):
    ensemble.train_and_evaluate(cfg, log=lambda _: None)
  again = ensemble.train_and_evaluate(dataclasses.replace(cfg, resume=True), log=lambda _: None)
  assert os.stat(history).st_mtime_ns == before
  assert again["test"] == result["test"]


def test_served_ensemble_matches_the_mixture_by_hand(trained):
  cfg, _, version, frame = trained
  prep = run_files.read(cfg.workdir, run_files.PREPROCESSING)
  features = frame[list(schema.feature_names())].to_numpy(np.float32)[:20]
  scaled = ((features - np.array(prep["feature_mean"])) / np.array(prep["feature_scale"]))
  outputs = _member_outputs(cfg, scaled.astype(np.float32))
  served = tf.saved_model.load(version).signatures["serving_default"](
      features=tf.constant(features))
  hardness = np.stack([np.asarray(o["hardness"], np.float64) for o in outputs])
  target = prep["targets"]["hardness"]
  variance = np.exp(hardness[..., 1]).mean(0) + hardness[..., 0].var(0)
  std = np.sqrt(variance * target["variance_scale"]) * target["scale"]
  mean = hardness[..., 0].mean(0) * target["scale"] + target["mean"]
  np.testing.assert_allclose(served["hardness"].numpy(), mean, rtol=1e-4)
  np.testing.assert_allclose(served["hardness_std"].numpy(), std, rtol=1e-4)
  np.testing.assert_allclose(served["hardness_upper"].numpy(), mean + 1.959964 * std, rtol=1e-4)
  p = 1 / (1 + np.exp(-np.stack([np.asarray(o["amorphous"], np.float64) for o in outputs])))
  np.testing.assert_allclose(served["amorphous_probability_std"].numpy(), p.std(0), atol=1e-5)


def test_rows_outside_the_training_domain_are_flagged(trained):
  cfg, _, version, frame = trained
  stored = domain.read(cfg.workdir)
  # The pure element farthest from every training alloy (measured independently, with
  # scikit-learn), which must lie beyond the test split's farthest row.
  pure = np.eye(len(ELEMENTS))[:-1]  # every element but zirconium
  distances = domain.nearest_distance(stored["training"], pure)
  assert distances.max() > stored["threshold"]
  features = frame[list(schema.feature_names())].to_numpy(np.float32)[:3].copy()
  features[1, :len(ELEMENTS)] = 0
  features[1, ELEMENTS.index("Zr")] = features[1, ELEMENTS.index("Al")] = 0.5
  features[2, :len(ELEMENTS)] = pure[np.argmax(distances)]
  table = io.FeatureTable(features, schema.feature_names(), np.arange(1, 4), {})
  columns = predictions.output_columns(predictions.predict_table(version, table, chunk=2), {})
  assert columns["out_of_domain"].tolist() == [False, True, True]
  assert columns["out_of_domain_reason"][0] == ""
  assert columns["out_of_domain_reason"][1].startswith("elements never in training: Zr")
  assert "nearest training composition at" in columns["out_of_domain_reason"][2]
  assert columns["nearest_training_distance"][0] == pytest.approx(0.0, abs=1e-3)
  assert columns["nearest_training_distance"][2] == pytest.approx(distances.max(), rel=1e-4)


def test_mc_dropout_samples_give_a_spread(tmp_path):
  path = tmp_path / "tiny.csv"
  helpers.tiny_frame(per_task=30).to_csv(path, index=False)
  cfg = _config(path, tmp_path / "run", dropout=0.2, mc_samples=8)
  result = experiment.train_and_evaluate(cfg)
  assert 0.0 <= result["test"]["resistivity"]["coverage_95"] <= 1.0
  assert result["variance_scale"]["resistivity"] > 0
  version = export.export_run(cfg.workdir, str(tmp_path / "serving"))
  frame = helpers.tiny_frame(per_task=30)
  features = tf.constant(frame[list(schema.feature_names())].to_numpy(np.float32)[:10])
  served = tf.saved_model.load(version).signatures["serving_default"](features=features)
  assert (served["resistivity_std"].numpy() > 0).all()
  assert (served["amorphous_probability_std"].numpy() > 0).all()


def test_calibration_plots_are_written_and_logged(trained):
  cfg, result, _, _ = trained
  curve = result["calibration_curves"]["hardness"]
  assert curve["nominal"][0] == 0.05 and curve["nominal"][-1] == 0.95
  assert all(0 <= c <= 1 for c in curve["observed"])
  assert curve["observed"] == sorted(curve["observed"])  # wider intervals cover more
  reliability = result["calibration_curves"]["amorphous"]
  assert len(reliability["confidence"]) == len(reliability["frequency"]) >= 2
  for task in ("hardness", "resistivity", "amorphous"):
    with open(os.path.join(cfg.workdir, "calibration", f"{task}.png"), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  tags = {value.tag for path in tf.io.gfile.glob(os.path.join(cfg.workdir, "tb", "events.*"))
          for event in tf.compat.v1.train.summary_iterator(path) for value in event.summary.value}
  assert {"calibration/hardness", "calibration/amorphous"} <= tags


def test_an_ensemble_of_single_task_baselines_without_a_workdir(tmp_path, monkeypatch):
  made = []
  mkdtemp = tempfile.mkdtemp
  monkeypatch.setattr(tempfile, "mkdtemp", lambda **kw: made.append(mkdtemp(**kw)) or made[-1])
  path = tmp_path / "tiny.csv"
  helpers.tiny_frame(per_task=30).to_csv(path, index=False)
  cfg = dataclasses.replace(_config(path, None, ensemble=2), train=config_lib.TrainConfig(
      arch="independent", epochs=1, jit_compile=False, summaries=False, grad_stats=False),
                            baseline_gbm=True)
  result = ensemble.train_and_evaluate(cfg, log=lambda _: None)
  # Gradient boosting once for the ensemble, on its split; never inside a member.
  assert set(result["gbm_test"]) == {"resistivity", "hardness", "amorphous"}
  assert not ensemble.member_config(cfg, str(tmp_path), 0).baseline_gbm
  assert len(result["members"]) == 2 and result["arch"] == "independent"
  assert result["test"]["resistivity"]["coverage_95"] > 0  # the members' disagreement
  assert made and not os.path.exists(made[0])  # the members' temporary workdir is gone
