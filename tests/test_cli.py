"""The `kmtl` command: its subcommands are the modules' absl programs."""

import subprocess
import sys

from kmtl import cli


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
                                   "['train', 'study', 'advise', 'predict', 'export', "
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
