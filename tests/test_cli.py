"""The `kmtl` command: its subcommands are the modules' absl programs."""

import logging
import os
import subprocess
import sys

import pytest

from kmtl import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _kmtl(*args):
  return subprocess.run([sys.executable, "-m", "kmtl.cli", *args], capture_output=True,
                        text=True, check=False)


def test_help_lists_every_subcommand_with_a_line():
  result = _kmtl("--help")
  assert result.returncode == 0
  for name in ("train", "study", "predict", "export", "datasets", "benchmark"):
    assert any(line.split()[:1] == [name] and len(line.split()) > 3
               for line in result.stdout.splitlines()), name


def test_no_subcommand_and_an_unknown_one_are_usage_errors(capsys):
  assert cli.main([]) == 2
  assert "subcommands:" in capsys.readouterr().out
  result = _kmtl("trian")
  assert result.returncode == 2
  assert result.stderr.strip() == ("kmtl: error: unknown subcommand 'trian'; expected one of "
                                   "['train', 'study', 'tune', 'advise', 'predict', 'export', "
                                   "'datasets', 'benchmark']")


def test_a_subcommand_runs_its_module_with_its_flags(tmp_path):
  """`kmtl train` parses kmtl.run's flags and fails on a bad one the way kmtl.run does."""
  result = _kmtl("train", "--task_weights=heavy", f"--workdir={tmp_path}/run")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      "kmtl.run: error: invalid flags: --task_weights: expected one of")
  flags_help = _kmtl("study", "--helpfull")
  module_help = subprocess.run([sys.executable, "-m", "kmtl.reproduce", "--helpfull"],
                               capture_output=True, text=True, check=False)
  assert flags_help.returncode == module_help.returncode  # absl's exit status for help
  assert "--retry_failed" in flags_help.stdout and "--surgery" not in flags_help.stdout


def test_a_subcommands_help_exits_0_and_lists_the_flags_it_takes():
  """`kmtl train --help` lists the data, task, uncertainty and generator flags beside its own,
  names every method, and exits 0 (absl's default is 1); `kmtl study --help` likewise."""
  train = _kmtl("train", "--help")
  assert train.returncode == 0, train.stderr
  for flag in ("--data:", "--tasks:", "--features:", "--elements:", "--ensemble:",
               "--[no]uncertainty_head:", "--synthetic_latent:", "--experts:", "--surgery:"):
    assert flag in train.stdout, flag
  listed = " ".join(train.stdout.split())
  assert "pcgrad, gradnorm, gradscale, uw, mgda, cagrad" in listed
  assert "Flags become one frozen" not in train.stdout
  study = _kmtl("study", "--help")
  assert study.returncode == 0 and "--data:" in study.stdout and "--grid:" in study.stdout


def test_a_bad_flag_value_is_one_line():
  result = _kmtl("train", "--arch=sharde")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      "kmtl.run: error: flag --arch=sharde: value should be one of <independent|"
      "independent_joint|shared|structured|mmoe|ple|cross_stitch|task_attention|groups>"]


def test_log_lines_are_plain_and_warnings_say_so():
  """Progress lines carry no absl prefix (date, thread id, file); warnings start with
  "warning:"."""
  from kmtl import entry  # pylint: disable=g-import-not-at-top
  formatter = entry._PlainFormatter()  # pylint: disable=protected-access
  def record(level, message):
    return logging.LogRecord("absl", level, "progress.py", 20, message, (), None)
  assert formatter.format(record(logging.INFO, "epoch 1/2 0.5s")) == "epoch 1/2 0.5s"
  assert formatter.format(record(logging.WARNING, "dropped 3 rows")) == "warning: dropped 3 rows"


def test_shipped_flagfiles_are_found_from_any_folder_nested_ones_too(tmp_path, monkeypatch):
  from kmtl import entry  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(tmp_path)
  expanded = entry.expand_flagfiles(["--flagfile=flags/architectures.cfg", "--seeds=2"])
  with open(os.path.join(entry.SHIPPED_FLAGFILES, "study.cfg"), encoding="utf-8") as f:
    nested = [line.strip() for line in f if line.strip() and not line.startswith("#")]
  assert expanded[:len(nested)] == nested  # study.cfg, which architectures.cfg names first
  assert any(a.startswith("--grid=independent,shared:pcgrad") for a in expanded)
  assert expanded[-1] == "--seeds=2"
  with pytest.raises(Exception, match="--flagfile=flags/nope.cfg: no such file"):
    entry.expand_flagfiles(["--flagfile", "flags/nope.cfg"])
  # A command run outside the checkout reads them: the bad --seeds comes after the file's.
  result = subprocess.run([sys.executable, "-m", "kmtl.study", "--flagfile=flags/study.cfg",
                           f"--out={tmp_path / 'out'}", "--seeds=0"], capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": ROOT})
  assert result.stderr.strip().splitlines()[-1] == ("kmtl.study: error: --seeds, --jobs and "
                                                    "--threads must be >= 1")
