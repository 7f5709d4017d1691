"""The negative-transfer study: statistics by hand, resume, and a tiny sweep end to end."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from kmtl import resampled_tests
from kmtl import verdicts
from kmtl.data import schema
from tests import helpers

T_975_DF3 = 3.182446305284263  # scipy.stats.t.ppf(0.975, 3), the 95% quantile for 4 values
# Five folds: each split tests a quarter as many rows as it trains on.
FIVE_FOLDS = verdicts.Design("5 folds of a 5-fold split", 0.25,
                             resampled_tests.parse_ropes(resampled_tests.DEFAULT_ROPES))


def test_mean_and_ci_by_hand():
  mean, half = verdicts.mean_ci([0.90, 0.92, 0.94, 0.96])
  sd = math.sqrt(((0.03**2 + 0.01**2) * 2) / 3)
  assert mean == pytest.approx(0.93)
  assert half == pytest.approx(T_975_DF3 * sd / 2)
  # Overlapping training sets (test/train 1/4) widen it: sqrt(1/4 + 1/4) instead of 1/2.
  assert verdicts.mean_ci([0.90, 0.92, 0.94, 0.96], 0.25)[1] == pytest.approx(
      T_975_DF3 * sd * math.sqrt(0.5))
  assert math.isnan(verdicts.mean_ci([0.5])[1])


def test_paired_comparison_by_hand():
  stl = [0.96, 0.95, 0.97, 0.96]
  mtl = [0.90, 0.91, 0.90, 0.89]
  # Differences -0.06 -0.04 -0.07 -0.07: mean -0.06, sd sqrt(0.0006 / 3) = sqrt(0.0002); with
  # test/train 1/4 the corrected scale is sd * sqrt(1/4 + 1/4) = 0.01 exactly, t = -6.
  out = verdicts.paired_comparison(mtl, stl, "r2", 0.25, rope=0.01)
  from scipy import stats  # pylint: disable=g-import-not-at-top
  assert out["diff"] == pytest.approx(-0.06)
  assert out["ci"] == pytest.approx(T_975_DF3 * 0.01)
  assert out["p"] == pytest.approx(2 * stats.t.sf(6.0, 3))
  # The posterior: t(3) at -0.06 with scale 0.01; P(mu < -0.01) = F3(5), P(mu > 0.01) = 1 - F3(7).
  assert out["posterior"].below == pytest.approx(stats.t.cdf(5.0, 3))
  assert out["posterior"].above == pytest.approx(stats.t.sf(7.0, 3))
  assert out["verdict"] == "negative transfer"
  # Without the correction it is the paired t-test.
  assert verdicts.paired_comparison(mtl, stl, "r2", 0.0)["p"] == pytest.approx(
      stats.ttest_rel(mtl, stl).pvalue)
  # Lower is better for MAE: a drop is positive transfer.
  assert verdicts.paired_comparison([1.0, 2.0, 1.5], [2.0, 3.1, 2.4], "mae", 0.25,
                                    rope=0.05)["verdict"] == "positive transfer"
  noisy = verdicts.paired_comparison([0.5, 0.7, 0.4], [0.6, 0.5, 0.5], "recall", 0.25, 0.02)
  assert noisy["verdict"] == "undecided"
  same = verdicts.paired_comparison([0.5, 0.6], [0.4, 0.5], "recall", 0.25, 0.02)
  assert math.isnan(same["p"]) and same["posterior"] is None
  assert same["verdict"] == "undecided"


def test_a_metric_in_small_units_still_gets_its_test():
  """The same comparison in units 10^9 times smaller (an MAE in ohm m, say) gets the same p
  value; an absolute tolerance called its spread none and claimed no test."""
  stl = [0.96, 0.95, 0.97, 0.96]
  mtl = [0.90, 0.91, 0.90, 0.89]
  large = verdicts.paired_comparison(mtl, stl, "mae", 0.25)
  small = verdicts.paired_comparison([v * 1e-9 for v in mtl], [v * 1e-9 for v in stl], "mae",
                                     0.25)
  assert small["p"] == pytest.approx(large["p"], rel=1e-9)
  assert small["verdict"] == large["verdict"] == "positive transfer"


def test_configuration_names():
  c = verdicts.Configuration.parse("shared:gradnorm:lds+fds")
  assert (c.arch, c.surgery, c.imbalance) == ("shared", "gradnorm", ("lds", "fds"))
  assert c.name == "shared:gradnorm:lds+fds"
  assert verdicts.Configuration.parse("independent").name == "independent"
  with pytest.raises(ValueError, match="arch"):
    verdicts.Configuration.parse("a:b:c:d")


def test_summarize_pairs_by_seed():
  tasks = [schema.TaskSpec("hardness"), schema.TaskSpec("amorphous", schema.BINARY)]

  def cell(r2, recall):
    return {"test": {"hardness": {"r2": r2}, "amorphous": {"recall": recall}}}
  cells = {("independent", 0): cell(0.7, 0.8), ("independent", 1): cell(0.6, 0.7),
           ("independent", 2): cell(0.65, 0.75),
           ("shared", 0): cell(0.6, 0.9), ("shared", 1): cell(0.52, 0.85),
           ("shared", 2): cell(0.56, 0.8)}
  headline = {"hardness": "r2", "amorphous": "recall"}
  rows = verdicts.summarize(cells, tasks, {"regression": ["r2"], "binary": ["recall"]}, headline,
                            FIVE_FOLDS)
  by = {(r["config"], r["task"]): r for r in rows}
  assert "diff" not in by[("independent", "hardness")]
  assert by[("shared", "hardness")]["diff"] == pytest.approx(-0.09)
  assert by[("shared", "amorphous")]["diff"] == pytest.approx((0.1 + 0.15 + 0.05) / 3)
  table = verdicts.markdown_table(rows, headline)
  assert "| shared | hardness | r2 | 3 | 0 | 0.5600" in table


def test_a_task_no_cell_scored_has_no_rows():
  tasks = [schema.TaskSpec("hardness"), schema.TaskSpec("tg")]
  cell = lambda r2: {"test": {"hardness": {"r2": r2, "count": 9},
                              "tg": {"r2": float("nan"), "count": 0}}}
  cells = {("independent", 0): cell(0.7), ("independent", 1): cell(0.6),
           ("shared", 0): cell(0.8), ("shared", 1): {"failed": True, "error": "boom"}}
  rows = verdicts.summarize(cells, tasks, {"regression": ["r2"]}, {"hardness": "r2", "tg": "r2"},
                            FIVE_FOLDS)
  assert {r["task"] for r in rows} == {"hardness"}
  assert [r["failed"] for r in rows if r["config"] == "shared"] == [[1]]


def test_holm_by_hand():
  # p sorted 0.01, 0.02, 0.04 (m = 3): 0.03, 0.04, 0.04 (made non-decreasing).
  np.testing.assert_allclose(verdicts.holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
  np.testing.assert_allclose(verdicts.holm([0.5, 0.6]), [1.0, 1.0])


def test_verdicts_come_from_the_posterior_p_from_the_corrected_test_and_failures_count():
  """A clear drop is negative transfer, a difference inside the ROPE equivalent, a noisy one
  undecided; Holm adjusts the corrected p over the headline family; a failed split and a NaN
  metric are counted, not dropped; gbm gets a difference but no verdict."""
  tasks = [schema.TaskSpec("hardness")]
  base = [0.70, 0.60, 0.65, 0.62, 0.68]
  strong = [b - 0.10 + 0.001 * i for i, b in enumerate(base)]  # a clear drop, tiny spread
  weak = [b - d for b, d in zip(base, [0.02, 0.05, -0.005, 0.04, 0.03])]  # P(worse) ~ 0.85
  level = [b + d for b, d in zip(base, [0.001, -0.002, 0.0, 0.002, -0.001])]  # within +-0.01
  cells = {}
  for s in range(5):
    cells[("independent", s)] = {"test": {"hardness": {"r2": base[s]}}}
    cells[("shared", s)] = {"test": {"hardness": {"r2": strong[s]}}}
    cells[("structured", s)] = {"test": {"hardness": {"r2": weak[s]}}}
    cells[("shared:gradnorm", s)] = {"test": {"hardness": {"r2": level[s]}}}
    cells[("gbm", s)] = {"test": {"hardness": {"r2": base[s] + 0.05}}}
  cells[("shared:pcgrad", 0)] = {"failed": True, "error": "TrainingError: non-finite loss"}
  for s in range(1, 5):
    cells[("shared:pcgrad", s)] = {"test": {"hardness": {"r2": float("nan") if s == 1
                                                         else base[s] - 0.1 - 0.002 * s}}}
  rows = verdicts.summarize(cells, tasks, {"regression": ["r2"]}, {"hardness": "r2"},
                            FIVE_FOLDS)
  by = {r["config"]: r for r in rows}
  family = [r for r in rows if "p_holm" in r]
  assert len(family) == verdicts.family_size(rows) == 4  # not gbm
  np.testing.assert_allclose([r["p_holm"] for r in family],
                             verdicts.holm([r["p"] for r in family]))
  assert by["shared"]["verdict"] == by["shared:pcgrad"]["verdict"] == "negative transfer"
  assert by["shared:gradnorm"]["verdict"] == "equivalent"
  assert by["shared:gradnorm"]["p_equivalent"] > 0.95 and by["shared:gradnorm"]["rope"] == 0.01
  weak_row = by["structured"]
  assert weak_row["verdict"] == "undecided"
  assert 0.5 < weak_row["p_worse"] < 0.95
  assert weak_row["p_better"] + weak_row["p_equivalent"] + weak_row["p_worse"] == \
      pytest.approx(1.0)
  # Evidence: a ROPE-sized difference (0.01) lies below the correction's floor for this
  # spread (about 2.8 * 0.021 * sqrt(1/4) = 0.03), so no number of splits finds it; 0.05 does.
  assert weak_row["target_effect"] == 0.01 and weak_row["splits_needed"] is None
  wider = dataclasses.replace(FIVE_FOLDS, targets={"r2": resampled_tests.Rope(0.05)})
  again = {r["config"]: r for r in verdicts.summarize(cells, tasks, {"regression": ["r2"]},
                                                       {"hardness": "r2"}, wider)}
  sd = np.std(np.subtract(weak, base), ddof=1)
  assert again["structured"]["splits_needed"] == resampled_tests.runs_needed(sd, 0.05, 0.25)
  assert again["structured"]["splits_needed"] > 2
  assert by["shared:pcgrad"]["failed"] == [0, 1] and by["shared:pcgrad"]["n"] == 3
  assert by["gbm"]["diff"] == pytest.approx(0.05) and "verdict" not in by["gbm"]
  assert "p" not in by["gbm"]
  table = verdicts.markdown_table(rows, {"hardness": "r2"})
  assert "| shared:pcgrad | hardness | r2 | 3 | 0,1 |" in table
  assert "| never for 0.01 |" in table
  assert "gbm (reference) | hardness | r2 | 5 | 0 |" in table
  assert "reference, no verdict" in table
  assert verdicts.failures(cells) == ["- shared:pcgrad seed 0: TrainingError: non-finite loss"]


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.csv"
  helpers.tiny_frame(per_task=40).to_csv(path, index=False)
  return str(path)


def _reproduce(out, data, *extra):
  return subprocess.run(
      [sys.executable, "-m", "kmtl.reproduce", f"--out={out}", f"--data={data}",
       "--grid=independent,shared:pcgrad,gbm", "--seeds=2", "--epochs=2", "--jobs=2", "--nojit_compile",
       *extra],
      capture_output=True, text=True, check=True)


def test_tiny_sweep_end_to_end_and_resume(tiny_csv, tmp_path):
  out = tmp_path / "study"
  first = _reproduce(out, tiny_csv)
  assert sorted(os.listdir(out / "cells")) == [
      "gbm__seed0.json", "gbm__seed1.json", "independent__seed0.json",
      "independent__seed1.json", "shared__pcgrad__seed0.json", "shared__pcgrad__seed1.json"]
  for name in ("study.md", "cells.csv", "summary.json", "transfer.png"):
    assert (out / name).stat().st_size > 0, name
  assert (out / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  table = (out / "study.md").read_text()
  assert "| shared:pcgrad | hardness | r2 | 2 |" in table and table in first.stdout
  rows = json.loads((out / "summary.json").read_text())
  assert {r["config"] for r in rows} == {"independent", "shared:pcgrad", "gbm"}
  # Binary tasks head the table by AUROC, with recall at the threshold in a table beside it.
  assert "| gbm (reference) | amorphous | auroc | 2 |" in table
  assert "Binary tasks at the decision threshold: recall" in table
  assert "| shared:pcgrad | amorphous | recall | 2 |" in table
  cell = json.loads((out / "cells" / "shared__pcgrad__seed0.json").read_text())
  assert cell["settings"]["train.epochs"] == 2 and len(cell["settings"]["data.fingerprint"]) == 64

  # A resumed sweep runs only the missing cell and reports the same numbers.
  before = (out / "cells" / "independent__seed0.json").read_text()
  os.remove(out / "cells" / "shared__pcgrad__seed1.json")
  second = _reproduce(out, tiny_csv)
  assert "5 already done, 1 to run" in second.stderr
  assert (out / "cells" / "independent__seed0.json").read_text() == before
  assert (out / "study.md").read_text() == table

  # Other settings are refused, naming them; --fresh starts again.
  changed = subprocess.run(
      [sys.executable, "-m", "kmtl.reproduce", f"--out={out}", f"--data={tiny_csv}",
       "--grid=independent,shared:pcgrad,gbm", "--seeds=2", "--epochs=3", "--jobs=2",
       "--nojit_compile"], capture_output=True, text=True, check=False)
  assert changed.returncode == 1
  last = changed.stderr.strip().splitlines()[-1]
  assert last.startswith("kmtl.reproduce: error: ") and "train.epochs" in last
  assert (out / "cells" / "independent__seed0.json").read_text() == before


def test_a_repeated_cross_validated_study_tests_every_row_once_per_repeat(tiny_csv, tmp_path):
  out = tmp_path / "cv"
  subprocess.run([sys.executable, "-m", "kmtl.study", f"--out={out}", f"--data={tiny_csv}",
                  "--grid=independent,gbm", "--cv=2", "--repeats=2", "--epochs=1",
                  "--jobs=2", "--nojit_compile"], capture_output=True, text=True, check=True)
  cells = {(c["config"], c["seed"]): c for c in
           (json.loads(p.read_text()) for p in (out / "cells").glob("*.json"))}
  assert sorted(cells) == [(n, k) for n in ("gbm", "independent") for k in range(4)]
  labelled = int(pd.read_csv(tiny_csv)["hardness"].notna().sum())
  for name in ("independent", "gbm"):
    for repeat in range(2):
      assert sum(cells[(name, 2 * repeat + k)]["test"]["hardness"]["count"]
                 for k in range(2)) == labelled
  assert cells[("independent", 3)]["settings"]["data.cv"] == [2, 1, 1]
  table = (out / "study.md").read_text()
  made_by, _, design = table.splitlines()[:3]
  assert made_by.startswith("Made by `python -m kmtl.study --out=") and "--repeats=2" in made_by
  assert design.startswith("4 folds (2 x 2-fold cross-validation), paired against STL")
  assert "test/train ratio 1)" in table
  assert "| gbm (reference) | hardness | r2 | 4 | 0 |" in table


def test_a_failing_cell_is_recorded_and_the_others_run(tmp_path):
  """A cell whose training raises and a cell whose process dies are both recorded as failed
  with their reason; the sweep goes on."""
  from kmtl import config as config_lib  # pylint: disable=g-import-not-at-top
  from kmtl import sweep  # pylint: disable=g-import-not-at-top
  frame = helpers.tiny_frame(per_task=20)
  path = tmp_path / "tiny.csv"
  frame.to_csv(path, index=False)
  good = config_lib.RunConfig(
      data=config_lib.DataConfig(path=str(path)),
      train=config_lib.TrainConfig(epochs=1, summaries=False, grad_stats=False,
                                   jit_compile=False))
  raising = config_lib.RunConfig(**{**good.__dict__, "train": config_lib.TrainConfig(
      epochs=1, surgery="pcgrad", surgery_kwargs=(("no_such", 1.0),), summaries=False,
      grad_stats=False, jit_compile=False)})
  cells = [sweep.Cell("shared", 0, good, {"k": 1}, str(tmp_path / "a.json")),
           sweep.Cell("shared:pcgrad", 0, raising, {"k": 1}, str(tmp_path / "b.json")),
           sweep.Cell("missing", 0, config_lib.RunConfig(
               data=config_lib.DataConfig(path=str(tmp_path / "nope.csv"))), {"k": 1},
                      str(tmp_path / "c.json"))]
  logged = []
  sweep.run(cells, 2, logged.append)
  a, b, c = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json", "c.json"))
  assert not a.get("failed") and a["epochs_run"] == 1 and a["settings"] == {"k": 1}
  assert b["failed"] and b["error"].startswith("ValueError: --surgery_args: pcgrad takes")
  assert c["failed"] and "nope.csv" in c["error"]
  assert len(logged) == 3 and sum("FAILED" in line for line in logged) == 2


def test_a_worker_trains_several_cells_with_the_numbers_of_a_fresh_process(tmp_path,
                                                                            monkeypatch):
  """A cell trained after others in the same worker (one under XLA, one of another
  configuration) has the numbers of the same cell trained first in a fresh worker; a worker
  hands over to a fresh process after CELLS_PER_WORKER cells."""
  from kmtl import config as config_lib  # pylint: disable=g-import-not-at-top
  from kmtl import sweep  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(sweep, "CELLS_PER_WORKER", 3)
  path = tmp_path / "tiny.csv"
  helpers.tiny_frame(per_task=20).to_csv(path, index=False)
  def cell(name, surgery, seed, jit):
    return sweep.Cell(name, seed, config_lib.RunConfig(
        data=config_lib.DataConfig(path=str(path)), seed=seed,
        train=config_lib.TrainConfig(surgery=surgery, epochs=2, summaries=False,
                                     grad_stats=False, jit_compile=jit)), {"k": 1},
                      str(tmp_path / f"{name}.json"))
  cells = [cell("first", "pcgrad", 1, False), cell("other", "none", 0, True),
           cell("again", "pcgrad", 1, False), cell("fresh", "pcgrad", 1, False)]
  sweep.run(cells, 1, lambda _: None)
  first, other, again, fresh = (json.loads(open(c.path, encoding="utf-8").read())
                                for c in cells)
  assert not any(r.get("failed") for r in (first, other, again, fresh))
  assert first["worker_pid"] == other["worker_pid"] == again["worker_pid"]
  assert fresh["worker_pid"] != first["worker_pid"]
  assert first["test"] == again["test"] == fresh["test"]
  assert first["test"] != other["test"]


def test_a_worker_that_dies_keeps_the_end_of_its_stderr(tmp_path):
  """A worker process that dies before it can record its cell (here: a thread count TensorFlow
  refuses, set before any cell code runs) leaves its last stderr lines in the cell's error."""
  from kmtl import config as config_lib  # pylint: disable=g-import-not-at-top
  from kmtl import sweep  # pylint: disable=g-import-not-at-top
  cell = sweep.Cell("shared", 0, config_lib.RunConfig(), {"k": 1}, str(tmp_path / "a.json"))
  logged = []
  sweep.run([cell], 1, logged.append, threads="many")
  record = json.loads((tmp_path / "a.json").read_text())
  assert record["failed"] and record["error"].startswith(
      "worker process exited with code 1; its last output: ")
  assert "Error" in record["error"].rsplit("its last output: ", 1)[1]
  assert os.listdir(tmp_path) == ["a.json"] and "FAILED" in logged[0]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads worker processes from /proc")
