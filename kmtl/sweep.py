"""Running a study's cells in worker processes that each train several cells (each from fresh
Keras state and its own seeds, so that its numbers are those of a fresh process). Each cell is
written to its file as soon as it ends; a cell that fails is recorded as failed with its
one-line reason while the others run (a worker that dies keeps the last lines of its stderr in
its record). Workers die with their study, even a study killed with SIGKILL.

A cell file holds the cell's result (or `failed` and `error`), and `settings`: the flattened
run configuration it ran with and the fingerprint of the data, so that a resumed study never
mixes cells of different settings.
"""

import dataclasses
import json
import multiprocessing
import os
import sys
import threading
import time
from multiprocessing import connection

from kmtl import config as config_lib
from kmtl import run_files
from kmtl import verdicts


def settings(cfg, fingerprint):
  """{setting: value} that a cell's result depends on, besides its configuration and seed."""
  flat = config_lib.flatten(cfg)
  for key in ("seed", "workdir", "resume", "train.arch", "train.surgery", "imbalance.methods"):
    flat.pop(key, None)
  flat["data.fingerprint"] = fingerprint
  return flat


@dataclasses.dataclass(frozen=True)
class Cell:
  """One configuration with one seed: its name, run config, settings and result file."""
  name: str
  seed: int
  cfg: object
  settings: dict
  path: str
  tuning: object = None  # a tuning.Plan when each cell tunes first


def tuning_dir(cell):
  """Where a tuned cell keeps its search (continued if the cell is run again)."""
  return cell.path[:-len(".json")] + ".tuning"


def cell_path(cells_dir, name, seed):
  return os.path.join(cells_dir, f"{name.replace(':', '__')}__seed{seed}.json")


def write_cell(cell, record):
  run_files.write_json(cell.path, {**record, "config": cell.name, "seed": cell.seed,
                                   "settings": cell.settings})


def failure(error):
  """The one-line reason of a failed cell."""
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]


def gradient_boosting_run(cfg):
  """The study's gradient-boosting reference row: gradient boosting on `cfg`'s data and split, as a result dict like a trained run's."""
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  from kmtl import gbm  # pylint: disable=g-import-not-at-top
  from kmtl.data import io  # pylint: disable=g-import-not-at-top
  from kmtl.data import splits  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  experiment.set_seeds(cfg.seed)
  data = io.load_from_config(cfg.data)
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                            cfg.data.group_split, cfg.data.cv)
  return {"arch": "gbm", "surgery": "none", "seed": cfg.seed, "imbalance": [],
          "test": gbm.gradient_boosting(prepared, data.tasks, cfg.seed),
          "val": gbm.gradient_boosting(prepared, data.tasks, cfg.seed, split="val"),
          "epochs_run": 0, "seconds": time.perf_counter() - start}


def die_with(parent):
  """Ends this worker process as soon as `parent` (the study) is gone, however it ended (a
  kill -9 included, which no cleanup in the study can catch): a thread checks once a second
  whether this process has been handed to another parent."""
  def watch():
    while os.getppid() == parent:
      time.sleep(1.0)
    os._exit(1)  # pylint: disable=protected-access
  threading.Thread(target=watch, daemon=True, name="kmtl-parent-watch").start()


def last_lines(text, lines=5):
  """The last lines of a dead worker's stderr, on one line."""
  tail = [line.strip() for line in (text or "").strip().splitlines()[-lines:]]
  return " | ".join(line for line in tail if line)[-1000:]


def stderr_tail(path):
  """`last_lines` of a worker's stderr file ("" when there is none)."""
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return last_lines(f.read())
  except OSError:
    return ""


