"""The hyper-parameter search: seeded and resumable, blind to the test rows, failures recorded,
pruning, the search space and its overrides, and `kmtl tune` end to end."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from kmtl import config as config_lib
from kmtl import search_space
from kmtl import trial_objective
from kmtl import tuning
from kmtl.data import io
from kmtl.data import splits
from tests import helpers

SPACE = "trunk_depth=1,trunk_width=16|32,head_width=8,batch_size=32|64"


class Killed(BaseException):
  """Ends a search as SIGKILL would: nothing below catches it, the trial stays running."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.parquet"
  helpers.tiny_frame().to_parquet(path)
  cfg = config_lib.RunConfig(data=config_lib.DataConfig(path=str(path)),
                             train=config_lib.TrainConfig(epochs=2, patience=5,
                                                          jit_compile=False), seed=3)
  data = io.load_from_config(cfg.data)
  return cfg, data


def _search(cfg, data, directory, trials=3, space=SPACE, trials_per_process=0, **objective):
  """A search in this process (so that a test can replace its trial function), or in fresh
  processes of `trials_per_process` trials; `objective`: the plan's tasks and folds."""
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
  return tuning.search(cfg, data, prepared, tuning.Plan(trials, space, **objective),
                       str(directory), log=lambda _: None, trials_per_process=trials_per_process)


def _trials(outcome):
  return [{k: v for k, v in row.items() if k != "seconds"} for row in outcome.trials]


@pytest.fixture(scope="module")
def searched(tiny, tmp_path_factory):
  cfg, data = tiny
  return _search(cfg, data, tmp_path_factory.mktemp("first"))


def test_a_search_is_deterministic_under_a_seed_in_this_process_or_fresh_ones(tiny, searched,
                                                                              tmp_path):
  cfg, data = tiny
  again = _search(cfg, data, tmp_path, trials_per_process=2)
  assert _trials(again) == _trials(searched)
  assert [r["state"] for r in searched.trials] == ["complete"] * 3
  assert searched.best_score == min(r["validation_loss"] for r in searched.trials)
  # The trials drew different values: the search searched.
  assert len({json.dumps(r["values"], sort_keys=True) for r in searched.trials}) == 3


def test_no_trial_reads_a_test_row(tiny, searched, tmp_path):
  """Test rows' regression labels replaced by nonsense leave every trial unchanged."""
  cfg, data = tiny
  test_rows = splits.row_splits(data, cfg.data.val_fraction, cfg.data.test_fraction,
                                cfg.seed) == splits.TEST
  labels = dict(data.labels)
  for name in ("resistivity", "hardness"):
    poisoned = labels[name].copy()
    poisoned[test_rows & ~np.isnan(poisoned)] = 1e4
    labels[name] = poisoned
  assert not np.array_equal(labels["hardness"], data.labels["hardness"], equal_nan=True)
  outcome = _search(cfg, dataclasses.replace(data, labels=labels), tmp_path)
  assert _trials(outcome) == _trials(searched)