def test_workers_die_with_a_study_killed_with_sigkill(tiny_csv, tmp_path):
  """A study killed with SIGKILL takes its workers with it: none goes on training and writes
  its cell after the study died."""
  study = subprocess.Popen(
      [sys.executable, "-m", "kmtl.study", f"--out={tmp_path / 'study'}", f"--data={tiny_csv}",
       "--grid=shared", "--seeds=2", "--epochs=200", "--patience=200", "--jobs=2",
       "--nojit_compile"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 120
  workers = []
  while len(workers) < 2 and time.monotonic() < deadline and study.poll() is None:
    time.sleep(0.5)
    workers = helpers.child_processes(study.pid, "spawn_main")
  assert len(workers) == 2, "the study did not start its workers"
  study.send_signal(signal.SIGKILL)
  study.wait()
  deadline = time.monotonic() + 15
  while any(helpers.alive(p) for p in workers) and time.monotonic() < deadline:
    time.sleep(0.2)
  assert not any(helpers.alive(p) for p in workers)
  assert not [n for n in os.listdir(tmp_path / "study" / "cells") if n.endswith(".json")]


def test_grid_entries_carry_method_hyper_parameters():
  c = verdicts.Configuration.parse("shared:gradnorm(alpha=0.5;learning_rate=0.01):lds")
  assert (c.arch, c.surgery, c.imbalance) == ("shared", "gradnorm", ("lds",))
  assert c.surgery_args == (("alpha", 0.5), ("learning_rate", 0.01))
  assert c.name == "shared:gradnorm(alpha=0.5;learning_rate=0.01):lds"
  assert verdicts.Configuration.parse(c.name) == c
  with pytest.raises(ValueError, match="name=value"):
    verdicts.Configuration.parse("shared:gradnorm(alpha)")


def test_a_tuned_study_gives_every_configuration_the_same_budget(tiny_csv, tmp_path):
  out = tmp_path / "tuned"
  args = [sys.executable, "-m", "kmtl.study", f"--out={out}", f"--data={tiny_csv}",
          "--grid=independent,shared,gbm", "--seeds=1", "--epochs=2", "--jobs=2",
          "--nojit_compile", "--search_space=trunk_depth=1,trunk_width=16,head_width=8",
          "--tune_tasks=hardness"]
  subprocess.run(args + ["--tune_trials=2"], capture_output=True, text=True, check=True)
  for name in ("independent", "shared"):
    cell = json.loads((out / "cells" / f"{name}__seed0.json").read_text())
    assert cell["tuning"]["budget"] == 2 and sum(cell["tuning"]["trials"].values()) == 2
    assert (cell["tuning"]["tasks"], cell["tuning"]["folds"]) == (["hardness"], 1)
    assert cell["settings"]["tuning.trials"] == 2
    assert cell["settings"]["tuning.tasks"] == "hardness" and "tuning.folds" not in cell["settings"]
    assert cell["tuning"]["values"]["trunk_width"] == 16
    assert (out / "cells" / f"{name}__seed0.tuning" / "tuning.db").exists()
  gbm_cell = json.loads((out / "cells" / "gbm__seed0.json").read_text())
  assert gbm_cell["tuning"]["budget"] == 2 and "gbm.learning_rate" in gbm_cell["tuning"]["values"]
  table = (out / "study.md").read_text()
  assert "Tuning: 2 trials per cell and configuration" in table and "not tuned" not in table
  assert "scored by the mean validation loss over hardness, on the validation rows" in table
  # Another budget is another study: refused, naming the setting.
  changed = subprocess.run(args + ["--tune_trials=3"], capture_output=True, text=True,
                           check=False)
  assert changed.returncode == 1 and "tuning.trials" in changed.stderr.strip().splitlines()[-1]


def test_a_study_takes_the_training_flags_of_kmtl_train(tiny_csv, tmp_path):
  """--dropout, --l2, --regression_loss and the rest are one definition shared with kmtl train,
  so a study with MC dropout runs (it could not while the study lacked --dropout)."""
  out = tmp_path / "dropout"
  subprocess.run([sys.executable, "-m", "kmtl.study", f"--out={out}", f"--data={tiny_csv}",
                  "--grid=shared", "--seeds=1", "--epochs=1", "--jobs=1", "--nojit_compile",
                  "--dropout=0.2", "--mc_samples=3", "--l2=1e-4", "--regression_loss=huber",
                  "--trunk_units=16", "--head_units=8"],
                 capture_output=True, text=True, check=True)
  cell = json.loads((out / "cells" / "shared__seed0.json").read_text())
  assert not cell.get("failed"), cell.get("error")
  settings = cell["settings"]
  assert settings["model.dropout"] == 0.2 and settings["uncertainty.mc_samples"] == 3
  assert settings["loss.regression"] == "huber" and settings["model.trunk_units"] == [16]
  assert "coverage_95" in cell["test"]["hardness"]


def test_a_cell_worker_caps_its_native_thread_pools():
  """Boosting fits in two workers with pools of every core took 37 times as long."""
  # The worker caps its pools before it has loaded scikit-learn's boosting, as a cell does.
  code = ("from kmtl import sweep\n"
          "sweep.limit_native_threads(1)\n"
          "import threadpoolctl, sklearn.ensemble\n"
          "print(sorted({p['num_threads'] for p in threadpoolctl.threadpool_info()}))\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
  assert out.stdout.strip() == "[1]"


def test_the_report_sets_per_task_selection_beside_the_joint_one():
  from kmtl import study_report  # pylint: disable=g-import-not-at-top
  tasks = [schema.TaskSpec("hardness")]
  cells = {}
  for s, (stl, own, joint) in enumerate([(0.70, 0.69, 0.60), (0.60, 0.61, 0.52),
                                         (0.65, 0.64, 0.55)]):
    cells[("independent", s)] = {"test": {"hardness": {"r2": stl}}}
    cells[("shared", s)] = {"test": {"hardness": {"r2": own}},
                            "test_joint": {"hardness": {"r2": joint}}}
  kinds, headline = {"regression": ["r2"]}, {"hardness": "r2"}
  rows = verdicts.summarize(cells, tasks, kinds, headline, FIVE_FOLDS)
  lines = study_report.selection_lines(cells, tasks, kinds, headline, FIVE_FOLDS, rows)
  shared = [line for line in lines if line.startswith("| shared | hardness | r2 |")]
  # Per task: -0.01, +0.01, -0.01 (mean -0.0033); joint: -0.10, -0.08, -0.10 (mean -0.0933).
  assert len(shared) == 1 and "| -0.0033 +- " in shared[0] and "| -0.0933 +- " in shared[0]
  assert study_report.selection_lines({k: {"test": c["test"]} for k, c in cells.items()},
                                      tasks, kinds, headline, FIVE_FOLDS, rows) == []


def test_a_report_says_which_command_and_code_made_it():
  from kmtl import provenance  # pylint: disable=g-import-not-at-top
  import kmtl  # pylint: disable=g-import-not-at-top
  assert provenance.command("kmtl.study", ["--tasks=a b", "--seeds=5"]) == \
      "python -m kmtl.study '--tasks=a b' --seeds=5"
  assert provenance.code_version().startswith(f"kmtl {kmtl.__version__}")
  assert provenance.line("kmtl.study", ["--seeds=5"]).startswith(
      "Made by `python -m kmtl.study --seeds=5` (kmtl ")


def test_the_report_says_how_a_trial_was_scored():
  from kmtl import study_report  # pylint: disable=g-import-not-at-top
  assert study_report.objective({"tasks": ["hardness"], "folds": 3}) == (
      "a trial scored by the mean validation loss over hardness, averaged over 3 folds of "
      "those rows grouped by composition")
  assert study_report.objective({"budget": 2}).endswith("over all tasks, on the validation rows")
