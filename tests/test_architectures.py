"""The adaptive-sharing architectures: parameter counts in closed form, what is shared, the
batched expert layer, and training, saving and export with every surgery-ready shape."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmtl import adaptive
from kmtl import config as config_lib
from kmtl import experiment
from kmtl import export
from kmtl import models
from tests import helpers
from tests import test_summaries

F, TRUNK, TOWER = 21, 128, 64
FIRST, SECOND = F * TRUNK + TRUNK, TRUNK * TRUNK + TRUNK  # the trunk's two Dense layers
HEAD = TRUNK * TOWER + TOWER + TOWER + 1  # a task's tower and regression head


def _groups(names):
  return (names[:1], names[1:]) if len(names) > 1 else (names,)


def expected_parameters(arch, t, e=4, et=1, levels=2):
  """Parameter counts worked out by hand for T = t tasks, E = e experts."""
  if arch == "mmoe":  # E experts of two layers, a softmax gate per task from the features
    return e * (FIRST + SECOND) + t * (F * e + e) + t * HEAD
  if arch == "ple" and levels == 2:
    pool = e + et  # a task's gate chooses among the shared experts and its own
    level1 = (e + t * et) * FIRST + t * (F * pool + pool) + (F * (e + t * et) + e + t * et)
    level2 = (e + t * et) * SECOND + t * (TRUNK * pool + pool)
    return level1 + level2 + t * HEAD
  if arch == "ple":
    return (e + t * et) * (FIRST + SECOND) + t * (F * (e + et) + e + et) + t * HEAD
  if arch == "cross_stitch":  # a column per task, a T x T mixing after each layer
    return t * (FIRST + SECOND) + 2 * t * t + t * HEAD
  if arch == "task_attention":  # the trunk, a sigmoid mask per task over its 128 units
    return FIRST + SECOND + t * (TRUNK * TRUNK + TRUNK) + t * HEAD
  if arch == "groups":
    return len(_groups(tuple(range(t)))) * (FIRST + SECOND) + t * HEAD
  raise ValueError(arch)


CASES = [("mmoe", {}), ("ple", {}), ("ple", {"ple_levels": 1}), ("cross_stitch", {}),
         ("task_attention", {}), ("groups", {})]


def _build(arch, names, extra=None, output_sizes=None):
  extra = dict(extra or {})
  if arch == "groups":
    extra["groups"] = _groups(names)
  return models.build_model(arch, names, F, config_lib.ModelConfig(**extra), output_sizes)


@pytest.mark.parametrize("arch, extra", CASES)
@pytest.mark.parametrize("num_tasks", [1, 3, 5])
def test_parameter_counts_match_the_closed_form(arch, extra, num_tasks):
  names = tuple(f"task{i}" for i in range(num_tasks))
  net = _build(arch, names, extra)
  assert net.model.count_params() == expected_parameters(
      arch, num_tasks, levels=extra.get("ple_levels", 2))
  everything = {id(v) for v in net.model.trainable_variables}
  declared = [id(v) for v in net.shared_variables] + [
      id(v) for t in names for v in net.task_variables[t]]
  assert len(declared) == len(set(declared)) and set(declared) == everything
  assert {id(v) for v in net.last_shared_variables} <= {id(v) for v in net.shared_variables}


@pytest.mark.parametrize("arch, extra", CASES)
def test_task_variables_get_no_gradient_from_other_tasks(arch, extra):
  names = ("a", "b", "c")
  net = _build(arch, names, extra)
  x = tf.constant(np.random.default_rng(0).normal(size=(8, F)), tf.float32)
  with tf.GradientTape(persistent=True) as tape:
    out = net.model(x)
  for t in names:
    for other in names:
      if other == t:
        continue
      grads = tape.gradient(out[other], list(net.task_variables[t]))
      assert all(g is None or float(tf.reduce_max(tf.abs(g))) == 0.0 for g in grads), (t, other)
    own = tape.gradient(out[t], list(net.task_variables[t]))
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in own), t
  reps = net.representations(x)
  np.testing.assert_allclose(net.head("b", reps["b"]).numpy(), out["b"].numpy(), rtol=1e-6)


@pytest.mark.parametrize("arch, extra", CASES)
def test_a_saved_model_loads_with_the_same_outputs(arch, extra, tmp_path):
  net = _build(arch, ("a", "b"), extra, output_sizes={"b": 3})
  net.model.save(tmp_path / "m.keras")
  loaded = keras.models.load_model(tmp_path / "m.keras")
  x = np.random.default_rng(3).normal(size=(4, F)).astype(np.float32)
  for name in ("a", "b"):
    np.testing.assert_allclose(loaded(x)[name].numpy(), net.model(x)[name].numpy(), rtol=1e-6)
  assert loaded(x)["b"].shape == (4, 3)


def test_the_batched_expert_layer_equals_one_dense_layer_per_expert():
  rng = np.random.default_rng(1)
  layer = adaptive.Experts(3, 5)
  x = rng.normal(size=(4, 6)).astype(np.float32)
  per_expert = rng.normal(size=(4, 3, 6)).astype(np.float32)
  got, got_each = layer(x).numpy(), layer(per_expert).numpy()
  kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
  for e in range(3):
    np.testing.assert_allclose(got[:, e], np.maximum(x @ kernel[e] + bias[e], 0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(got_each[:, e],
                               np.maximum(per_expert[:, e] @ kernel[e] + bias[e], 0),
                               rtol=1e-5, atol=1e-6)


def test_cross_stitch_starts_near_the_identity_and_mixes_columns():
  stitch = adaptive.CrossStitch(3, self_weight=0.9)
  alpha = stitch.alpha.numpy()
  np.testing.assert_allclose(np.diag(alpha), 0.9)
  np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-6)
  columns = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
  np.testing.assert_allclose(stitch(columns).numpy(),
                             np.einsum("ts,bsu->btu", alpha, columns), rtol=1e-6)


def test_gates_mix_experts_with_a_softmax():
  gate = adaptive.Gate(2)
  x = np.ones((1, 3), np.float32)
  experts = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)
  weights = gate.gate_weights(x).numpy()
  np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
  np.testing.assert_allclose(gate([x, experts]).numpy(), weights @ experts[0], rtol=1e-6)


@pytest.mark.parametrize("arch, extra", [c for c in CASES if c[1].get("ple_levels") != 1])
def test_every_architecture_trains_with_pcgrad_and_saves(arch, extra, tmp_path):
  frame = helpers.tiny_frame(per_task=20)
  frame.to_csv(tmp_path / "tiny.csv", index=False)
  model = dict(extra, groups=(("resistivity",), ("hardness", "amorphous"))
               if arch == "groups" else ())
  workdir = tmp_path / "run"
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(tmp_path / "tiny.csv")),
      model=config_lib.ModelConfig(**model),
      train=config_lib.TrainConfig(arch=arch, surgery="pcgrad", epochs=1, summaries=False,
                                   grad_stats=False, jit_compile=False),
      workdir=str(workdir)))
  assert all(np.isfinite(result["test"][t]["count"]) for t in ("resistivity", "hardness"))
  assert np.isfinite(result["test"]["hardness"]["r2"])
  loaded = keras.models.load_model(workdir / "model.keras")
  x = np.random.default_rng(2).normal(size=(5, F)).astype(np.float32)
  assert np.isfinite(loaded(x)["hardness"].numpy()).all()
  if arch == "mmoe":
    version = export.export_run(str(workdir), str(tmp_path / "serving"))
    served = tf.saved_model.load(version).signatures["serving_default"](
        features=tf.constant(frame.iloc[:3][list(json.loads(
            (workdir / "preprocessing.json").read_text())["feature_names"])].to_numpy(
                np.float32)))
    assert served["hardness"].shape == (3,)


def test_learned_mixing_reaches_tensorboard_and_the_export(tmp_path):
  frame = helpers.tiny_frame(per_task=20)
  frame.to_csv(tmp_path / "tiny.csv", index=False)
  workdir = tmp_path / "run"
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(tmp_path / "tiny.csv")),
      model=config_lib.ModelConfig(experts=3),
      train=config_lib.TrainConfig(arch="mmoe", epochs=2, jit_compile=False),
      workdir=str(workdir)))
  gates = result["mixing"]["gates"]
  assert gates["rows"] == ["resistivity", "hardness", "amorphous"]
  assert gates["columns"] == ["expert_1", "expert_2", "expert_3"]
  np.testing.assert_allclose(np.sum(gates["values"], axis=1), 1.0, atol=1e-5)
  tags = test_summaries._tags(workdir / "tb" / "train")
  assert tags["mixing/gates/hardness_expert_2"] == "scalars"
  assert tags["mixing/gates"] == "images"
  version = export.export_run(str(workdir), str(tmp_path / "serving"))
  metadata = json.loads((tmp_path / "serving" / "kmtl" / "1" / "assets.extra" /
                         "kmtl_metadata.json").read_text())
  assert version.endswith("1") and metadata["architecture"] == "mmoe"
  assert metadata["mixing"]["gates"] == gates


def test_attention_and_cross_stitch_mixing_have_one_row_per_task():
  names = ("a", "b")
  x = np.random.default_rng(4).normal(size=(7, F)).astype(np.float32)
  attention = _build("task_attention", names).mixing(x)["attention"]
  assert attention["rows"] == ["a", "b"] and np.shape(attention["values"]) == (2, TRUNK)
  assert np.all((np.asarray(attention["values"]) > 0) & (np.asarray(attention["values"]) < 1))
  stitched = _build("cross_stitch", names).mixing(x)
  np.testing.assert_allclose(stitched["cross_stitch_1"]["values"], [[0.9, 0.1], [0.1, 0.9]],
                             rtol=1e-6)
  assert _build("groups", names).mixing is None


@pytest.mark.parametrize("surgery", ["gradscale"])
def test_a_one_task_group_trains_under_methods_that_weight_by_gradient_norms(surgery, tmp_path):
  """Its trunk is where the methods act, so its task has a gradient norm to be weighted by."""
  frame = helpers.tiny_frame(per_task=20)
  frame.to_csv(tmp_path / "tiny.csv", index=False)
  workdir = tmp_path / "run"
  experiment.train_and_evaluate(config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(tmp_path / "tiny.csv")),
      model=config_lib.ModelConfig(groups=(("resistivity",), ("hardness", "amorphous"))),
      train=config_lib.TrainConfig(arch="groups", surgery=surgery, epochs=3, jit_compile=False,
                                   summaries=False, grad_stats=False, patience=5),
      workdir=str(workdir)))
  history = [json.loads(line) for line in (workdir / "history.jsonl").read_text().splitlines()]
  losses = [h["train_loss"]["resistivity"] for h in history]
  assert losses[-1] < 0.8 * losses[0], losses


def test_a_one_layer_trunk_is_refused_by_two_level_ple_only():
  one_layer = config_lib.ModelConfig(trunk_units=(64,))
  config_lib.RunConfig(model=one_layer, train=config_lib.TrainConfig(arch="shared"))
  with pytest.raises(ValueError, match="--ple_levels=2 .* the trunk has 1"):
    config_lib.RunConfig(model=one_layer, train=config_lib.TrainConfig(arch="ple"))