def test_a_killed_search_continues_to_the_same_trials(tiny, searched, tmp_path, monkeypatch):
  cfg, data = tiny
  real, calls = tuning.train_trial, []

  def killed_in_the_second_trial(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
      raise Killed()
    return real(*args, **kwargs)
  monkeypatch.setattr(tuning, "train_trial", killed_in_the_second_trial)
  with pytest.raises(Killed):
    _search(cfg, data, tmp_path)
  monkeypatch.setattr(tuning, "train_trial", real)
  resumed = _search(cfg, data, tmp_path)
  assert _trials(resumed) == _trials(searched)
  assert resumed.best_values == searched.best_values


def test_a_failed_trial_is_recorded_with_its_reason_and_the_search_goes_on(tiny, tmp_path,
                                                                           monkeypatch):
  cfg, data = tiny
  real, calls = tuning.train_trial, []

  def first_fails(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
      raise ArithmeticError("the solver diverged")
    return real(*args, **kwargs)
  monkeypatch.setattr(tuning, "train_trial", first_fails)
  outcome = _search(cfg, data, tmp_path, trials=2)
  assert [r["state"] for r in outcome.trials] == ["fail", "complete"]
  assert outcome.trials[0]["error"] == "ArithmeticError: the solver diverged"
  assert outcome.best_number == 1


def test_a_search_whose_every_trial_diverges_says_so(tiny, tmp_path):
  cfg, data = tiny
  with pytest.raises(tuning.TuningError, match="no trial of 2 finished: TrainingError: "
                     "non-finite loss"):
    _search(cfg, data, tmp_path, trials=2, space=SPACE + ",lr=1e6:1e7:log")


def test_the_median_pruner_stops_a_trial_worse_than_the_earlier_ones(tiny, tmp_path,
                                                                     monkeypatch):
  cfg, data = tiny
  calls = []

  def scripted(trial_cfg, trial_data, prepared, names, report):
    calls.append(1)
    worse = 10.0 if len(calls) == tuning.STARTUP_TRIALS + 1 else 1.0
    for epoch in range(1, tuning.WARMUP_EPOCHS + 3):
      report(epoch, worse + 1.0 / epoch)
    return {"hardness": worse}
  monkeypatch.setattr(tuning, "train_trial", scripted)
  outcome = _search(cfg, data, tmp_path, trials=tuning.STARTUP_TRIALS + 2)
  states = [r["state"] for r in outcome.trials]
  assert states == ["complete"] * tuning.STARTUP_TRIALS + ["pruned", "complete"]
  # Pruned at the last warm-up epoch, the first at which it could be.
  assert outcome.trials[tuning.STARTUP_TRIALS]["validation_loss"] == pytest.approx(
      10.0 + 1.0 / tuning.WARMUP_EPOCHS)


# The search space.

def test_values_become_the_run_configuration():
  cfg = config_lib.RunConfig(train=config_lib.TrainConfig(surgery="gradnorm"))
  tuned = search_space.apply(cfg, {"lr": 0.003, "weight_decay": 0.0, "dropout": 0.2,
                                   "batch_size": 64, "trunk_width": 32, "trunk_depth": 3,
                                   "head_width": 16, "method.alpha": 0.7}, [1.0, 65.0, 62.0])
  assert tuned.train.learning_rate == 0.003 and tuned.train.batch_size == 64
  assert tuned.model.trunk_units == (32, 32, 32) and tuned.model.head_units == (16,)
  assert tuned.model.dropout == 0.2 and dict(tuned.train.surgery_kwargs) == {"alpha": 0.7}
  weighted = search_space.apply(config_lib.RunConfig(), {"task_weight.hardness": 0.5},
                                [1.0, 65.0, 62.0])
  assert weighted.train.task_weights == (1.0, 32.5, 62.0)


def test_each_configuration_gets_the_default_space_and_its_method_own():
  names = ("a", "b")
  shared, _ = search_space.parameters("shared", "none", names)
  assert {p.name for p in shared} == {p.name for p in search_space.DEFAULT} | {
      "task_weight.a", "task_weight.b"}
  gradnorm, _ = search_space.parameters("shared", "gradnorm", names)
  assert {p.name for p in gradnorm} == {p.name for p in search_space.DEFAULT} | {"method.alpha"}
  single, _ = search_space.parameters("independent", "none", names)
  assert {p.name for p in single} == {p.name for p in search_space.DEFAULT}
  ple, fixed = search_space.parameters("ple", "none", names,
                                       search_space.parse_overrides("lr=0.001,dropout=off"))
  assert "trunk_depth" not in {p.name for p in ple} and fixed == {"lr": 0.001}
  assert not {"lr", "dropout"} & {p.name for p in ple}


@pytest.mark.parametrize("text, message", [
    ("lr=1e-2:1e-4:log", "empty or inverted range"), ("lr=0:1e-2:log", "LOW > 0"),
    ("learning_rate=1e-3", "unknown parameter 'learning_rate'"),
    ("lr=1e-3:x", "'x' is not a number"), ("lr", "expected NAME="),
    ("lr=1e-3,lr=1e-2", "lr is given twice"), ("dropout=0.1:0.2:sqrt", "LOW:HIGH:log")])
def test_bad_search_space_entries_are_refused_naming_the_flag(text, message):
  with pytest.raises(ValueError, match=message) as caught:
    search_space.parameters("shared", "none", ("a", "b"), search_space.parse_overrides(text))
  assert str(caught.value).startswith("--search_space")


def test_kmtl_tune_writes_its_search_and_the_ensemble_of_the_best_trials_serves(tiny, tmp_path):
  """(Bad flags of kmtl tune are rows of the bad-input catalogue.)"""
  cfg, _ = tiny
  out, workdir, export_dir = tmp_path / "tuned", tmp_path / "run", tmp_path / "export"
  done = subprocess.run([sys.executable, "-m", "kmtl.tune", f"--data={cfg.data.path}",
                         "--epochs=2", "--nojit_compile", "--search_space=trunk_depth=1,"
                         "trunk_width=8|16|32,head_width=8", "--tune_trials=3", "--ensemble=2",
                         f"--out={out}", f"--workdir={workdir}", f"--export_dir={export_dir}"],
                        capture_output=True, text=True, check=True)
  assert "best of 3 trials" in done.stdout and "ensemble of the 2 best trials" in done.stdout
  best = json.loads((out / "best.json").read_text())
  assert best["budget"] == 3 and sum(best["trials"].values()) == 3
  assert best["made_by"].startswith("Made by `python -m kmtl.tune --data=")
  assert best["scored_tasks"] == ["resistivity", "hardness", "amorphous"] and best["folds"] == 1
  flagfile = (out / "best.cfg").read_text()
  assert f"--lr={best['values']['lr']!r}" in flagfile
  assert f"--trunk_units={best['values']['trunk_width']}" in flagfile
  assert len(list((out / "tb").iterdir())) == 3
  trials = [row for row in _read_csv(out / "trials.csv") if row["state"] == "complete"]
  best_two = sorted(trials, key=lambda r: float(r["validation_loss"]))[:2]
  for member, row in enumerate(best_two):
    member_cfg = json.loads((workdir / "members" / str(member) / "config.json").read_text())
    assert member_cfg["model"]["trunk_units"] == [int(row["value.trunk_width"])]
    assert member_cfg["train"]["learning_rate"] == pytest.approx(float(row["value.lr"]))
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert metrics["ensemble"] == 2 and "coverage_95" in metrics["test"]["hardness"]
  predictions = tmp_path / "predictions.csv"
  subprocess.run([sys.executable, "-m", "kmtl.predict", f"--model={export_dir / 'kmtl'}",
                  f"--data={cfg.data.path}", f"--out={predictions}"], check=True,
                 capture_output=True, text=True)
  assert "hardness_std" in predictions.read_text().splitlines()[0]


def _read_csv(path):
  import csv  # pylint: disable=g-import-not-at-top
  with open(path, encoding="utf-8") as f:
    return list(csv.DictReader(f))


# The gradient-boosting reference, tuned with the same budget and objective.

def test_boosting_validation_loss_is_the_networks_objective(tiny):
  from sklearn import ensemble  # pylint: disable=g-import-not-at-top
  cfg, data = tiny
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
  params = {"max_iter": 30, "learning_rate": 0.2}
  want = {}
  for task in data.tasks:
    rows, val_rows = prepared.train.masks[task.name] > 0, prepared.val.masks[task.name] > 0
    x, y = prepared.train.features[rows], prepared.train.labels[task.name][rows]
    vx, vy = prepared.val.features[val_rows], prepared.val.labels[task.name][val_rows]
    if task.kind == "regression":
      model = ensemble.HistGradientBoostingRegressor(random_state=3, **params).fit(x, y)
      want[task.name] = np.mean((model.predict(vx) - vy) ** 2)
    else:
      model = ensemble.HistGradientBoostingClassifier(random_state=3, **params).fit(
          x, y.astype(int))
      p = model.predict_proba(vx)[:, 1]
      want[task.name] = -np.mean(vy * np.log(p) + (1 - vy) * np.log(1 - p))
  from kmtl import gbm  # pylint: disable=g-import-not-at-top
  assert gbm.validation_losses(prepared, data.tasks, 3, params) == pytest.approx(want, rel=1e-9)


def test_a_boosting_search_is_deterministic_and_blind_to_the_test_rows(tiny, tmp_path):
  cfg, data = tiny
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
  plan = tuning.Plan(4, "gbm.max_iter=20:60:int")
  test_rows = prepared.row_split == splits.TEST
  labels = {n: np.where(test_rows & ~np.isnan(v), 1e4, v) if n != "amorphous" else v
            for n, v in data.labels.items()}
  poisoned = dataclasses.replace(data, labels=labels)
  runs = [tuning.search(cfg, d, splits.prepare(d, cfg.data.val_fraction,
                                               cfg.data.test_fraction, cfg.seed),
                        plan, str(tmp_path / str(i)), log=lambda _: None,
                        kind=search_space.GBM) for i, d in enumerate((data, poisoned))]
  assert _trials(runs[0]) == _trials(runs[1])
  assert {r["state"] for r in runs[0].trials} == {"complete"}
  assert set(runs[0].best_values) == {p.name for p in search_space.GBM_PARAMETERS}
  assert 20 <= runs[0].best_values["gbm.max_iter"] <= 60


# The objective: which tasks score a trial, and on which rows.

def test_a_trial_score_averages_each_task_over_its_folds_then_over_tasks():
  # hardness: (1 + 3) / 2 = 2; resistivity, validated in one fold only: 4; the score is their
  # mean, 3 (a mean over the three numbers would give 8 / 3).
  assert trial_objective.trial_score([{"hardness": 1.0, "resistivity": 4.0}, {"hardness": 3.0}]) == 3.0
  with pytest.raises(ValueError, match="no scored task has validation rows"):
    trial_objective.trial_score([{}, {}])


def test_the_plan_refuses_bad_objectives_naming_the_flag():
  with pytest.raises(ValueError, match="--tune_folds=0: needs 1"):
    tuning.Plan(2, folds=0)
  with pytest.raises(ValueError, match="--tune_trials=-1: needs 0 or more"):
    tuning.Plan(-1)
  with pytest.raises(ValueError, match="--tune_tasks: density is not a task of this run"):
    tuning.Plan(2, tasks=("density",)).check(["hardness", "resistivity"])
  assert tuning.Plan(0, tasks=("hardness",)).settings() == {}
  assert tuning.Plan(2, "lr=1e-3").settings() == {"tuning.trials": 2,
                                                  "tuning.search_space": "lr=1e-3"}
  assert tuning.Plan(2, "", ("hardness",), 3).settings() == {
      "tuning.trials": 2, "tuning.search_space": "", "tuning.tasks": "hardness",
      "tuning.folds": 3}


def test_objective_folds_deal_every_seen_row_to_one_validation_fold_by_composition(tiny):
  cfg, data = tiny
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
  seen = tuning.without_test(prepared)
  folds = trial_objective.objective_splits(data, seen, tuning.Plan(2, folds=3), seed=3)
  assert len(folds) == 3
  pooled = np.concatenate([seen.train.features, seen.val.features])
  validated = np.concatenate([f.val.features for f in folds])
  # Every seen row validates exactly once, and only seen rows do.
  assert len(validated) == len(pooled)
  np.testing.assert_array_equal(np.sort(validated, axis=0), np.sort(pooled, axis=0))
  for f in folds:
    assert f.train.num_rows + f.val.num_rows == len(pooled)
    assert f.test.num_rows == 0
    # A composition (its feature row) never both trains and validates in one fold.
    trained = {r.tobytes() for r in f.train.features}
    assert not any(r.tobytes() in trained for r in f.val.features)
    for name in data.labels:
      assert f.train.masks[name].sum() + f.val.masks[name].sum() == (
          seen.train.masks[name].sum() + seen.val.masks[name].sum())
  assert trial_objective.objective_splits(data, seen, tuning.Plan(2), seed=3) == [seen]


def test_a_target_task_objective_scores_that_task_of_the_same_training(tiny, tmp_path):
  cfg, data = tiny
  cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, arch="shared"))
  outcome = _search(cfg, data, tmp_path, trials=1, tasks=("hardness",))
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
  seen = tuning.without_test(prepared)
  trial_cfg = search_space.apply(cfg, outcome.best_values, tuning.base_task_weights(cfg, seen))
  losses = tuning.train_trial(trial_cfg, data, seen, [t.name for t in data.tasks])
  assert outcome.best_score == pytest.approx(losses["hardness"], rel=1e-6)
  assert losses["hardness"] != pytest.approx(np.mean(list(losses.values())), rel=1e-3)


