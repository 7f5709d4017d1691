"""Gradient statistics by hand, and a tiny run's TensorBoard events read back."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import gradients
from kmtl import summaries
from tests import helpers


@pytest.mark.parametrize("b, cosine, angle", [
    ([0.0, 2.0], 0.0, 90.0),     # orthogonal
    ([-3.0, 0.0], -1.0, 180.0),  # opposite
    ([5.0, 0.0], 1.0, 0.0),      # same direction
    ([1.0, 1.0], 1 / math.sqrt(2), 45.0)])
def test_cosine_and_angle_by_hand(b, cosine, angle):
  stack = tf.constant([[1.0, 0.0], b])
  c = gradients.cosines(stack).numpy()
  assert c[0, 1] == pytest.approx(cosine, abs=1e-6)
  assert gradients.angles_degrees(tf.constant(c[0, 1])).numpy() == pytest.approx(angle, abs=1e-3)


def test_accumulate_counts_only_present_pairs():
  acc = gradients.zeros(3)
  stack = tf.constant([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
  acc = gradients.accumulate(acc, stack, tf.constant([1.0, 1.0, 0.0]), 1.0)
  acc = gradients.accumulate(acc, tf.constant([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),
                             tf.constant([1.0, 1.0, 1.0]), 1.0)
  acc = gradients.accumulate(acc, stack, tf.constant([1.0, 1.0, 1.0]), 0.0)  # not sampled
  out = gradients.summarize(acc, ["a", "b", "c"])
  assert out["cosine"]["a:b"] == pytest.approx((-1.0 + 1 / math.sqrt(2)) / 2)
  assert out["conflict_fraction"]["a:b"] == pytest.approx(0.5)
  assert out["angle_deg"]["a:b"] == pytest.approx((180.0 + 45.0) / 2)
  assert out["cosine"]["a:c"] == pytest.approx(0.0)  # seen together once, orthogonal
  assert out["norm"]["b"] == pytest.approx((1.0 + math.sqrt(2)) / 2)


def test_task_graph_image_shape():
  image = summaries.task_graph_image(np.eye(3), ["resistivity", "hardness", "amorphous"])
  assert image.shape == (1, 96 + 3 * 48, 96 + 3 * 48, 3) and image.dtype == np.uint8
  assert image.min() < 100 < image.max()  # dark cells and white background


def _tags(path):
  """{tag: plugin name} of the summaries under one run directory."""
  acc = event_accumulator.EventAccumulator(str(path), size_guidance={"tensors": 0})
  acc.Reload()
  return {tag: acc.SummaryMetadata(tag).plugin_data.plugin_name
          for tag in acc.Tags()["tensors"]}


def test_tiny_run_writes_expected_tags(tmp_path):
  data_path = tmp_path / "tiny.parquet"
  helpers.tiny_frame(per_task=60).to_parquet(data_path)
  cfg = config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(data_path)),
      train=config_lib.TrainConfig(arch="structured", surgery="gradnorm", epochs=2,
                                   affinity_batches=4),
      workdir=str(tmp_path / "run"))
  experiment.train_and_evaluate(cfg)
  tb = tmp_path / "run" / "tb"
  names = ["resistivity", "hardness", "amorphous"]
  pairs = ["resistivity_vs_hardness", "resistivity_vs_amorphous", "hardness_vs_amorphous"]
  train_tags = _tags(tb / "train")
  expected = {"learning_rate", "grad/update_norm"}
  for n in names:
    expected |= {f"{n}/loss", f"{n}/weighted_loss", f"task_weight/{n}", f"grad/norm/{n}"}
    expected |= {f"task_graph/{n}_from_{s}" for s in names}
  expected |= {"resistivity/r2", "hardness/mae", "amorphous/recall", "amorphous/auroc"}
  for pair in pairs:
    expected |= {f"grad/cosine/{pair}", f"grad/angle_deg/{pair}",
                 f"grad/conflict_fraction/{pair}"}
  # Sampled after each epoch: the co-labelled cosine of pairs that share rows (tiny_frame has
  # none of hardness with amorphous) and the lookahead affinity of every ordered pair.
  expected |= {"grad/colabelled_cosine/resistivity_vs_hardness",
               "grad/colabelled_cosine/resistivity_vs_amorphous"}
  expected |= {f"grad/lookahead/{a}_to_{b}" for a in names for b in names if a != b}
  assert expected <= set(train_tags), expected - set(train_tags)
  assert "grad/colabelled_cosine/hardness_vs_amorphous" not in train_tags
  assert all(train_tags[tag] == "scalars" for tag in expected)
  assert train_tags["task_graph"] == "images"
  val_tags = _tags(tb / "val")
  assert {"resistivity/loss", "hardness/r2", "amorphous/f1"} <= set(val_tags)
  root_tags = _tags(tb)
  assert {"test/resistivity/r2", "test/amorphous/recall", "_hparams_/experiment",
          "_hparams_/session_start_info", "custom_scalars__config__"} <= set(root_tags)


def test_solver_residual_is_logged_per_epoch(tmp_path):
  """A method with an in-graph solve reports its epoch's largest residual, near 0 for MGDA's
  exact active-set solve; the history line holds it too."""
  data_path = tmp_path / "tiny.parquet"
  helpers.tiny_frame(per_task=40).to_parquet(data_path)
  cfg = config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(data_path)),
      train=config_lib.TrainConfig(surgery="mgda", epochs=2, grad_stats=False),
      workdir=str(tmp_path / "run"))
  experiment.train_and_evaluate(cfg)
  acc = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tb" / "train"),
                                           size_guidance={"tensors": 0})
  acc.Reload()
  events = acc.Tensors("method/solver_residual")
  assert [e.step for e in events] == [1, 2]
  assert all(0.0 <= float(tf.make_ndarray(e.tensor_proto)) < 1e-6 for e in events)
  with open(tmp_path / "run" / "history.jsonl", encoding="utf-8") as f:
    assert all(0.0 <= json.loads(line)["method"]["solver_residual"] < 1e-6 for line in f)


def test_two_writers_in_one_process_keep_their_own_values(tmp_path):
  tasks = config_lib.DataConfig().tasks
  names = [t.name for t in tasks]
  for run, loss in (("a", 1.5), ("b", 2.5)):
    writer = summaries.Writer(str(tmp_path / run), tasks, {"seed": 0})
    per_task = {n: loss for n in names}
    writer.write_epoch({"epoch": 1, "train_loss": per_task, "weighted_loss": per_task,
                        "task_weights": per_task, "learning_rate": 1e-3,
                        "val_loss": per_task, "val": {}})
    writer.close()
  for run, loss in (("a", 1.5), ("b", 2.5)):
    for split in ("train", "val"):
      acc = event_accumulator.EventAccumulator(str(tmp_path / run / split),
                                               size_guidance={"tensors": 0})
      acc.Reload()
      (event,) = acc.Tensors("hardness/loss")
      assert event.step == 1
      assert tf.make_ndarray(event.tensor_proto) == pytest.approx(loss)


def test_hparams_hold_the_regularisation_and_layer_sizes():
  cfg = config_lib.RunConfig(
      model=config_lib.ModelConfig(dropout=(0.1, 0.0, 0.2), trunk_units=(64, 32), layer_norm=True),
      train=config_lib.TrainConfig(weight_decay=1e-4, lr_schedule="cosine", ema_momentum=0.99))
  values = summaries.hparams(cfg)
  assert values["dropout"] == "0.1,0.0,0.2" and values["trunk_units"] == "64,32"
  assert values["weight_decay"] == 1e-4 and values["lr_schedule"] == "cosine"
  assert values["ema"] == 0.99 and values["layer_norm"] is True
