"""Runs many short `python -m MODULE ARGS` commands, each in a process of its own forked from
this one after the libraries every kmtl command loads first (NumPy, pandas, pyarrow, absl) are
imported: a command that fails on its input then costs its own work, not Python's and pandas'
start-up again (about 0.6 s a command). Each child has its own argv, stdout, stderr and exit
status, as `python -m` gives it.

Reads a JSON list of {"module", "args", "stdout", "stderr"} on stdin; runs up to `argv[1]`
at once; prints a JSON list of exit statuses (negative: killed by that signal).
"""

import atexit
import json
import os
import runpy
import sys
import traceback

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS threads across a fork

# pylint: disable=g-import-not-at-top,unused-import
import absl.app
import absl.flags
import absl.logging
import numpy
import pandas
import pyarrow.parquet
# pylint: enable=g-import-not-at-top,unused-import


def _exit_status(error):
  """What the interpreter makes of a SystemExit: its code, or 1 after printing its message."""
  if error.code is None:
    return 0
  if isinstance(error.code, int):
    return error.code
  print(error.code, file=sys.stderr)
  return 1


def _child(job):
  for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(target, fd)
    os.close(target)
  sys.argv = [job["module"], *job["args"]]
  status = 0
  try:
    runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
  except SystemExit as e:
    status = _exit_status(e)
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    status = 1
  atexit._run_exitfuncs()  # pylint: disable=protected-access  (what an interpreter's exit runs)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


def main():
  jobs = json.load(sys.stdin)
  at_once = int(sys.argv[1])
  statuses, running, pending = [None] * len(jobs), {}, list(enumerate(jobs))
  while pending or running:
    while pending and len(running) < at_once:
      index, job = pending.pop(0)
      sys.stdout.flush()
      sys.stderr.flush()
      pid = os.fork()
      if pid == 0:
        _child(job)
      running[pid] = index
    pid, status = os.wait()
    statuses[running.pop(pid)] = os.waitstatus_to_exitcode(status)
  print(json.dumps(statuses))


if __name__ == "__main__":
  main()
