"""Architectures: outputs, parameter counts by hand, variable partition, the task graph."""

import keras
import numpy as np
import pytest

from kmtl import config as config_lib
from kmtl import models

TASKS = {1: ("hardness",), 3: ("resistivity", "hardness", "amorphous"),
         5: ("a", "b", "c", "d", "e")}


def _dense(n_in, n_out):
  return n_in * n_out + n_out


def _expected_count(arch, num_tasks, num_features=21):
  trunk = _dense(num_features, 128) + _dense(128, 128)
  if arch in config_lib.SEPARATE_NETWORKS:
    return num_tasks * (trunk + _dense(128, 64) + _dense(64, 1))
  heads = num_tasks * (_dense(128, 64) + _dense(64, 1))
  graph = num_tasks**2 if arch == "structured" else 0
  return trunk + heads + graph


@pytest.mark.parametrize("arch, expected", [
    ("shared", 19_328 + 3 * 8_321), ("independent", 3 * 27_649),
    ("independent_joint", 3 * 27_649), ("structured", 19_328 + 3 * 8_321 + 9)])
def test_reference_counts_by_hand(arch, expected):
  # Trunk 21*128+128 + 128*128+128 = 19,328; each head 128*64+64 + 64+1 = 8,321; a separate
  # network 19,328 + 8,321 = 27,649; the structured graph 3 x 3.
  net = models.build_model(arch, TASKS[3], 21)
  assert net.model.count_params() == expected


@pytest.mark.parametrize("num_tasks", [1, 3, 5])
@pytest.mark.parametrize("arch", ("independent", "independent_joint", "shared", "structured"))
def test_outputs_counts_and_partition(arch, num_tasks):  # adaptive ones: test_architectures.py
  names = TASKS[num_tasks]
  net = models.build_model(arch, names, 21)
  out = net.model(np.zeros((4, 21), np.float32))
  assert set(out) == set(names)
  assert all(tuple(v.shape) == (4,) for v in out.values())
  assert net.model.count_params() == _expected_count(arch, num_tasks)

  shared = {id(v) for v in net.shared_variables}
  per_task = [{id(v) for v in net.task_variables[t]} for t in names]
  everything = {id(v) for v in net.model.trainable_variables}
  assert shared.union(*per_task) == everything
  assert sum(len(s) for s in per_task) + len(shared) == len(everything)  # disjoint
  if arch in config_lib.SEPARATE_NETWORKS:
    assert not shared
  else:
    trunk = _dense(21, 128) + _dense(128, 128)
    graph = num_tasks**2 if arch == "structured" else 0
    assert sum(int(np.prod(v.shape)) for v in net.shared_variables) == trunk + graph

  reps = net.representations(np.zeros((4, 21), np.float32))
  assert all(tuple(reps[t].shape) == (4, 64) for t in names)


def test_task_variables_are_what_the_task_depends_on():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  net = models.build_model("shared", TASKS[3], 21)
  x = np.random.default_rng(0).normal(size=(8, 21)).astype(np.float32)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(net.model(x)["hardness"])
  grads = tape.gradient(loss, net.task_variables["resistivity"] + net.task_variables["hardness"])
  n = len(net.task_variables["resistivity"])
  assert all(g is None for g in grads[:n]) and all(g is not None for g in grads[n:])


@pytest.mark.parametrize("num_tasks", [1, 3, 5])
def test_task_graph_starts_near_identity_rows_sum_to_one(num_tasks):
  net = models.build_model("structured", TASKS[num_tasks], 21)
  a = np.asarray(net.task_graph.adjacency())
  assert a.shape == (num_tasks, num_tasks)
  np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-6)
  # diag = e^4 / (e^4 + T - 1): 0.9647 for T = 3.
  expected = np.exp(4.0) / (np.exp(4.0) + num_tasks - 1)
  np.testing.assert_allclose(np.diag(a), expected, rtol=1e-5)


def test_structured_mixes_towers_by_the_graph():
  net = models.build_model("structured", ("a", "b"), 3)
  net.task_graph.logits.assign(np.log(np.array([[0.5, 0.5], [0.25, 0.75]], np.float32)))
  x = np.ones((2, 3), np.float32)
  tower_model = keras.Model(net.model.input, [net.model.get_layer(f"{t}_tower_1").output
                                              for t in ("a", "b")])
  h_a, h_b = (np.asarray(h) for h in tower_model(x))
  reps = net.representations(x)
  np.testing.assert_allclose(reps["a"], 0.5 * h_a + 0.5 * h_b, rtol=1e-5)
  np.testing.assert_allclose(reps["b"], 0.25 * h_a + 0.75 * h_b, rtol=1e-5)


def test_graph_sparsity_and_l2_reach_model_losses():
  net = models.build_model("structured", ("a", "b"), 3,
                           config_lib.ModelConfig(graph_sparsity=0.5, l2=1e-3))
  net.model(np.ones((2, 3), np.float32))
  a = np.asarray(net.task_graph.adjacency())
  penalties = [float(v) for v in net.model.losses]
  assert any(abs(p - 0.5 * (a.sum() - np.trace(a))) < 1e-6 for p in penalties)
  assert len(penalties) > 1  # plus one L2 term per kernel


def test_dropout_only_in_training():
  net = models.build_model("shared", ("a",), 3, config_lib.ModelConfig(dropout=0.5))
  x = np.ones((64, 3), np.float32)
  np.testing.assert_allclose(net.model(x)["a"], net.model(x)["a"])
  assert not np.allclose(net.model(x, training=True)["a"], net.model(x, training=True)["a"])


def test_seeded_builds_are_identical():
  keras.utils.set_random_seed(3)
  first = models.build_model("shared", ("a", "b"), 5).model.get_weights()
  keras.utils.set_random_seed(3)
  second = models.build_model("shared", ("a", "b"), 5).model.get_weights()
  for u, v in zip(first, second):
    np.testing.assert_array_equal(u, v)


def test_bad_arguments():
  with pytest.raises(ValueError, match="Expected one of"):
    models.build_model("sharde", ("a",), 3)
  with pytest.raises(ValueError, match="dropout"):
    config_lib.ModelConfig(dropout=1.5)


def test_saves_and_reloads(tmp_path):
  net = models.build_model("structured", ("a", "b"), 4)
  path = tmp_path / "m.keras"
  net.model.save(path)
  again = keras.models.load_model(path)
  x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
  for t in ("a", "b"):
    np.testing.assert_allclose(again(x)[t], net.model(x)[t], rtol=1e-6)
