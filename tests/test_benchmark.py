"""The Matbench benchmark command: its inputs on the official folds and its fold scores."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from kmtl import benchmark_scores
from kmtl import config as config_lib
from kmtl import experiment
from kmtl import leaderboards
from kmtl import matbench
from kmtl import metrics
from kmtl.data import folds
from kmtl.data import schema
from kmtl.data import shipped
from tests import helpers


def test_the_shipped_official_folds_have_matbench_fold_sizes():
  steels = folds.read(shipped.FOLD_FILES["matbench_steels"])[1]
  glass = folds.read(shipped.FOLD_FILES["matbench_glass"])[1]
  assert np.bincount(steels).tolist() == [63, 63, 62, 62, 62]
  assert np.bincount(glass).tolist() == [1136] * 5


def test_whole_fold_scores_equal_scikit_learn_with_left_out_rows_as_the_majority():
  rng = np.random.default_rng(0)
  truth = (rng.random(60) < 0.7).astype(float)
  probability = np.clip(truth * 0.6 + rng.random(60) * 0.5, 0, 1)
  task = schema.TaskSpec("gfa", schema.BINARY)
  scored = metrics.task_metrics(task, truth, probability)
  left_out = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
  got = benchmark_scores.classification_fold(scored, truth, left_out, majority=1)
  all_truth = np.concatenate([truth, left_out])
  all_labels = np.concatenate([(probability >= 0.5).astype(float), np.ones(5)])
  assert got["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(all_truth,
                                                                              all_labels))
  assert got["f1"] == pytest.approx(sk.f1_score(all_truth, all_labels))
  assert got["accuracy"] == pytest.approx(sk.accuracy_score(all_truth, all_labels))
  # Matbench's "ROC-AUC" of hard labels is this balanced accuracy.
  assert sk.roc_auc_score(all_truth, all_labels) == pytest.approx(got["balanced_accuracy"])


def _fake_steels(tmp_path):
  """The 312 rows of steel_strength.csv's shape: Matbench ids and a plausible target."""
  ids = pd.read_csv(shipped.FOLD_FILES["matbench_steels"])["mbid"]
  rng = np.random.default_rng(1)
  nickel = rng.uniform(0.0, 0.2, len(ids))
  frame = pd.DataFrame({
      "mbid": ids, "formula": [f"Fe{1 - n:.4f}Ni{n:.4f}" for n in nickel],
      "yield_strength_mpa": 1000 + 3000 * nickel, "ultimate_tensile_strength_mpa": np.nan,
      "elongation_pct": np.nan})
  frame.loc[5, "formula"] = "Fe0.9O0.1"  # no Fe-O mixing enthalpy: cannot be described
  frame.to_csv(tmp_path / "steel_strength.csv", index=False)
  return frame


def test_inputs_keep_official_folds_and_add_auxiliary_rows_never_tested(tmp_path):
  frame = _fake_steels(tmp_path)
  bench = dataclasses.replace(matbench.BENCHMARKS["matbench_steels"], auxiliary_set="mpea",
                              auxiliary_columns=("hardness_hv",))
  data, fold_table, left_out = matbench.build_inputs(bench, str(tmp_path))
  official = pd.read_csv(shipped.FOLD_FILES["matbench_steels"])
  assert left_out["mbid"].tolist() == [official["mbid"][5]]
  assert left_out["fold"].tolist() == [official["fold"][5]]
  main = fold_table["fold"] >= 0
  assert main.sum() == 311 and (~main).sum() == 1545
  np.testing.assert_array_equal(fold_table.loc[main, "fold"], official["fold"].drop(5))
  np.testing.assert_array_equal(data.loc[main, "yield_strength_mpa"],
                                frame["yield_strength_mpa"].drop(5))
  assert data.loc[~main, "yield_strength_mpa"].isna().all()
  assert data.loc[~main, "hardness_hv"].notna().sum() == 530


def _cell(config, fold, test_mae, val_mae):
  return {"config": config, "seed": fold, "test": {"yield_strength_mpa": {"mae": test_mae}},
          "val": {"yield_strength_mpa": {"mae": val_mae}}}


