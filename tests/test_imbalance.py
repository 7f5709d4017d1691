"""Deep imbalanced regression: LDS by hand, flat densities, FDS identity, BMC by hand, and a
tiny run of every imbalance method with every surgery method."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import experiment
from kmtl.imbalance import bmse
from kmtl.imbalance import fds
from kmtl.imbalance import lds
from kmtl.imbalance import parts
from kmtl.imbalance import smoothing
from kmtl.surgery import base
from kmtl.surgery import registry
from tests import helpers


def test_kernel_windows_by_hand():
  np.testing.assert_allclose(smoothing.kernel_window("triangular", 5), [1 / 3, 2 / 3, 1, 2 / 3,
                                                                         1 / 3])
  g = smoothing.kernel_window("gaussian", 5, 2.0)
  np.testing.assert_allclose(g, np.exp(-np.array([4, 1, 0, 1, 4]) / 8.0))
  np.testing.assert_allclose(smoothing.kernel_window("laplace", 3, 1.0),
                             [math.exp(-1), 1, math.exp(-1)])
  with pytest.raises(ValueError, match="odd"):
    smoothing.kernel_window("gaussian", 4)


def test_lds_weights_by_hand():
  # Labels in 3 bins over [0, 3]: counts (4, 1, 1) -> sqrt (2, 1, 1). Triangular window of
  # size 3 is (1/2, 1, 1/2); edges repeat: bin 0: 2/2 + 2 + 1/2 = 3.5; bin 1: 1 + 1 + 0.5 = 2.5;
  # bin 2: 0.5 + 1 + 0.5 = 2. Raw weights 1/3.5 (x4), 1/2.5, 1/2; mean = (4/3.5 + 0.4 + 0.5)/6.
  labels = np.array([0.1, 0.2, 0.3, 0.4, 1.5, 3.0, 9.9])
  mask = np.array([1, 1, 1, 1, 1, 1, 0])
  w = lds.lds_weights(labels, mask, num_bins=3, reweight="sqrt_inv", kernel="triangular",
                      size=3, form="exact")
  raw = np.array([1 / 3.5] * 4 + [1 / 2.5, 1 / 2.0])
  np.testing.assert_allclose(w[:6], raw / raw.mean())
  assert w[6] == 0.0 and w[:6].mean() == pytest.approx(1.0)
  # The rare top bin weighs most, the crowded bottom bin least.
  assert w[5] > w[4] > w[0]


def test_lds_reference_form_pads_with_zeros_by_hand():
  # As above, but zeros beyond the ends: bin 0: 2 + 1/2 = 2.5; bin 1: 2/2 + 1 + 1/2 = 2.5;
  # bin 2: 1/2 + 1 = 1.5.
  labels = np.array([0.1, 0.2, 0.3, 0.4, 1.5, 3.0])
  w = lds.lds_weights(labels, np.ones(6), num_bins=3, kernel="triangular", size=3)
  raw = np.array([1 / 2.5] * 5 + [1 / 1.5])
  np.testing.assert_allclose(w, raw / raw.mean())


def test_reference_gaussian_kernel():
  """The paper code's kernel: a Gaussian filter (scipy's, truncated at 4 sigma, reflecting at
  the ends) of a 5-tap delta, computed here from its images under reflection."""
  window = smoothing.kernel_window("gaussian", 5, 2.0, form="reference")
  # 'reflect' extends (a b c d e) as (e d c b a | a b c d e | e d c b a), period 10: the delta
  # at 2 has images at 2 + 10k and -3 + 10k.
  taps = np.exp(-np.arange(-8, 9) ** 2 / 8.0)
  taps /= taps.sum()
  images = [-8, -3, 2, 7, 12]
  by_hand = np.array([sum(taps[p - i + 8] for p in images if abs(p - i) <= 8)
                      for i in range(5)])
  np.testing.assert_allclose(window, by_hand / by_hand.max(), rtol=1e-12)
  np.testing.assert_allclose(window, [0.858, 0.946, 1.0, 0.946, 0.858], atol=1e-3)


def test_uniform_labels_have_a_flat_density():
  labels = np.repeat(np.arange(20) + 0.5, 7)
  edges = smoothing.bin_edges(np.array([0.0, 20.0]), 20)
  for reweight in ("sqrt_inv", "inverse"):
    for kernel in ("gaussian", "triangular", "laplace"):
      density = lds.smoothed_density(labels, edges, reweight, kernel, form="exact")
      np.testing.assert_allclose(density, density[0])
      # Zero padding (the reference form) makes the end bins look rarer.
      reference = lds.smoothed_density(labels, edges, reweight, kernel)
      assert reference[0] < reference[10] and reference[-1] < reference[10]
  w = lds.lds_weights(labels, np.ones_like(labels), num_bins=20, form="exact")
  np.testing.assert_allclose(w, 1.0)


def test_fds_with_identical_statistics_is_the_identity():
  edges = {0: np.linspace(-2, 2, 5)}
  smoother = fds.FeatureSmoothing([0], edges, feature_dim=3, start_epoch=1)
  rng = np.random.default_rng(0)
  z = rng.normal(size=(40, 3)).astype(np.float32)
  y = rng.uniform(-2, 2, size=40).astype(np.float32)
  smoother.update(0, z, y, np.ones(40))
  smoother.finish_update()
  stats = smoother.stats(0)
  stats["smoothed_mean"].assign(stats["mean"])
  stats["smoothed_var"].assign(stats["var"])
  out = smoother.calibrate(0, tf.constant(z), tf.constant(y), tf.ones(40), tf.constant(3))
  np.testing.assert_allclose(out, z, rtol=1e-5, atol=1e-5)


def test_fds_calibration_by_hand():
  smoother = fds.FeatureSmoothing([0], {0: np.array([0.0, 1.0, 2.0])}, feature_dim=1,
                                  start_epoch=1)
  s = smoother.stats(0)
  s["mean"].assign([[1.0], [2.0]])
  s["var"].assign([[4.0], [1.0]])
  s["smoothed_mean"].assign([[0.0], [2.0]])
  s["smoothed_var"].assign([[1.0], [100.0]])
  smoother.finish_update()
  z = tf.constant([[3.0], [3.0], [3.0]])
  y = tf.constant([0.5, 1.5, 0.5])
  out = smoother.calibrate(0, z, y, tf.constant([1.0, 1.0, 0.0]), tf.constant(2)).numpy()
  # Bin 0: (3 - 1) * sqrt(1/4) + 0 = 1; bin 1: (3 - 2) * sqrt(clip(100, 0.1, 10)) + 2;
  # unlabelled row unchanged.
  np.testing.assert_allclose(out[:, 0], [1.0, 2.0 + math.sqrt(10.0), 3.0], rtol=1e-6)
  before = smoother.calibrate(0, z, y, tf.ones(3), tf.constant(0)).numpy()
  np.testing.assert_allclose(before, z)  # before the start epoch


def test_bmc_loss_by_hand():
  # p = (0, 1, 2), y = (0, 1, 3), sigma^2 = 0.5 so 2 sigma^2 = 1: logits_ij = -(p_i - y_j)^2.
  p, y = tf.constant([0.0, 1.0, 2.0]), tf.constant([0.0, 1.0, 3.0])
  sigma = tf.constant(math.sqrt(0.5))
  rows = [[0, -1, -9], [-1, 0, -4], [-4, -1, -1]]
  expected = np.mean([-rows[i][i] + math.log(sum(math.exp(v) for v in rows[i]))
                      for i in range(3)]) * 1.0
  assert float(bmse.bmc_loss(p, y, tf.ones(3), sigma)) == pytest.approx(expected, rel=1e-6)
  # Masking row 2 leaves a 2-row batch.
  two = np.mean([-r[i] + math.log(math.exp(r[0]) + math.exp(r[1]))
                 for i, r in enumerate(rows[:2])])
  assert float(bmse.bmc_loss(p, y, tf.constant([1.0, 1.0, 0.0]), sigma)) == pytest.approx(
      two, rel=1e-6)
  assert float(bmse.bmc_loss(p, y, tf.zeros(3), sigma)) == 0.0
  # With a label bank (0, 3): row 0 (p 0, y 0) has candidates 0 | 0, 3 -> logits 0 | 0, -9;
  # row 1 (p 1, y 1): 0 | -1, -4. Row 2 is masked.
  bank = tf.constant([0.0, 3.0])
  row0 = math.log(1 + 1 + math.exp(-9))
  row1 = math.log(1 + math.exp(-1) + math.exp(-4))
  assert float(bmse.bmc_loss(p, y, tf.constant([1.0, 1.0, 0.0]), sigma, bank)) == pytest.approx(
      (row0 + row1) / 2, rel=1e-6)


def test_bmc_bank_trains_a_task_with_one_label_per_batch():
  # One labelled row: the batch form has nothing to compare with; the bank form does.
  p, y, mask = tf.Variable([0.5, 0.0]), tf.constant([2.0, 0.0]), tf.constant([1.0, 0.0])
  balanced = bmse.BalancedMSE({"hardness": np.array([0.0, 1.0, 2.0, 3.0])},
                              {"hardness": np.ones(4)}, 1.0)
  with tf.GradientTape(persistent=True) as tape:
    batch_form = bmse.bmc_loss(p, y, mask, tf.constant(1.0))
    bank_form = balanced.loss_fn("hardness")(y, p, mask, tf.constant([7, 8]))
  assert float(batch_form) == 0.0
  assert float(bank_form) > 0.0 and float(tape.gradient(bank_form, p)[0]) < 0.0


def test_bmc_bank_leaves_out_the_rows_own_entry():
  # Training rows 0..3 with labels 0, 1, 2, 3 (row 4 unlabelled, not in the bank). The batch
  # row is training row 2 (p 1.5, y 2); sigma^2 = 0.5, so logits are -(p - y)^2: own -0.25;
  # bank without row 2: labels 0, 1, 3 -> -2.25, -0.25, -2.25.
  balanced = bmse.BalancedMSE({"h": np.array([0.0, 1.0, 2.0, 3.0, 9.0])},
                              {"h": np.array([1.0, 1.0, 1.0, 1.0, 0.0])}, math.sqrt(0.5))
  np.testing.assert_array_equal(balanced.bank_rows["h"], [0, 1, 2, 3])
  loss = balanced.loss_fn("h")(tf.constant([2.0]), tf.constant([1.5]), tf.ones(1),
                               tf.constant([2]))
  expected = math.log(math.exp(-0.25) * 2 + 2 * math.exp(-2.25)) + 0.25
  assert float(loss) == pytest.approx(expected, rel=1e-6)
  counted_twice = math.log(math.exp(-0.25) * 3 + 2 * math.exp(-2.25)) + 0.25
  assert expected != pytest.approx(counted_twice, rel=1e-3)


def test_invalid_combinations():
  with pytest.raises(ValueError, match="not a valid combination"):
    config_lib.ImbalanceConfig(methods=("lds", "bmse"))
  with pytest.raises(ValueError, match="Invalid value for `--imbalance`"):
    config_lib.ImbalanceConfig(methods=("smote",))
  with pytest.raises(ValueError, match="'amorphous' is binary"):
    config_lib.RunConfig(imbalance=config_lib.ImbalanceConfig(methods=("lds",),
                                                              tasks=("amorphous",)))


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.parquet"
  helpers.tiny_frame(per_task=50).to_parquet(path)
  return str(path)


# Every surgery method once and every imbalance combination once (each pair of a method's
# losses and a surgery's gradients meets the same training step either way).
PAIRS = [("none", ("lds",)), ("pcgrad", ("fds",)), ("gradnorm", ("bmse",)),
         ("gradscale", ("lds", "fds")), ("uw", ("fds", "bmse")), ("mgda", ("lds",)),
         ("famo", ("fds",))]


def _kind(name):
  """How a method meets the training step: what it reads and whether it sees losses again."""
  method = registry.method_class(name)
  return (method.needs_task_grads, method.family, issubclass(method, base.GramianAggregator),
          method.needs_losses_after_update)


def test_the_pairs_cover_every_kind_of_surgery_method():
  assert {_kind(s) for s, _ in PAIRS} == {_kind(name) for name in registry.METHODS}


@pytest.mark.parametrize("surgery, methods", PAIRS)
def test_each_imbalance_method_with_a_surgery(tiny_path, methods, surgery):
  history = []
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=tiny_path),
      train=config_lib.TrainConfig(surgery=surgery, epochs=2, grad_stats=False,
                                   summaries=False, jit_compile=False),
      imbalance=config_lib.ImbalanceConfig(methods=methods, fds_start_epoch=2)),
      on_epoch_end=history.append)
  for record in history:
    assert np.all(np.isfinite(list(record["train_loss"].values())))
  for task_metrics in result["test"].values():
    assert np.all(np.isfinite([v for k, v in task_metrics.items() if k != "count"]))


@pytest.mark.parametrize("arch", ["independent", "structured"])
def test_lds_and_fds_with_other_architectures(tiny_path, arch):
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=tiny_path),
      train=config_lib.TrainConfig(arch=arch, epochs=3, summaries=False, grad_stats=False,
                                   jit_compile=False),
      imbalance=config_lib.ImbalanceConfig(methods=("lds", "fds"), fds_start_epoch=2)))
  assert np.isfinite(result["test"]["hardness"]["r2"])


def _one_batch_trainer(tiny_path, methods):
  """A Trainer whose epoch is one step over the whole training split, so that epoch 1's
  reported loss is the loss at the initial weights."""
  from kmtl import models  # pylint: disable=g-import-not-at-top
  from kmtl import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  from kmtl.data import io, splits  # pylint: disable=g-import-not-at-top
  data = io.load_from_config(config_lib.DataConfig(path=tiny_path))
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  experiment.set_seeds(0)
  net = models.build_model("shared", [t.name for t in data.tasks], len(data.feature_names))
  extra = parts.imbalance_parts(config_lib.ImbalanceConfig(methods=methods, fds_start_epoch=1),
                                data.tasks, prepared, 64)
  cfg = config_lib.TrainConfig(batch_size=prepared.train.num_rows, jit_compile=False,
                               grad_stats=False, summaries=False, task_weights="equal")
  trainer = trainer_lib.Trainer(cfg, net, data.tasks, prepared, registry.create("none"), **extra)
  return trainer, net, prepared.train, extra


def _first_epoch_losses(trainer):
  epoch = tf.constant(1, tf.int64)
  losses, _, _, _ = trainer._train_epoch(epoch)  # pylint: disable=protected-access
  return dict(zip([t.name for t in trainer.tasks], losses.numpy()))


def test_lds_weights_reach_the_training_loss(tiny_path):
  trainer, net, split, extra = _one_batch_trainer(tiny_path, ("lds",))
  predictions = {k: np.asarray(v, np.float64) for k, v in net.model(split.features).items()}
  losses = _first_epoch_losses(trainer)
  for t, name in enumerate(["resistivity", "hardness"]):
    m, w = split.masks[name] > 0, extra["sample_weights"][:, t]
    squared = (predictions[name] - split.labels[name]) ** 2
    assert losses[name] == pytest.approx((w[m] * squared[m]).sum() / m.sum(), rel=1e-4)
    assert losses[name] != pytest.approx(squared[m].mean(), rel=1e-3)  # weights changed it


def test_balanced_mse_is_the_training_loss_by_hand(tiny_path):
  trainer, net, split, extra = _one_batch_trainer(tiny_path, ("bmse",))
  balanced = extra["extra_state"]["bmse"]
  predictions = {k: np.asarray(v, np.float64) for k, v in net.model(split.features).items()}
  losses = _first_epoch_losses(trainer)
  for name in ("resistivity", "hardness"):
    bank, bank_rows = balanced.banks[name].numpy(), balanced.bank_rows[name].numpy()
    per_row = []
    for i in np.flatnonzero(split.masks[name] > 0):  # sigma = 1: logits -(p - y)^2 / 2
      own = -(predictions[name][i] - split.labels[name][i]) ** 2 / 2
      others = -(predictions[name][i] - bank[bank_rows != i]) ** 2 / 2
      per_row.append(np.logaddexp.reduce(np.concatenate([[own], others])) - own)
    assert losses[name] == pytest.approx(2.0 * np.mean(per_row), rel=1e-4)


def test_fds_calibration_is_applied_in_the_training_step(tiny_path):
  """With statistics mean 0, var 1, smoothed mean 0.5 and smoothed var 4 in every bin, a
  regression head reads 2 z + 0.5 instead of z."""
  trainer, net, split, extra = _one_batch_trainer(tiny_path, ("fds",))
  smoother = extra["feature_smoothing"]
  for t in smoother.task_indices:
    s = smoother.stats(t)
    for key, value in (("mean", 0.0), ("var", 1.0), ("smoothed_mean", 0.5),
                       ("smoothed_var", 4.0)):
      s[key].assign(tf.fill(tf.shape(s[key]), value))
  smoother.finish_update()
  reps = net.representations(split.features)
  heads = {name: [np.asarray(v, np.float64) for v in (net.heads[name][0].kernel,
                                                      net.heads[name][0].bias)]
           for name in ("resistivity", "hardness")}  # before the step moves them
  losses = _first_epoch_losses(trainer)
  for name, (kernel, bias) in heads.items():
    z = np.asarray(reps[name], np.float64)
    m = split.masks[name] > 0
    calibrated = ((2 * z + 0.5) @ kernel + bias)[:, 0]
    plain = (z @ kernel + bias)[:, 0]
    expected = ((calibrated - split.labels[name]) ** 2)[m].mean()
    assert losses[name] == pytest.approx(expected, rel=1e-4)
    assert expected != pytest.approx(((plain - split.labels[name]) ** 2)[m].mean(), rel=1e-3)


@pytest.mark.parametrize("methods", [("fds",), ("bmse",)])
def test_imbalance_state_survives_an_interrupted_run(tiny_path, tmp_path, methods):
  """FDS statistics and Balanced MSE's noise scale are checkpointed: a run interrupted after
  epoch 2 and resumed ends with the numbers of an uninterrupted run."""
  def cfg(workdir, resume=False):
    return config_lib.RunConfig(
        data=config_lib.DataConfig(path=tiny_path),
        train=config_lib.TrainConfig(epochs=4, summaries=False, grad_stats=False,
                                     jit_compile=False),
        imbalance=config_lib.ImbalanceConfig(methods=methods, fds_start_epoch=2),
        workdir=str(workdir), resume=resume)
  straight = experiment.train_and_evaluate(cfg(tmp_path / "a"))
  with pytest.raises(helpers.Interrupted):
    experiment.train_and_evaluate(cfg(tmp_path / "b"), on_epoch_end=helpers.stop_after(2))
  resumed = experiment.train_and_evaluate(cfg(tmp_path / "b", resume=True))
  assert resumed["test"] == straight["test"]
