"""Mixed precision (`--precision=bfloat16`): bfloat16 matmuls and activations, float32
variables, heads, losses, gradients and exported signature."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import export
from kmtl import models
from kmtl.data import schema
from tests import helpers

NAMES = ("resistivity", "hardness", "amorphous")
BF16 = config_lib.ModelConfig(precision="bfloat16")


def test_hidden_layers_compute_in_bfloat16_and_heads_in_float32():
  net = models.build_model("shared", NAMES, 21, BF16)
  layers = {layer.name: layer for layer in net.model.layers}
  assert layers["trunk_1"].compute_dtype == "bfloat16"
  assert layers["hardness_tower_1"].compute_dtype == "bfloat16"
  assert layers["hardness_head"].compute_dtype == "float32"
  assert {v.dtype for v in net.model.trainable_variables} == {"float32"}
  outputs = net.model(np.ones((4, 21), np.float32))
  assert {str(o.dtype) for o in outputs.values()} == {"<dtype: 'float32'>"}
  # The global policy is left as it was.
  assert keras.config.dtype_policy().name == "float32"


def test_bfloat16_predictions_match_float32_with_the_same_weights():
  keras.utils.set_random_seed(0)
  mixed = models.build_model("structured", NAMES, 21, BF16)
  exact = models.build_model("structured", NAMES, 21)
  exact.model.set_weights(mixed.model.get_weights())
  x = np.random.default_rng(0).normal(size=(64, 21)).astype(np.float32)
  got, want = mixed.model(x), exact.model(x)
  for name in NAMES:
    # bfloat16 keeps 8 significand bits: about 0.4% relative error per rounding.
    np.testing.assert_allclose(got[name], want[name], rtol=0.05, atol=0.05)
    assert not np.array_equal(got[name], want[name])  # the bfloat16 path really ran


def test_bfloat16_training_and_export(tmp_path):
  path = tmp_path / "tiny.csv"
  frame = helpers.tiny_frame(per_task=30)
  frame.to_csv(path, index=False)
  cfg = config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(path)), model=BF16,
      train=config_lib.TrainConfig(surgery="pcgrad", epochs=2, summaries=False),
      workdir=str(tmp_path / "run"))
  result = experiment.train_and_evaluate(cfg)
  assert np.isfinite(result["test"]["hardness"]["r2"])
  version = export.export_run(cfg.workdir, str(tmp_path / "serving"))
  served = tf.saved_model.load(version).signatures["serving_default"]
  assert served.structured_input_signature[1]["features"].dtype == tf.float32
  features = frame[list(schema.feature_names())].to_numpy(np.float32)[:8]
  out = served(features=tf.constant(features))
  assert out["hardness"].dtype == tf.float32
  model = keras.models.load_model(tmp_path / "run" / "model.keras")
  assert model.get_layer("trunk_1").compute_dtype == "bfloat16"
  assert np.isfinite(out["hardness"].numpy()).all()


def test_unknown_precision_is_refused():
  with pytest.raises(ValueError, match="--precision=float16: expected one of"):
    config_lib.ModelConfig(precision="float16")
