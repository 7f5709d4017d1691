"""The gradient-boosting baseline on a tiny table, alone, beside a run, and in the study."""

import numpy as np

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import gbm
from kmtl import sweep
from kmtl.data import io
from kmtl.data import splits
from tests import helpers


def test_boosting_baseline_on_a_tiny_table():
  data = io.load(helpers.tiny_frame(per_task=60))
  prepared = splits.prepare(data, 0.1, 0.2, seed=0)
  result = gbm.gradient_boosting(prepared, data.tasks, seed=0)
  assert set(result) == {"resistivity", "hardness", "amorphous"}
  assert result["hardness"]["count"] == int(prepared.test.masks["hardness"].sum())
  assert result["hardness"]["r2"] > 0.3 and result["amorphous"]["auroc"] > 0.6
  again = gbm.gradient_boosting(prepared, data.tasks, seed=0)
  assert again == result


def test_boosting_beside_a_run(tmp_path):
  path = tmp_path / "tiny.parquet"
  helpers.tiny_frame(per_task=40).to_parquet(path)
  data_cfg = config_lib.DataConfig(path=str(path))
  result = experiment.train_and_evaluate(config_lib.RunConfig(
      data=data_cfg,
      train=config_lib.TrainConfig(epochs=1, summaries=False, jit_compile=False),
      baseline_gbm=True))
  alone = sweep.gradient_boosting_run(config_lib.RunConfig(data=data_cfg))
  assert result["gbm_test"] == alone["test"]
  assert np.isfinite(alone["test"]["resistivity"]["mae"])
