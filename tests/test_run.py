"""The entry point: flag errors are one line and a non-zero exit; a quick run leaves its
artifacts."""

import json
import os

from absl.testing import flagsaver
import pytest

from kmtl import run
from tests import helpers


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.csv"
  helpers.tiny_frame(per_task=60).to_csv(path, index=False)
  return str(path)


def _exit_message(**flag_values):
  with flagsaver.flagsaver(**flag_values):
    with pytest.raises(SystemExit) as exit_info:
      run.main(["kmtl.run"])
  message = str(exit_info.value.code)
  assert "\n" not in message and message.startswith("kmtl.run: error: ")
  return message


@pytest.mark.parametrize("flag_values, expected", [
    ({"surgery": "pcgard"}, "Invalid value for `--surgery`. Expected one of ['none', 'pcgrad'"),
    ({"lr": -0.1}, "Invalid value for `learning_rate`. Expected > 0. Received: -0.1"),
    ({"epochs": 0}, "must be >= 1"),
    ({"data": "/nonexistent/alloys.csv"}, "--data: no such file: /nonexistent/alloys.csv"),
    ({"tasks": "resistivity,yield_strength:regression"},
     "missing task target column(s) 'yield_strength'"),
    ({"task_weights": "1,2"}, "--task_weights: expected 3 numbers"),
    ({"task_weights": "heavy"}, "--task_weights: expected one of"),
    ({"arch": "independent", "surgery": "gradnorm"}, "needs shared parameters"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "must leave rows to train on"),
    ({"surgery": "gradnorm", "surgery_args": "alpha=-1"}, "Invalid value for `alpha`"),
    ({"surgery": "uw", "surgery_args": "alpha=1"}, "uw takes ['learning_rate'], not ['alpha']"),
    ({"surgery_args": "alpha"}, "--surgery_args: expected name=value pairs"),
    ({"imbalance": ["lds"], "imbalance_tasks": ["amorphous"]}, "task 'amorphous' is binary"),
    ({"elements": "Fe,NI"}, "--elements: unknown element symbol 'NI'"),
    ({"workdir": "FILE"}, "--workdir: FILE is a file, not a folder"),
    ({"workdir": "FILE/run"}, "--workdir: cannot create FILE/run: FILE is a file"),
    ({"workdir": "DIR", "export_dir": "FILE"}, "--export_dir: FILE is a file, not a folder"),
])
def test_flag_errors(tiny_csv, tmp_path, flag_values, expected):
  """FILE stands for an existing file, DIR for a new folder; neither changes."""
  (tmp_path / "file.txt").write_text("x")
  places = {"FILE": str(tmp_path / "file.txt"), "DIR": str(tmp_path / "runs")}
  def placed(text):
    for key, value in places.items():
      text = text.replace(key, value) if isinstance(text, str) else text
    return text
  flag_values = {k: placed(v) for k, v in flag_values.items()}
  flag_values.setdefault("data", tiny_csv)
  assert placed(expected) in _exit_message(**flag_values)
  assert sorted(os.listdir(tmp_path)) == ["file.txt"]


def test_unknown_arch_is_rejected_by_flag_parsing():
  from absl import flags  # pylint: disable=g-import-not-at-top
  with pytest.raises(flags.IllegalFlagValueError, match="value should be one of"):
    flags.FLAGS["arch"].parse("sharde")


def test_quick_run_writes_metrics(tiny_csv, tmp_path, capsys):
  workdir = tmp_path / "run"
  with flagsaver.flagsaver(data=tiny_csv, workdir=str(workdir), epochs=2, batch_size=32,
                           arch="structured", surgery="gradnorm"):
    run.main(["kmtl.run"])
  out = capsys.readouterr().out
  assert "test metrics (structured, surgery=gradnorm" in out
  assert "hardness" in out and "recall" in out
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert metrics["epochs_run"] == 2 and metrics["surgery"] == "gradnorm"
  with flagsaver.flagsaver(data=tiny_csv, workdir=str(workdir)):
    with pytest.raises(SystemExit, match="already holds a run"):
      run.main(["kmtl.run"])
