"""The study's cells on a Dask distributed cluster (`kmtl study --executor=dask
--address=HOST:PORT`; pip install 'kmtl[dask]').

Each cell is one Dask task. On its worker it trains in a fresh process, as the local pool's
cells do (TensorFlow's threads are set before it starts and nothing carries over between
cells; the process ends with its Dask worker, and with its task when the task is cancelled),
and returns the cell's record; the study writes the record to `OUT/cells/` when the
task completes, so a cell is written whole or not at all. Dask reruns the task of a worker
that dies (up to its `allowed-failures`); a cell that still fails is recorded as failed with
its reason, like a local one. Workers need the study's data at the same path (or a shipped set)
and kmtl installed; only records travel back.
"""

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time

from kmtl import sweep


_CHILD = ("import pickle, sys\n"
          "from kmtl import sweep\n"
          "with open(sys.argv[1], 'rb') as f:\n"
          "  sweep.run_cell(pickle.load(f), int(sys.argv[2]), int(sys.argv[3]))\n")


def cell_record(cell, threads):
  """Worker side: the cell trained in a fresh Python process (a subprocess, which Dask's
  daemonic workers may start), its record as a dict without the fields `sweep` adds when
  writing."""
  with tempfile.TemporaryDirectory(prefix="kmtl-cell-") as scratch:
    local = dataclasses.replace(cell, path=os.path.join(scratch, "cell.json"))
    with open(os.path.join(scratch, "cell.pickle"), "wb") as f:
      pickle.dump(local, f)
    child = subprocess.Popen([sys.executable, "-c", _CHILD,
                              os.path.join(scratch, "cell.pickle"), str(threads),
                              str(os.getpid())], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    wanted = _still_wanted()
    while True:
      try:
        _, stderr = child.communicate(timeout=1.0)
        break
      except subprocess.TimeoutExpired:
        if not wanted():  # the study cancelled this cell: its training stops with it
          child.kill()
          child.communicate()
          return {"failed": True, "error": "cancelled"}
    if not os.path.exists(local.path):
      tail = sweep.last_lines(stderr)
      return {"failed": True, "error": f"worker process exited with code {child.returncode}"
                                       + (f"; its last output: {tail}" if tail else "")}
    with open(local.path, encoding="utf-8") as f:
      record = json.load(f)
  for key in ("config", "seed", "settings"):
    record.pop(key, None)
  return record


def _still_wanted():
  """fn() -> False once the Dask task running this code has been cancelled (always True
  outside a Dask worker)."""
  from dask import distributed  # pylint: disable=g-import-not-at-top
  try:
    worker = distributed.get_worker()
    key = worker.get_current_task()
  except ValueError:  # not in a worker
    return lambda: True

  def wanted():
    task = worker.state.tasks.get(key)
    return task is not None and task.state in ("executing", "long-running")
  return wanted


def connect(address, timeout="10s"):
  """A client of the Dask scheduler at `address`; a one-line error when none answers."""
  from dask import distributed  # pylint: disable=g-import-not-at-top  (an optional extra)
  try:
    return distributed.Client(address, timeout=timeout)
  except (OSError, TimeoutError) as e:
    raise ValueError(f"--address={address}: no Dask scheduler answers there within {timeout} "
                     f"({type(e).__name__})") from None


def run(cells, address, log, threads=1, client=None):
  """Runs `cells` as tasks of the Dask scheduler at `address` (or on `client`), writing each
  cell's file as its task completes."""
  from dask import distributed  # pylint: disable=g-import-not-at-top  (an optional extra)
  own = client is None
  client = client or connect(address)
  try:
    futures = {client.submit(cell_record, cell, threads, pure=False,
                             key=f"kmtl-{os.path.basename(cell.path)}-{time.time_ns()}"): cell
               for cell in cells}
    start, done = time.perf_counter(), 0
    for future in distributed.as_completed(futures):
      cell = futures[future]
      try:
        record = future.result()
      except Exception as e:  # pylint: disable=broad-except  (a lost or failing task)
        record = {"failed": True, "error": sweep.failure(e)}
      sweep.write_cell(cell, record)
      done += 1
      sweep.log_cell(log, cell, done, len(cells), time.perf_counter() - start)
  finally:
    if own:
      client.close()
