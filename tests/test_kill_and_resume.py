"""A training process killed with SIGKILL right after a checkpoint resumes to the run it would
have been: the same history, metrics and weights, and nothing stray left in its workdir."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import tensorflow as tf

import kmtl

from tests import helpers

# Runs kmtl.run as `python -m kmtl.run` does, but SIGKILLs itself once the checkpoint of
# epoch KILL_AFTER is on disk: the hardest place for a kill to land.
KILLED_RUN = """
import os, signal, sys
from absl import app
from kmtl import quiet
quiet.import_tensorflow()
from kmtl import experiment, run
KILL_AFTER = int(sys.argv[1])
make_saver = experiment.checkpoint_saver
def killing_saver(*args, **kwargs):
  save = make_saver(*args, **kwargs)
  def save_then_die(epoch):
    save(epoch)
    if epoch == KILL_AFTER:
      os.kill(os.getpid(), signal.SIGKILL)
  return save_then_die
experiment.checkpoint_saver = killing_saver
sys.argv = ["kmtl.run"] + sys.argv[2:]
app.run(run.main)
"""
# An absl log line names its source file; kmtl's own lines come from kmtl's modules.
LOG_SOURCE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ ([^:\s]+):\d+\]")
KMTL_MODULES = {name for _, _, files in os.walk(os.path.dirname(kmtl.__file__))
                for name in files if name.endswith(".py")}


def _foreign_lines(stderr):
  """Lines of stderr that TensorFlow, XLA or CUDA wrote, not kmtl."""
  return [line for line in stderr.splitlines()
          if re.search(r"cuInit|cuda|InitializeLog", line, re.IGNORECASE)
          or (LOG_SOURCE.match(line) and LOG_SOURCE.match(line)[1] not in KMTL_MODULES)]


def _flags(data, workdir):
  return [f"--data={data}", f"--workdir={workdir}", "--epochs=5", "--batch_size=32",
          "--arch=structured", "--surgery=pcgrad", "--nojit_compile", "--lr=0.003"]


def _history(workdir):
  with open(os.path.join(workdir, "history.jsonl"), encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
  for record in records:
    record.pop("seconds", None)
  return records


def _variables(workdir):
  path = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_sigkill_after_a_checkpoint_resumes_to_the_uninterrupted_run(tmp_path):
  data = tmp_path / "tiny.csv"
  helpers.tiny_frame(per_task=60).to_csv(data, index=False)
  straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
  straight = subprocess.Popen([sys.executable, "-m", "kmtl.run", *_flags(data, straight_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  killed = subprocess.run([sys.executable, "-c", KILLED_RUN, "2", *_flags(data, killed_dir)],
                          capture_output=True, text=True, check=False)
  out, err = straight.communicate()
  assert straight.returncode == 0, err
  assert killed.returncode == -signal.SIGKILL, killed.stderr
  assert [r["epoch"] for r in _history(killed_dir)] == [1, 2]
  assert not (killed_dir / "metrics.json").exists()

  resumed = subprocess.run([sys.executable, "-m", "kmtl.run", *_flags(data, killed_dir),
                            "--resume"], capture_output=True, text=True, check=False)
  assert resumed.returncode == 0, resumed.stderr
  assert _history(killed_dir) == _history(straight_dir)
  metrics = [json.loads((d / "metrics.json").read_text()) for d in (straight_dir, killed_dir)]
  assert metrics[0]["test"] == metrics[1]["test"] and metrics[1]["epochs_run"] == 5
  # Gradient statistics over every epoch, not only those after the resume.
  assert metrics[0]["grad"] == metrics[1]["grad"] and metrics[1]["grad"]["cosine"]
  weights = [_variables(d) for d in (straight_dir, killed_dir)]
  assert weights[0].keys() == weights[1].keys()
  for name, value in weights[0].items():
    np.testing.assert_array_equal(weights[1][name], value, err_msg=name)
  stray = [n for n in os.listdir(killed_dir) + os.listdir(killed_dir / "checkpoints")
           if n.startswith(".") or "partial" in n or n.endswith(".tmp")]
  assert not stray
  # Quiet start-up: TensorFlow's and CUDA's start-up lines never reach the user.
  assert "epoch 1/5" in err and "resumed from" in resumed.stderr
  assert not _foreign_lines(err) and not _foreign_lines(resumed.stderr)
  assert out.splitlines()[0].startswith("test metrics (structured, surgery=pcgrad")
