"""Per-task model selection: each task of a multi-task model scored with the weights of its own
best validation epoch, the joint selection's metrics beside, a resumed run the same."""

import json

import numpy as np
import pytest
import tensorflow as tf

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import task_selection
from kmtl import uncertainty_config
from tests import helpers


def test_each_task_keeps_the_weights_of_its_own_best_epoch():
  v = tf.Variable([0.0, 0.0])
  selection = task_selection.TaskSelection([v], 2)
  # Task 0's loss is lowest at epoch 2, task 1's at epoch 3.
  for epoch, (value, losses) in enumerate([(1.0, [1.0, 2.0]), (2.0, [0.5, 3.0]),
                                           (3.0, [0.8, 1.0])], start=1):
    v.assign([value, -value])
    selection.update(losses, [True, True], epoch)
  assert selection.best_epoch.numpy().tolist() == [2, 3]
  with selection.weights_of(0):
    assert v.numpy().tolist() == [2.0, -2.0]
  assert v.numpy().tolist() == [3.0, -3.0]  # the model's own weights again
  with selection.weights_of(1):
    assert v.numpy().tolist() == [3.0, -3.0]
  # A task without validation rows never takes a copy.
  other = task_selection.TaskSelection([v], 2)
  other.update([1.0, 0.1], [True, False], 1)
  assert other.best_epoch.numpy().tolist() == [1, 0]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.parquet"
  helpers.tiny_frame().to_parquet(path)
  return str(path)


def _config(tiny_path, workdir, resume=False):
  return config_lib.RunConfig(
      data=config_lib.DataConfig(path=tiny_path),
      train=config_lib.TrainConfig(epochs=6, patience=6, batch_size=32, learning_rate=3e-2,
                                   jit_compile=False, grad_stats=False,
                                   model_selection="per_task"),
      seed=1, workdir=str(workdir), resume=resume)


def test_a_run_scores_each_task_at_its_own_best_epoch_and_resumes_exactly(tiny_path, tmp_path):
  result = experiment.train_and_evaluate(_config(tiny_path, tmp_path / "a"))
  history = [json.loads(line) for line in open(tmp_path / "a" / "history.jsonl")]
  joint = result["best_epoch"]["model"]
  own = {task: 1 + int(np.argmin([h["val_loss"][task] for h in history]))
         for task in result["test"]}
  assert result["best_epoch_per_task"] == own
  for task, epoch in own.items():
    if epoch == joint:
      assert result["test"][task] == result["test_joint"][task]
    else:
      assert result["test"][task] != result["test_joint"][task]
  assert set(own.values()) != {joint}  # the tasks do not all agree with the joint choice here
  with pytest.raises(helpers.Interrupted):
    experiment.train_and_evaluate(_config(tiny_path, tmp_path / "b"),
                                  on_epoch_end=helpers.stop_after(3))
  resumed = experiment.train_and_evaluate(_config(tiny_path, tmp_path / "b", resume=True))
  assert resumed["test"] == result["test"]
  assert resumed["best_epoch_per_task"] == result["best_epoch_per_task"]


def test_per_task_selection_is_refused_where_one_set_of_weights_is_needed():
  train = config_lib.TrainConfig(model_selection="per_task")
  with pytest.raises(ValueError, match="--model_selection=per_task picks each task's point"):
    uncertainty_config.UncertaintyConfig(ensemble=3).check(
        (), config_lib.ModelConfig(), config_lib.LossConfig(), config_lib.ImbalanceConfig(),
        train)
  with pytest.raises(ValueError, match="Invalid value for `model_selection`"):
    config_lib.TrainConfig(model_selection="best")