def test_the_single_task_baseline_tunes_only_the_scored_tasks_networks(tiny, tmp_path,
                                                                       monkeypatch):
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  cfg, data = tiny
  cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, arch="independent"))
  real, built = experiment.build_trainer, []

  def recorded(trial_cfg, net, tasks, *args, **kwargs):
    built.append([t.name for t in tasks])
    return real(trial_cfg, net, tasks, *args, **kwargs)
  monkeypatch.setattr(experiment, "build_trainer", recorded)
  outcome = _search(cfg, data, tmp_path, trials=2, tasks=("hardness",), folds=2)
  assert built == [["hardness"]] * 4  # 2 trials x 2 folds
  assert [r["state"] for r in outcome.trials] == ["complete"] * 2


def test_a_cross_validated_search_is_deterministic_and_blind_to_the_test_rows(tiny, tmp_path):
  cfg, data = tiny
  test_rows = splits.row_splits(data, cfg.data.val_fraction, cfg.data.test_fraction,
                                cfg.seed) == splits.TEST
  labels = {n: np.where(test_rows & ~np.isnan(v), 1e4, v) if n != "amorphous" else v
            for n, v in data.labels.items()}
  runs = [_search(cfg, d, tmp_path / str(i), trials=2, folds=2)
          for i, d in enumerate((data, dataclasses.replace(data, labels=labels)))]
  assert _trials(runs[0]) == _trials(runs[1])
  assert {r["state"] for r in runs[0].trials} == {"complete"}
