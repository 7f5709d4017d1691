"""The regularisers and schedules of a tabular network, each shown to do what it says on a tiny
problem: dropout per level, Gaussian input noise, layer normalisation, AdamW's decoupled weight
decay, cosine and reduce-on-plateau learning rates, and the moving average of the weights."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import models
from kmtl import optimizer as optimizer_lib
from kmtl import training_flags
from tests import helpers

NAMES = ("a", "b")


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.parquet"
  helpers.tiny_frame().to_parquet(path)
  return str(path)


def _config(tiny_path, workdir=None, model=config_lib.ModelConfig(), **train_kwargs):
  defaults = dict(epochs=3, batch_size=32, learning_rate=3e-3, patience=5, jit_compile=False,
                  grad_stats=False)
  defaults.update(train_kwargs)
  return config_lib.RunConfig(data=config_lib.DataConfig(path=tiny_path), model=model,
                              train=config_lib.TrainConfig(**defaults), seed=1,
                              workdir=None if workdir is None else str(workdir))


def _features(rows=64, width=5, seed=0):
  return np.random.default_rng(seed).normal(size=(rows, width)).astype(np.float32)


def _kept_weights(workdir):
  return keras.models.load_model(workdir / "model.keras").get_weights()


# Dropout per level.

def test_dropout_rates_go_to_their_levels_trunk_first_then_towers():
  net = models.build_model("shared", NAMES, 5, config_lib.ModelConfig(dropout=(0.1, 0.0, 0.3)))
  rates = {layer.name: layer.rate for layer in net.model.layers
           if isinstance(layer, keras.layers.Dropout)}
  assert rates == {"trunk_dropout_1": 0.1, "a_tower_dropout_1": 0.3, "b_tower_dropout_1": 0.3}
  separate = models.build_model("independent", NAMES, 5,
                                config_lib.ModelConfig(dropout=(0.0, 0.2, 0.4)))
  rates = {layer.name: layer.rate for layer in separate.model.layers
           if isinstance(layer, keras.layers.Dropout)}
  assert rates == {"a_net_dropout_2": 0.2, "a_net_dropout_3": 0.4,
                   "b_net_dropout_2": 0.2, "b_net_dropout_3": 0.4}


def test_dropout_varies_training_outputs_only():
  keras.utils.set_random_seed(0)
  net = models.build_model("shared", NAMES, 5, config_lib.ModelConfig(dropout=(0.5, 0.5, 0.0)))
  x = _features()
  first, second = (net.model(x, training=True)["a"].numpy() for _ in range(2))
  assert not np.allclose(first, second)
  np.testing.assert_array_equal(net.model(x)["a"].numpy(), net.model(x)["a"].numpy())


@pytest.mark.parametrize("text, message", [("0.1,0.2", "2 rates for 3 hidden levels"),
                                           ("1.0", "0 <= rate < 1"),
                                           ("0.1,x", "expected a rate")])
def test_bad_dropout_is_refused_naming_the_flag(text, message):
  with pytest.raises(ValueError, match=message) as caught:
    config_lib.ModelConfig(dropout=training_flags.parse_dropout(text))
  assert "--dropout" in str(caught.value)


def test_one_rate_stays_a_number():
  assert training_flags.parse_dropout("0.25") == 0.25
  assert training_flags.parse_dropout("0.1,0,0.2") == (0.1, 0.0, 0.2)


# Gaussian input noise.

def test_input_noise_perturbs_training_inputs_by_its_standard_deviation():
  keras.utils.set_random_seed(0)
  net = models.build_model("shared", NAMES, 5, config_lib.ModelConfig(input_noise=0.5))
  noise = net.model.get_layer("input_noise")
  x = np.zeros((4000, 5), np.float32)
  drawn = noise(x, training=True).numpy()
  assert np.std(drawn) == pytest.approx(0.5, rel=0.03)
  np.testing.assert_array_equal(noise(x).numpy(), x)
  y = _features()
  np.testing.assert_array_equal(net.model(y)["a"].numpy(), net.model(y)["a"].numpy())
  assert not np.allclose(net.model(y, training=True)["a"].numpy(),
                         net.model(y, training=True)["a"].numpy())


def test_input_noise_is_refused_where_it_would_corrupt_another_setting():
  with pytest.raises(ValueError, match="--input_noise"):
    config_lib.RunConfig(model=config_lib.ModelConfig(input_noise=0.1),
                         train=config_lib.TrainConfig(grad_mode="batched", surgery="pcgrad"))
  with pytest.raises(ValueError, match="--input_noise"):
    config_lib.RunConfig(model=config_lib.ModelConfig(input_noise=0.1, dropout=0.2),
                         uncertainty=config_lib.UncertaintyConfig(mc_samples=5))
  with pytest.raises(ValueError, match="--input_noise"):
    config_lib.ModelConfig(input_noise=-0.1)


# Layer normalisation.

def test_layer_norm_levels_normalise_each_row_before_the_relu():
  keras.utils.set_random_seed(0)
  net = models.build_model("shared", NAMES, 5, config_lib.ModelConfig(
      trunk_units=(8, 6), head_units=(4,), layer_norm=True))
  level = net.model.get_layer("trunk_1")
  x = _features()
  kernel, bias = level.dense.kernel.numpy(), level.dense.bias.numpy()
  h = x.astype(np.float64) @ kernel + bias
  standardised = (h - h.mean(axis=1, keepdims=True)) / np.sqrt(h.var(axis=1, keepdims=True)
                                                               + level.norm.epsilon)
  np.testing.assert_allclose(level(x).numpy(), np.maximum(standardised, 0), rtol=1e-5,
                             atol=1e-5)
  # The last shared level, where gradient-norm methods take their norms, holds the kernel.
  assert any(v is level.dense.kernel for v in net.shared_variables)
  assert any(v is net.model.get_layer("trunk_2").dense.kernel
             for v in net.last_shared_variables)


def test_layer_norm_trains_saves_and_reloads(tiny_path, tmp_path):
  cfg = _config(tiny_path, tmp_path, epochs=2,
                model=config_lib.ModelConfig(layer_norm=True, l2=1e-3))
  result = experiment.train_and_evaluate(cfg)
  assert result["test"]["hardness"]["r2"] > 0.0
  reloaded = keras.models.load_model(tmp_path / "model.keras")
  assert isinstance(reloaded.get_layer("trunk_1").norm, keras.layers.LayerNormalization)
  # The L2 penalty of every kernel survives the reload, each once: 2 trunk levels, 3 towers,
  # 3 heads.
  assert len(reloaded.losses) == 8


def test_layer_norm_is_refused_on_experts_and_the_batched_trunk():
  with pytest.raises(ValueError, match="--layer_norm"):
    config_lib.RunConfig(model=config_lib.ModelConfig(layer_norm=True),
                         train=config_lib.TrainConfig(arch="mmoe"))
  with pytest.raises(ValueError, match="--layer_norm"):
    config_lib.RunConfig(model=config_lib.ModelConfig(layer_norm=True),
                         train=config_lib.TrainConfig(grad_mode="batched", surgery="pcgrad"))


# AdamW's decoupled weight decay.

def test_weight_decay_shrinks_kernels_by_lr_times_decay_and_spares_biases():
  kernel = keras.Variable(np.full((2, 3), 2.0, np.float32), name="kernel")
  bias = keras.Variable(np.full((3,), 2.0, np.float32), name="bias")
  optimizer = optimizer_lib.build(
      config_lib.TrainConfig(learning_rate=0.1, weight_decay=0.5), [kernel, bias], 1)
  optimizer.apply([tf.zeros_like(kernel), tf.zeros_like(bias)], [kernel, bias])
  # Adam's step is 0 for a zero gradient; the decay alone moves the kernel: w (1 - lr wd).
  np.testing.assert_allclose(kernel.numpy(), 2.0 * (1 - 0.1 * 0.5), rtol=1e-6)
  np.testing.assert_array_equal(bias.numpy(), 2.0)


def test_weight_decay_makes_a_trained_network_smaller(tiny_path, tmp_path):
  norms = {}
  for decay in (0.0, 1.0):
    workdir = tmp_path / str(decay)
    experiment.train_and_evaluate(_config(tiny_path, workdir, weight_decay=decay,
                                          learning_rate=1e-2, patience=10, epochs=4))
    model = keras.models.load_model(workdir / "model.keras")
    norms[decay] = np.linalg.norm(model.get_layer("trunk_1").kernel.numpy())
  assert norms[1.0] < 0.97 * norms[0.0]


# Learning-rate schedules.

def test_cosine_learning_rate_follows_the_formula_each_epoch(tiny_path):
  history = []
  experiment.train_and_evaluate(_config(tiny_path, epochs=4, patience=10, lr_schedule="cosine"),
                                on_epoch_end=history.append)
  # The record holds the rate after the epoch's steps: k = e S of K = 4 S, whatever S is.
  want = [3e-3 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(1, 5)]
  np.testing.assert_allclose([r["learning_rate"] for r in history], want, rtol=1e-5, atol=1e-9)


def test_plateau_lowers_the_rate_after_patience_epochs_without_improvement():
  variable = keras.Variable(np.zeros(2, np.float32), name="kernel")
  optimizer = optimizer_lib.build(config_lib.TrainConfig(learning_rate=1.0), [variable], 1)
  plateau = optimizer_lib.Plateau(optimizer, factor=0.5, patience=2, min_delta=0.01)
  rates = []
  for score in (1.0, 0.9, 0.895, 0.95, 0.5, 0.6, 0.6, 0.6, 0.6):
    plateau.update(score)
    rates.append(float(optimizer.learning_rate.numpy()))
  # 0.895 is within min_delta of 0.9: no improvement; two such epochs halve the rate.
  assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_plateau_in_training_replays_from_the_recorded_scores(tiny_path):
  history = []
  experiment.train_and_evaluate(
      _config(tiny_path, epochs=12, patience=11, learning_rate=3e-2, lr_schedule="plateau",
              lr_plateau_patience=1), on_epoch_end=history.append)
  rate, best, want = 3e-2, np.inf, []
  for record in history:
    want.append(rate)
    score = np.mean(list(record["val_loss"].values()))
    if score < best:
      best = score
    else:
      rate *= 0.5
  np.testing.assert_allclose([r["learning_rate"] for r in history], want, rtol=1e-6)
  assert want[-1] < 3e-2  # the rate did drop on this problem


# The moving average of the weights.

def test_moving_average_is_what_validation_and_the_kept_model_read(tiny_path, tmp_path):
  """One step per epoch: the average after two steps is m w1 + (1 - m) w2 (Keras starts it at
  w1), while the trained weights follow the same path as without an average."""
  kwargs = dict(batch_size=4096, learning_rate=1e-2, patience=5)
  after = {}
  for epochs in (1, 2):
    result = experiment.train_and_evaluate(_config(tiny_path, tmp_path / f"plain{epochs}",
                                                   epochs=epochs, **kwargs))
    assert result["best_epoch"] == {"model": epochs}
    after[epochs] = _kept_weights(tmp_path / f"plain{epochs}")
  result = experiment.train_and_evaluate(_config(tiny_path, tmp_path / "ema", epochs=2,
                                                 ema_momentum=0.8, **kwargs))
  assert result["best_epoch"] == {"model": 2}
  for got, w1, w2 in zip(_kept_weights(tmp_path / "ema"), after[1], after[2]):
    np.testing.assert_allclose(got, 0.8 * w1 + 0.2 * w2, rtol=1e-5, atol=1e-7)
  assert not np.allclose(_kept_weights(tmp_path / "ema")[0], after[2][0])


@pytest.mark.parametrize("settings", [
    dict(ema_momentum=0.9, lr_schedule="plateau", lr_plateau_patience=1, weight_decay=0.1),
    dict(ema_momentum=0.5, lr_schedule="cosine", weight_decay=0.01)])
def test_resume_continues_the_schedule_the_decay_and_the_average(tiny_path, tmp_path,
                                                                 settings):
  def cfg(workdir, resume=False):
    base = _config(tiny_path, workdir, epochs=5, patience=4, learning_rate=3e-2,
                   model=config_lib.ModelConfig(dropout=0.1, input_noise=0.1), **settings)
    return config_lib.RunConfig(**{**base.__dict__, "resume": resume})
  straight = experiment.train_and_evaluate(cfg(tmp_path / "a"))
  with pytest.raises(helpers.Interrupted):
    experiment.train_and_evaluate(cfg(tmp_path / "b"), on_epoch_end=helpers.stop_after(2))
  resumed = experiment.train_and_evaluate(cfg(tmp_path / "b", resume=True))
  assert resumed["test"] == straight["test"]
  rates = [[json.loads(line)["learning_rate"] for line in open(path / "history.jsonl")]
           for path in (tmp_path / "a", tmp_path / "b")]
  assert rates[0] == rates[1]


@pytest.mark.parametrize("settings, message", [
    (dict(ema_momentum=1.0), "--ema"), (dict(weight_decay=-1.0), "--weight_decay"),
    (dict(lr_plateau_factor=1.5), "--lr_plateau_factor"),
    (dict(lr_schedule="plateau", lr_plateau_patience=20, patience=20), "--lr_plateau_patience"),
    (dict(lr_schedule="step"), "lr_schedule")])
def test_bad_schedule_and_average_settings_are_refused(settings, message):
  with pytest.raises(ValueError, match=message):
    config_lib.TrainConfig(**settings)
