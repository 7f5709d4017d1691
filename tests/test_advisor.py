"""The transfer advisor: batch affinity statistics against an independent computation, the
verdict and grouping rules worked by hand, and a probe end to end."""

import numpy as np
import pytest
import tensorflow as tf

from kmtl import advisor
from kmtl import affinity
from kmtl import config as config_lib
from kmtl import losses
from kmtl import models
from kmtl import probe
from kmtl.data import schema
from tests import helpers

TASKS = schema.parse_tasks("resistivity,hardness,amorphous")


def _batch(rows=24, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(rows, 21)).astype(np.float32)
  y = np.stack([rng.normal(size=rows), rng.normal(size=rows),
                rng.integers(0, 2, rows)], axis=1).astype(np.float32)
  m = (rng.random((rows, 3)) < [0.9, 0.5, 0.4]).astype(np.float32)
  return x, y, m


def _losses(net, x, y, m):
  out = net.model(x, training=False)
  return losses.task_loss_list(TASKS, {t.name: y[:, i] for i, t in enumerate(TASKS)}, out,
                               {t.name: m[:, i] for i, t in enumerate(TASKS)})


def test_batch_statistics_match_an_independent_computation():
  tf.keras.utils.set_random_seed(0)
  net = models.build_model("shared", [t.name for t in TASKS], 21)
  weights = np.array([1.0, 2.0, 0.5], np.float32)
  measure = affinity.AffinityProbe(net, TASKS, config_lib.LossConfig(), 0.01, weights)
  x, y, m = _batch()
  stats = {k: v.numpy() for k, v in measure.statistics(x, y, m).items()}
  shared = net.shared_variables
  grads = []
  for t in range(3):
    with tf.GradientTape() as tape:
      loss = _losses(net, x, y, m)[t]
    grads.append(np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, shared)]))
  g = np.stack(grads)
  np.testing.assert_allclose(stats["norms"], np.linalg.norm(g, axis=1), rtol=1e-5)
  cos = (g @ g.T) / np.outer(np.linalg.norm(g, axis=1), np.linalg.norm(g, axis=1))
  np.testing.assert_allclose(stats["cosine"], cos, atol=1e-5)
  np.testing.assert_array_equal(stats["colabelled_rows"], m.T @ m)
  before = np.array([float(v) for v in _losses(net, x, y, m)])
  originals = [v.numpy() for v in shared]
  sizes = np.cumsum([0] + [v.size for v in originals])
  for i in range(3):  # step the shared variables on task i by hand, then restore them
    for k, v in enumerate(shared):
      v.assign(originals[k] - 0.01 * weights[i] * g[i, sizes[k]:sizes[k + 1]].reshape(v.shape))
    after = np.array([float(v) for v in _losses(net, x, y, m)])
    np.testing.assert_allclose(stats["lookahead"][i], 1 - after / before, atol=2e-5)
    for k, v in enumerate(shared):
      v.assign(originals[k])


def test_colabelled_cosine_uses_rows_labelled_for_both_tasks_only():
  tf.keras.utils.set_random_seed(1)
  net = models.build_model("shared", [t.name for t in TASKS], 21)
  measure = affinity.AffinityProbe(net, TASKS, config_lib.LossConfig())
  x, y, m = _batch(seed=2)
  both = m * (m[:, 0] * m[:, 1])[:, None]
  grads = []
  for t in (0, 1):
    with tf.GradientTape() as tape:
      loss = _losses(net, x, y, both)[t]
    grads.append(np.concatenate([g.numpy().ravel()
                                 for g in tape.gradient(loss, net.shared_variables)]))
  expected = grads[0] @ grads[1] / (np.linalg.norm(grads[0]) * np.linalg.norm(grads[1]))
  stats = measure.statistics(x, y, m)
  assert float(stats["colabelled_cosine"][0, 1]) == pytest.approx(expected, abs=1e-5)


