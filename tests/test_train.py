"""The training loop end to end on tiny data: every arch x method, masks, determinism, resume,
non-finite detection."""

import json
import os

import numpy as np
import pytest

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import trainer as trainer_lib
from kmtl.surgery import registry
from tests import helpers

# Every method on the shared trunk; the structured model with one method of each kind.
COMBINATIONS = ([("independent", "none"), ("independent_joint", "none")] +
                [("shared", method) for method in sorted(registry.METHODS)] +
                [("structured", method) for method in ("none", "pcgrad", "gradnorm", "mgda")])


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.parquet"
  helpers.tiny_frame().to_parquet(path)
  return str(path)


def _config(tiny_path, workdir=None, **train_kwargs):
  # Tracing and XLA compiling dominate runs this small: tests of XLA or of the gradient
  # statistics ask for them.
  defaults = dict(epochs=3, batch_size=32, learning_rate=3e-3, patience=5, jit_compile=False,
                  grad_stats=False)
  defaults.update(train_kwargs)
  return config_lib.RunConfig(data=config_lib.DataConfig(path=tiny_path),
                              train=config_lib.TrainConfig(**defaults), seed=1,
                              workdir=None if workdir is None else str(workdir))


@pytest.mark.parametrize("arch, surgery", COMBINATIONS)
def test_every_arch_and_method_learns(tiny_path, arch, surgery):
  history = []
  result = experiment.train_and_evaluate(_config(tiny_path, arch=arch, surgery=surgery),
                                         on_epoch_end=history.append)
  # The single-task baseline trains task by task: one record per task and epoch.
  by_task = {}
  for record in history:
    by_task.setdefault(record.get("task"), []).append(record["train_loss"])
  assert len(by_task) == (3 if arch == "independent" else 1)
  for losses in by_task.values():
    assert len(losses) == 3
    assert sum(losses[-1].values()) < sum(losses[0].values())
  for task_metrics in result["test"].values():
    values = [v for k, v in task_metrics.items() if k != "count"]
    assert np.all(np.isfinite(values))
  assert result["test"]["hardness"]["r2"] > 0.0


def test_same_seed_same_numbers(tiny_path):
  """Under XLA, the default, with PCGrad's random task orders."""
  cfg = _config(tiny_path, surgery="pcgrad", jit_compile=True, grad_stats=True, epochs=2)
  a = experiment.train_and_evaluate(cfg)
  b = experiment.train_and_evaluate(cfg)
  assert a["test"] == b["test"]


