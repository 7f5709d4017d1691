"""Feature selection by mutual information on the training rows (`--select_features`)."""

import dataclasses

import keras
import numpy as np
import pytest

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import models
from kmtl.data import schema
from kmtl.data import selection
from kmtl.data import splits
from tests import helpers


def _split(features, labels):
  masks = {n: (~np.isnan(v)).astype(np.float32) for n, v in labels.items()}
  return splits.SplitArrays(features.astype(np.float32),
                            {n: np.nan_to_num(v).astype(np.float32) for n, v in labels.items()},
                            masks)


def test_the_feature_that_determines_each_task_ranks_first():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(600, 6))
  labels = {"strength": np.sin(2 * x[:, 4]) + 0.01 * rng.normal(size=600),
            "glass": (x[:, 1] > 0).astype(np.float64)}
  labels["glass"][:300] = np.nan  # partial labels: the classification reads its own rows
  tasks = (schema.TaskSpec("strength", schema.REGRESSION), schema.TaskSpec("glass", schema.BINARY))
  order, score = selection.ranked_inputs(_split(x, labels), tasks)
  assert set(order[:2]) == {1, 4}
  assert score[order[0]] == pytest.approx(max(score)) and max(score) <= 1.0
  only_strength, _ = selection.ranked_inputs(_split(x, labels), tasks[:1])
  assert only_strength[0] == 4


def test_selection_reads_training_rows_only_and_refuses_too_many(tmp_path):
  data_path = tmp_path / "tiny.parquet"
  helpers.tiny_frame().to_parquet(data_path)
  from kmtl.data import io  # pylint: disable=g-import-not-at-top
  data = io.load_from_config(config_lib.DataConfig(path=str(data_path)))
  prepared = splits.prepare(data, 0.1, 0.2, 0)
  chosen = selection.selected_inputs(prepared, data.tasks, 5)
  assert len(chosen) == 5 and list(chosen) == sorted(chosen)
  rows = prepared.row_split != splits.TRAIN
  poisoned = dataclasses.replace(data, labels={
      n: np.where(rows & ~np.isnan(v), 5e3, v) if n != "amorphous" else v
      for n, v in data.labels.items()})
  assert selection.selected_inputs(splits.prepare(poisoned, 0.1, 0.2, 0), data.tasks, 5) == chosen
  assert selection.selected_inputs(prepared, data.tasks, 0) is None
  with pytest.raises(ValueError, match="--select_features=99: the data has 21 inputs"):
    selection.selected_inputs(prepared, data.tasks, 99)


def test_the_model_reads_the_chosen_columns_and_keeps_them_when_saved(tmp_path):
  keras.utils.set_random_seed(0)
  net = models.build_model("shared", ("a",), 6, config_lib.ModelConfig(trunk_units=(8,),
                                                                       head_units=(4,)),
                           input_columns=(1, 4))
  x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
  changed = x.copy()
  changed[:, [0, 2, 3, 5]] += 10.0
  np.testing.assert_array_equal(net.model(x)["a"].numpy(), net.model(changed)["a"].numpy())
  net.model.save(tmp_path / "m.keras")
  reloaded = keras.models.load_model(tmp_path / "m.keras")
  np.testing.assert_allclose(reloaded(x)["a"].numpy(), net.model(x)["a"].numpy(), rtol=1e-6)
  assert reloaded.get_layer("input_columns").columns == (1, 4)


def test_a_run_with_selection_records_the_chosen_features(tmp_path):
  data_path = tmp_path / "tiny.parquet"
  helpers.tiny_frame().to_parquet(data_path)
  cfg = config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(data_path), select_features=6),
      train=config_lib.TrainConfig(epochs=2, jit_compile=False), seed=1)
  result = experiment.train_and_evaluate(cfg)
  assert len(result["selected_features"]) == 6
  assert np.isfinite(result["test"]["hardness"]["r2"])