def test_relative_affinity_verdicts_and_groups_by_hand():
  z = np.array([[0.10, 0.02, -0.05],
                [0.05, 0.04, 0.00],
                [-0.01, 0.01, 0.02]])
  # r_j = (column sum - own) / own: 0.04/0.10, 0.03/0.04, -0.05/0.02.
  np.testing.assert_allclose(advisor.relative_affinity(z), [0.4, 0.75, -2.5])
  assert [advisor.verdict(r) for r in (0.4, 0.1, -2.5, float("nan"))] == [
      "helps", "no effect", "hurts", "no effect"]
  names = ["a", "b", "c"]
  groups = advisor.grouping(names, {"a": "helps", "b": "helps", "c": "hurts"}, z)
  assert groups == [["a", "b"], ["c"]]
  apart = advisor.grouping(names, {"a": "helps", "b": "no effect", "c": "no effect"}, z)
  assert apart == [["a", "b"], ["c"]]  # c is hurt by a's step (Z[a, c] < 0)
  assert advisor.relative_affinity(np.array([[-0.1, 0.2], [0.3, 0.1]]))[0] != \
      advisor.relative_affinity(np.array([[-0.1, 0.2], [0.3, 0.1]]))[0]  # NaN: own step failed


def test_the_accumulator_weights_colabelled_cosines_by_their_rows():
  acc = advisor.Accumulator(2)
  base = {"losses": np.ones(2), "norms": np.ones(2), "cosine": np.eye(2),
          "lookahead": np.zeros((2, 2))}
  acc.add({**base, "colabelled_cosine": np.full((2, 2), 0.5),
           "colabelled_rows": np.full((2, 2), 3.0)})
  acc.add({**base, "colabelled_cosine": np.full((2, 2), -1.0),
           "colabelled_rows": np.full((2, 2), 1.0)})
  means = acc.means()
  assert means["colabelled_cosine"][0, 1] == pytest.approx((3 * 0.5 - 1.0) / 4)
  assert means["colabelled_rows"][0, 1] == 4.0


def test_a_probe_reports_every_pair_and_task(tmp_path):
  frame = helpers.tiny_frame(per_task=60)
  vec = frame["vec"].to_numpy()  # a multi-class task on the amorphous rows (Guo's VEC rule)
  frame["structure"] = np.where(frame["amorphous"].notna(),
                                np.where(vec < 6.87, "BCC", np.where(vec > 8.0, "FCC", "mixed")),
                                None)
  path = tmp_path / "tiny.csv"
  frame.to_csv(path, index=False)
  tasks = schema.parse_tasks("resistivity,hardness,amorphous,structure:multiclass:BCC|FCC|mixed")
  cfg = config_lib.RunConfig(data=config_lib.DataConfig(path=str(path), tasks=tasks),
                             train=config_lib.TrainConfig(batch_size=32))
  report, seconds = probe.run(cfg, epochs=1, batches=2)
  assert [p["pair"] for p in report["pairs"]] == [
      "resistivity:hardness", "resistivity:amorphous", "resistivity:structure",
      "hardness:amorphous", "hardness:structure", "amorphous:structure"]
  names = ["resistivity", "hardness", "amorphous", "structure"]
  assert [t["task"] for t in report["tasks"]] == names
  assert all(t["verdict"] in ("helps", "hurts", "no effect") for t in report["tasks"])
  assert all(np.isfinite(t["relative_affinity"]) for t in report["tasks"])
  # tiny_frame labels no row for both hardness and amorphous: the advisor says so.
  assert report["pairs"][3]["colabelled_train_rows"] == 0
  assert report["pairs"][3]["cosine_colabelled"] is None
  assert "too few rows to measure (0)" in advisor.markdown(report)
  assert advisor.markdown(report).endswith(advisor.VALIDATION)
  assert report["pairs"][5]["colabelled_train_rows"] > 0
  assert sorted(sum(report["groups"], [])) == sorted(names)
  assert seconds > 0