def test_grad_modes_agree(tiny_path):
  a = experiment.train_and_evaluate(_config(tiny_path, surgery="gradnorm", grad_mode="loop"))
  b = experiment.train_and_evaluate(_config(tiny_path, surgery="gradnorm",
                                            grad_mode="jacobian"))
  for task in a["test"]:
    for name, value in a["test"][task].items():
      assert value == pytest.approx(b["test"][task][name], rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("arch, surgery", [("structured", "pcgrad"), ("shared", "dwa")])
def test_resume_after_interruption_matches_uninterrupted(tiny_path, tmp_path, arch, surgery):
  """PCGrad's random generator and DWA's epoch losses (weights from epoch 3 on) resume."""
  kwargs = dict(arch=arch, surgery=surgery, epochs=4)
  straight = experiment.train_and_evaluate(_config(tiny_path, tmp_path / "a", **kwargs))
  with pytest.raises(helpers.Interrupted):
    experiment.train_and_evaluate(_config(tiny_path, tmp_path / "b", **kwargs),
                                  on_epoch_end=helpers.stop_after(2))
  assert not (tmp_path / "b" / "metrics.json").exists()
  resumed_cfg = config_lib.RunConfig(**{**_config(tiny_path, tmp_path / "b", **kwargs).__dict__,
                                        "resume": True})
  resumed = experiment.train_and_evaluate(resumed_cfg)
  assert resumed["test"] == straight["test"]
  assert resumed["epochs_run"] == 4
  epochs = [json.loads(line)["epoch"] for line in open(tmp_path / "b" / "history.jsonl")]
  assert epochs == [1, 2, 3, 4]


def test_workdir_artifacts_and_reuse_guard(tiny_path, tmp_path):
  cfg = _config(tiny_path, tmp_path, epochs=2)
  experiment.train_and_evaluate(cfg)
  for name in ("config.json", "metrics.json", "model.keras", "preprocessing.json",
               "history.jsonl"):
    assert (tmp_path / name).exists(), name
  assert any(p.startswith("ckpt") for p in os.listdir(tmp_path / "checkpoints"))
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert set(metrics["test"]) == {"resistivity", "hardness", "amorphous"}
  with pytest.raises(experiment.ExperimentError, match="already holds a run"):
    experiment.train_and_evaluate(cfg)
  with pytest.raises(experiment.ExperimentError, match="no checkpoint"):
    experiment.train_and_evaluate(config_lib.RunConfig(
        **{**_config(tiny_path, tmp_path / "new").__dict__, "resume": True}))


@pytest.mark.parametrize("arch", ["independent", "independent_joint"])
def test_independent_tasks_stop_on_their_own(tiny_path, arch):
  history = []
  result = experiment.train_and_evaluate(
      _config(tiny_path, arch=arch, epochs=40, patience=2, learning_rate=1e-2),
      on_epoch_end=history.append)
  assert set(result["best_epoch"]) == {"resistivity", "hardness", "amorphous"}
  stops = {name: r["epoch"] for r in history for name in r["stopped"]}
  assert len(stops) == 3 and len(set(stops.values())) > 1  # each task stopped at its own epoch
  assert result["epochs_run"] == max(stops.values())
  assert {name: r["epochs"] for name, r in result["training"].items()} == stops


def test_non_finite_loss_stops_with_task_epoch_and_step(tiny_path, tmp_path):
  cfg = _config(tiny_path, tmp_path, learning_rate=1e30)
  with pytest.raises(trainer_lib.TrainingError,
                     match=r"non-finite loss or gradient in .* at epoch 1, step \d+"):
    experiment.train_and_evaluate(cfg)
  assert not (tmp_path / "metrics.json").exists()
  assert not (tmp_path / "model.keras").exists()


def test_config_rejects_surgery_on_independent():
  with pytest.raises(ValueError, match="needs shared parameters"):
    config_lib.TrainConfig(arch="independent", surgery="pcgrad")


def test_single_task_baseline_trains_each_task_on_its_own_rows(tiny_path):
  """Every batch of a task's network holds only that task's rows: its optimizer steps are its
  epochs times (its training rows // batch size), and each of them had labels."""
  result = experiment.train_and_evaluate(_config(tiny_path, arch="independent", epochs=3))
  for name, report in result["training"].items():
    assert report["epochs"] == 3
    assert report["optimizer_steps"] == 3 * (report["train_rows"] // 32), name
    assert report["labelled_steps"] == report["optimizer_steps"], name
  counts = {name: r["train_rows"] for name, r in result["training"].items()}
  assert counts["resistivity"] > 2 * counts["hardness"]


def test_joint_stream_control_steps_every_network_on_every_batch(tiny_path):
  """Batches of 4 from a stream where about a quarter of rows carry hardness: every network
  steps on every batch, and many of hardness's steps have no hardness label."""
  result = experiment.train_and_evaluate(_config(tiny_path, arch="independent_joint",
                                                 epochs=1, batch_size=4))
  reports = result["training"]
  total_rows = result["num_rows"]["train"]
  for name, report in reports.items():
    assert report["optimizer_steps"] == total_rows // 4, name
  hardness = reports["hardness"]
  assert 0 < hardness["labelled_steps"] < 0.9 * hardness["optimizer_steps"]


def test_relative_stopping_criterion_divides_by_the_first_epoch():
  from kmtl import early_stopping  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v = tf.Variable([0.0])
  stopping = early_stopping.EarlyStopping([("model", [v], [0, 1])], patience=2, min_delta=0.0,
                                          criterion="relative_val_loss")
  has_val = np.array([True, True])
  assert stopping.scores([4.0, 0.5], has_val) == [1.0]
  # Task 0 halves (0.5), task 1 doubles (2.0): the mean of the ratios is 1.25, whereas the
  # plain mean of the losses (1.5) would count as an improvement over 2.25.
  assert stopping.scores([2.0, 1.0], has_val) == [1.25]
  plain = early_stopping.EarlyStopping([("model", [v], [0, 1])], 2, 0.0)
  assert plain.scores([2.0, 1.0], has_val) == [1.5]


@pytest.mark.parametrize("arch, learning_rate", [("shared", 2e-2),
                                                 ("independent_joint", 2e-3)])
def test_resume_with_dropout_and_early_stopping_matches_uninterrupted(tiny_path, tmp_path,
                                                                      arch, learning_rate):
  """Dropout masks continue from the checkpointed generator state, and a run that stops early
  after the interruption resumes to the same best weights."""
  def cfg(workdir, resume=False):
    base = _config(tiny_path, workdir, arch=arch, epochs=12, patience=1,
                   learning_rate=learning_rate)
    return config_lib.RunConfig(**{**base.__dict__, "resume": resume,
                                   "model": config_lib.ModelConfig(dropout=0.3)})
  straight = experiment.train_and_evaluate(cfg(tmp_path / "a"))
  assert straight["epochs_run"] < 12  # early stopping triggered
  assert max(straight["best_epoch"].values()) > 2  # the best weights come after the resume
  with pytest.raises(helpers.Interrupted):
    experiment.train_and_evaluate(cfg(tmp_path / "b"), on_epoch_end=helpers.stop_after(2))
  resumed = experiment.train_and_evaluate(cfg(tmp_path / "b", resume=True))
  assert resumed["test"] == straight["test"]
  assert resumed["epochs_run"] == straight["epochs_run"]


def test_resume_with_changed_flags_fails_naming_them_and_leaves_the_run(tiny_path, tmp_path):
  experiment.train_and_evaluate(_config(tiny_path, tmp_path, surgery="gradnorm", epochs=2))
  before = {name: (tmp_path / name).read_bytes() for name in ("config.json", "metrics.json")}
  changed = _config(tiny_path, tmp_path, surgery="uw", epochs=2, learning_rate=1e-2)
  with pytest.raises(experiment.ExperimentError,
                     match=r"started with other settings: train\.learning_rate .*train\.surgery"):
    experiment.train_and_evaluate(config_lib.RunConfig(**{**changed.__dict__, "resume": True}))
  assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_resume_on_changed_data_fails_and_leaves_the_run(tmp_path):
  """The same path with other content: refused, naming both row counts."""
  path = tmp_path / "tiny.csv"
  helpers.tiny_frame().to_csv(path, index=False)
  cfg = _config(str(path), tmp_path / "run", epochs=1)
  experiment.train_and_evaluate(cfg)
  before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
  helpers.tiny_frame().iloc[:-3].to_csv(path, index=False)
  with pytest.raises(experiment.ExperimentError, match=r"was started on other data \(its \d+ "
                                                       r"rows differ from the \d+ rows of"):
    experiment.train_and_evaluate(config_lib.RunConfig(**{**cfg.__dict__, "resume": True}))
  assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before


def test_trainer_balanced_sampler_draws_each_task_equally():
  """The Trainer's in-graph balanced order: every draw is a labelled row of a uniformly chosen
  task, so 2 hardness rows among 8 make half of the draws (uniform order: a quarter)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from kmtl import models  # pylint: disable=g-import-not-at-top
  from kmtl.data import schema, splits  # pylint: disable=g-import-not-at-top
  res = np.array([1, 2, 3, 4, 5, 6, 0, 0], np.float32)
  hard = np.array([0, 0, 0, 0, 0, 0, 7, 8], np.float32)
  split = splits.SplitArrays(np.arange(16, dtype=np.float32).reshape(8, 2),
                             {"resistivity": res, "hardness": hard},
                             {"resistivity": (res != 0).astype(np.float32),
                              "hardness": (hard != 0).astype(np.float32)})
  prepared = splits.PreparedData(split, split, split, None, None, {})
  tasks = [schema.TaskSpec("resistivity"), schema.TaskSpec("hardness")]
  net = models.build_model("shared", ["resistivity", "hardness"], 2)
  trainer = trainer_lib.Trainer(config_lib.TrainConfig(batch_size=4, jit_compile=False), net, tasks,
                          prepared, registry.create("none"), balanced_sampling=True)
  order = trainer.sampler.order
  orders = np.concatenate([order(tf.constant(e, tf.int64)).numpy() for e in range(1, 301)])
  assert orders.shape == (2400,) and set(orders) <= set(range(8))
  assert 0.46 < np.isin(orders, [6, 7]).mean() < 0.54
  again = order(tf.constant(1, tf.int64)).numpy()
  np.testing.assert_array_equal(again, orders[:8])