def limit_native_threads(threads):
  """Caps the OpenMP and BLAS pools of this worker process (scikit-learn's gradient boosting
  among them) at `threads`: workers sharing the cores with pools of every core each wait on
  one another (two boosting fits at once took 37 times as long on 2 cores)."""
  for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = str(threads)  # for libraries loaded later
  # Load scikit-learn's OpenMP runtime now, so that the cap below reaches it too.
  from sklearn import ensemble  # pylint: disable=g-import-not-at-top,unused-import
  import threadpoolctl  # pylint: disable=g-import-not-at-top  (a scikit-learn dependency)
  threadpoolctl.threadpool_limits(limits=threads)


# A worker process runs this many cells, then a fresh one takes over: TensorFlow keeps every
# program it compiled (about 40 MB a trial under XLA), so a worker that stayed for a whole study
# would grow without bound, while a fresh process per cell pays TensorFlow's import (5.7 s under
# 2.20) every time.
CELLS_PER_WORKER = 10


def prepare_worker(threads):
  """Quiet logging, native thread caps and TensorFlow's threads, once per worker process (a
  study's cell worker or a tuning worker)."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  from kmtl import quiet  # pylint: disable=g-import-not-at-top
  # The study checked and loaded the data once, with its warnings; a cell's outcome is its
  # file, so workers print errors only.
  logging.set_verbosity(logging.ERROR)
  limit_native_threads(threads)
  tf = quiet.import_tensorflow(threads)
  tf.get_logger().setLevel("ERROR")


def _stderr_to(path):
  """Points this process's stderr (file descriptor 2, so native libraries' lines too) at `path`."""
  sys.stderr.flush()
  with open(path, "w", encoding="utf-8") as f:
    os.dup2(f.fileno(), 2)


def _reset_peak_rss():
  """Starts a new peak resident-set measurement (Linux; elsewhere the process's peak stands)."""
  try:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
      f.write("5")
  except OSError:
    pass


def _peak_rss_mib():
  """Peak resident set since `_reset_peak_rss`, in MiB."""
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  import resource  # pylint: disable=g-import-not-at-top
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train_cell(cell):
  """Trains `cell` in this prepared worker, from fresh Keras state and the cell's own seeds, and
  writes its file (as failed, with the reason, if it raises)."""
  import keras  # pylint: disable=g-import-not-at-top
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  keras.backend.clear_session()
  _reset_peak_rss()
  start = time.perf_counter()
  try:
    if cell.name == verdicts.GBM and cell.tuning:
      from kmtl import tuning  # pylint: disable=g-import-not-at-top
      result = tuning.tuned_gbm_run(cell.cfg, cell.tuning, tuning_dir(cell))
    elif cell.name == verdicts.GBM:
      result = gradient_boosting_run(cell.cfg)
    elif cell.tuning:
      from kmtl import tuning  # pylint: disable=g-import-not-at-top
      result = tuning.tuned_run(cell.cfg, cell.tuning, tuning_dir(cell))
    elif cell.cfg.uncertainty.trains_ensemble:
      from kmtl import ensemble  # pylint: disable=g-import-not-at-top
      result = ensemble.train_and_evaluate(cell.cfg, log=lambda _: None)
    else:
      result = experiment.train_and_evaluate(cell.cfg)
  except Exception as e:  # pylint: disable=broad-except
    result = {"failed": True, "error": failure(e)}
  result.update(wall_seconds=time.perf_counter() - start, peak_rss_mib=_peak_rss_mib(),
                worker_pid=os.getpid())
  write_cell(cell, result)


def run_cell(cell, threads, parent=None, stderr_path=None):
  """One cell in this fresh process (a Dask worker's child): train it and write its file. The
  process dies with `parent`; its stderr goes to `stderr_path`."""
  if parent is not None:
    die_with(parent)
  if stderr_path is not None:
    _stderr_to(stderr_path)
  prepare_worker(threads)
  train_cell(cell)


def serve_cells(cells, threads, parent):
  """Worker process body: trains each cell received on the `cells` connection, its stderr in
  the cell's `.stderr` file, and answers with the cell's path; ends on None or with `parent`."""
  die_with(parent)
  prepared = False
  while True:
    cell = cells.recv()
    if cell is None:
      return
    _stderr_to(cell.path + ".stderr")
    if not prepared:  # here, so that a worker that cannot start leaves its reason with a cell
      prepare_worker(threads)
      prepared = True
    train_cell(cell)
    cells.send(cell.path)


@dataclasses.dataclass
class _Worker:
  process: object
  connection: object
  cell: object = None
  served: int = 0


def run(cells, num_workers, log, threads=1):
  """Runs `cells` in up to `num_workers` worker processes of `threads` intra-op threads each,
  `CELLS_PER_WORKER` cells per process. A process that dies without writing its cell (killed,
  out of memory) has the cell recorded as failed; a fresh process takes the cells after it."""
  context = multiprocessing.get_context("spawn")
  pending, workers = list(cells), []
  start, done = time.perf_counter(), 0

  def start_worker():
    ours, theirs = context.Pipe()
    process = context.Process(target=serve_cells, daemon=True,
                              args=(theirs, threads, os.getpid()))
    process.start()
    theirs.close()
    workers.append(_Worker(process, ours))

  def retire(worker):
    workers.remove(worker)
    try:
      worker.connection.send(None)
    except OSError:
      pass
    worker.connection.close()
    worker.process.join()

  try:
    while pending or any(w.cell is not None for w in workers):
      # A worker that served its cells hands over; a tuned cell counts as all of them, since
      # its trials may have run in its worker (tuning.search).
      for worker in [w for w in workers if w.cell is None and w.served >= CELLS_PER_WORKER]:
        retire(worker)
      while pending and len(workers) < num_workers:
        start_worker()
      for worker in workers:
        if worker.cell is None and pending:
          worker.cell = pending.pop(0)
          try:
            worker.connection.send(worker.cell)
          except OSError:  # it died idle: the cell waits for a fresh worker
            pending.insert(0, worker.cell)
            worker.cell, worker.served = None, CELLS_PER_WORKER
      busy = [w for w in workers if w.cell is not None]
      ready = connection.wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
      for worker in busy:
        if worker.connection not in ready and worker.process.sentinel not in ready:
          continue
        cell, worker.cell = worker.cell, None
        worker.served += CELLS_PER_WORKER if cell.tuning else 1
        try:
          worker.connection.recv()
        except (EOFError, OSError):  # the process died with the cell
          workers.remove(worker)
          worker.connection.close()
          worker.process.join()
          if not os.path.exists(cell.path):
            tail = stderr_tail(cell.path + ".stderr")
            write_cell(cell, {"failed": True,
                              "error": f"worker process exited with code "
                                       f"{worker.process.exitcode}"
                                       + (f"; its last output: {tail}" if tail else "")})
        _forward_stderr(cell.path + ".stderr")
        done += 1
        log_cell(log, cell, done, len(cells), time.perf_counter() - start)
  finally:
    for worker in list(workers):
      if worker.cell is None:
        retire(worker)
      else:  # interrupted while it trains: it dies with this process
        worker.process.kill()
        worker.process.join()


def _forward_stderr(path):
  """Shows what a finished worker wrote to stderr (errors only) on the study's stderr, then
  removes the file."""
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      text = f.read()
    os.remove(path)
  except OSError:
    return
  if text.strip():
    sys.stderr.write(text)


def log_cell(log, cell, done, total, elapsed):
  with open(cell.path, encoding="utf-8") as f:
    result = json.load(f)
  eta = elapsed / done * (total - done)
  what = (f"FAILED ({result['error']})" if result.get("failed") else
          f"{result['epochs_run']} epochs in {result['wall_seconds']:.0f} s, peak RSS "
          f"{result['peak_rss_mib']:.0f} MiB")
  log(f"[{done}/{total}] {cell.name} seed {cell.seed}: {what}; elapsed {elapsed / 60:.1f} min, "
      f"ETA {eta / 60:.1f} min")