def test_the_report_aggregates_as_matbench_and_picks_the_multi_task_model_on_validation(
    tmp_path):
  cells = tmp_path / "cells"
  cells.mkdir()
  maes = {"independent": ([100, 110, 90], 1.0), "shared": ([80, 85, 90], 0.9),
          "shared:pcgrad": ([70, 75, 80], 1.1), "gbm": ([95, 95, 95], 0.5)}
  for config, (test, val) in maes.items():
    for fold, mae in enumerate(test):
      (cells / f"{config.replace(':', '__')}__seed{fold}.json").write_text(
          json.dumps(_cell(config, fold, mae, val)))
  (cells / "shared__pcgrad__seed2.json").write_text(json.dumps(
      {"config": "shared:pcgrad", "seed": 2, "failed": True, "error": "boom"}))
  bench = matbench.BENCHMARKS["matbench_steels"]
  result = benchmark_scores.report(bench, str(cells), np.zeros(3), np.array([0, 1, 2]),
                                   pd.DataFrame(columns=["fold"]), leaderboards.MATBENCH_STEELS)
  rows = {r["model"]: r for r in result["rows"]}
  # The lower validation MAE picks shared (pcgrad has a failed fold and is never picked).
  best = rows["kmtl best multi-task (chosen on validation): shared"]
  assert best["scores"]["mae"] == f"{85:.4f} +- {np.std([80, 85, 90]):.4f}"
  assert rows["kmtl multi-task: shared:pcgrad"]["failed_folds"] == [2]
  assert rows["leaderboard: TPOT-Mat"]["scores"]["mae"] == "79.9468 +- 13.5883"
  order = [r["model"] for r in result["rows"]]
  assert order.index("leaderboard: TPOT-Mat") < order.index(
      "kmtl best multi-task (chosen on validation): shared")


def test_an_auxiliary_task_never_tested_trains_in_every_baseline(tmp_path):
  """The single-task networks and gradient boosting train an auxiliary task labelled only on
  never-tested rows and report it with no test rows, as the multi-task models do."""
  frame = helpers.tiny_frame(per_task=20)
  auxiliary = frame["amorphous"].notna().to_numpy()
  fold = np.where(auxiliary, -1, np.arange(len(frame)) % 2)
  frame.to_csv(tmp_path / "data.csv", index=False)
  pd.DataFrame({"fold": fold}).to_csv(tmp_path / "folds.csv", index=False)
  for arch in ("independent", "shared"):
    result = experiment.train_and_evaluate(config_lib.RunConfig(
        data=config_lib.DataConfig(path=str(tmp_path / "data.csv"),
                                   folds=str(tmp_path / "folds.csv"), cv=(2, 1)),
        train=config_lib.TrainConfig(arch=arch, epochs=1, jit_compile=False, summaries=False),
        baseline_gbm=True))
    for key in ("test", "gbm_test"):
      assert result[key]["amorphous"]["count"] == 0
      assert np.isnan(result[key]["amorphous"]["recall"])
      assert result[key]["hardness"]["count"] == int(np.sum(
          frame["hardness"].notna() & (fold == 1)))


def test_the_report_states_the_tuning_budget_and_each_configuration_time():
  search = {"budget": 20, "tasks": ["yield_strength_mpa"], "folds": 1}
  tuned = {"independent": {0: {"wall_seconds": 10.0, "tuning": {**search, "seconds": 8.0}},
                           1: {"wall_seconds": 12.0, "tuning": {**search, "seconds": 9.5}}},
           "gbm": {0: {"wall_seconds": 1.0, "tuning": {**search, "seconds": 0.5}}}}
  lines = benchmark_scores.budget_lines(tuned)
  assert "Tuned: 20 trials per configuration inside each training fold" in lines[1]
  assert "mean validation loss over yield_strength_mpa, on the validation rows" in lines[1]
  assert "| independent | 22 | 18 |" in lines and "| gbm | 1 | 0 |" in lines
  untuned = benchmark_scores.budget_lines({"shared": {0: {"wall_seconds": 3.0}}})
  assert untuned[1].startswith("Untuned") and "| shared | 3 | 0 |" in untuned
