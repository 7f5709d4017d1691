"""The negative-transfer study: statistics by hand, resume, and a tiny sweep end to end."""

import json
import math
import os
import subprocess
import sys

import pytest

from kmtl import study
from kmtl.data import schema
from tests import helpers

T_975_DF3 = 3.182446305284263  # scipy.stats.t.ppf(0.975, 3), the 95% quantile for 4 values


def test_mean_and_ci_by_hand():
  mean, half = study.mean_ci([0.90, 0.92, 0.94, 0.96])
  sd = math.sqrt(((0.03**2 + 0.01**2) * 2) / 3)
  assert mean == pytest.approx(0.93)
  assert half == pytest.approx(T_975_DF3 * sd / 2)
  assert math.isnan(study.mean_ci([0.5])[1])


def test_paired_comparison_by_hand():
  stl = [0.96, 0.95, 0.97, 0.96]
  mtl = [0.90, 0.91, 0.90, 0.89]
  # Differences -0.06 -0.04 -0.07 -0.07: mean -0.06, sd sqrt(0.0006 / 3).
  out = study.paired_comparison(mtl, stl, "r2")
  sd = math.sqrt((0.0**2 + 0.02**2 + 0.01**2 + 0.01**2) / 3)
  t = -0.06 / (sd / 2)
  assert out["diff"] == pytest.approx(-0.06)
  assert out["ci"] == pytest.approx(T_975_DF3 * sd / 2)
  from scipy import stats  # pylint: disable=g-import-not-at-top
  assert out["p"] == pytest.approx(2 * stats.t.sf(abs(t), 3))
  assert out["verdict"] == "negative transfer"
  # Lower is better for MAE: a drop is positive transfer.
  assert study.paired_comparison([1.0, 2.0, 1.5], [2.0, 3.1, 2.4], "mae")["verdict"] == \
      "positive transfer"
  noisy = study.paired_comparison([0.5, 0.7, 0.4], [0.6, 0.5, 0.5], "recall")
  assert noisy["verdict"] == "no significant difference"
  same = study.paired_comparison([0.5, 0.6], [0.4, 0.5], "recall")
  assert math.isnan(same["p"]) and same["verdict"] == "no significant difference"


def test_configuration_names():
  c = study.Configuration.parse("shared:gradnorm:lds+fds")
  assert (c.arch, c.surgery, c.imbalance) == ("shared", "gradnorm", ("lds", "fds"))
  assert c.name == "shared:gradnorm:lds+fds"
  assert study.Configuration.parse("independent").name == "independent"
  with pytest.raises(ValueError, match="arch"):
    study.Configuration.parse("a:b:c:d")


def test_summarize_pairs_by_seed():
  tasks = [schema.TaskSpec("hardness"), schema.TaskSpec("amorphous", schema.BINARY)]

  def cell(r2, recall):
    return {"test": {"hardness": {"r2": r2}, "amorphous": {"recall": recall}}}
  cells = {("independent", 0): cell(0.7, 0.8), ("independent", 1): cell(0.6, 0.7),
           ("independent", 2): cell(0.65, 0.75),
           ("shared", 0): cell(0.6, 0.9), ("shared", 1): cell(0.52, 0.85),
           ("shared", 2): cell(0.56, 0.8)}
  rows = study.summarize(cells, tasks, {"regression": ["r2"], "binary": ["recall"]})
  by = {(r["config"], r["task"]): r for r in rows}
  assert "diff" not in by[("independent", "hardness")]
  assert by[("shared", "hardness")]["diff"] == pytest.approx(-0.09)
  assert by[("shared", "amorphous")]["diff"] == pytest.approx((0.1 + 0.15 + 0.05) / 3)
  table = study.markdown_table(rows, {"hardness": "r2", "amorphous": "recall"})
  assert "| shared | hardness | r2 | 3 | 0.5600" in table


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
  assert "| gbm | amorphous | recall | 2 |" in table

  # A resumed sweep runs only the missing cell and reports the same numbers.
  before = (out / "cells" / "independent__seed0.json").read_text()
  os.remove(out / "cells" / "shared__pcgrad__seed1.json")
  second = _reproduce(out, tiny_csv)
  assert "5 already done, 1 to run" in second.stderr
  assert (out / "cells" / "independent__seed0.json").read_text() == before
  assert (out / "study.md").read_text() == table


def test_bad_grid_is_one_line(tiny_csv, tmp_path):
  result = subprocess.run([sys.executable, "-m", "kmtl.reproduce", f"--out={tmp_path}",
                           f"--data={tiny_csv}", "--grid=shared:pcgard"],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith("kmtl.reproduce: error: ")
