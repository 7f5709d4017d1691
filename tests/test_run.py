"""The entry point: flag errors are one line and a non-zero exit; a quick run leaves its
artifacts."""

import json

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
    ({"surgery": "gradnorm", "surgery_args": "alpha=-1"}, "Invalid value for `alpha`"),
    ({"surgery": "uw", "surgery_args": "alpha=1"}, "uw takes ['learning_rate'], not ['alpha']"),
])
def test_method_hyper_parameter_errors(tiny_csv, tmp_path, flag_values, expected):
  """Checked by building the method (which loads TensorFlow), so not in test_bad_inputs.py."""
  workdir = tmp_path / "run"
  assert expected in _exit_message(data=tiny_csv, workdir=str(workdir), **flag_values)
  assert not workdir.exists()


def test_unknown_arch_is_rejected_by_flag_parsing():
  from absl import flags  # pylint: disable=g-import-not-at-top
  with pytest.raises(flags.IllegalFlagValueError, match="value should be one of"):
    flags.FLAGS["arch"].parse("sharde")


def test_a_run_without_workdir_says_that_nothing_was_written(tiny_csv, capsys):
  with flagsaver.flagsaver(data=tiny_csv, epochs=1, batch_size=64, jit_compile=False,
                           grad_stats=False):
    run.main(["kmtl.run"])
  assert capsys.readouterr().out.strip().splitlines()[-1] == (
      "nothing was written: give --workdir=DIR to keep the model, checkpoints, history and "
      "metrics")


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
