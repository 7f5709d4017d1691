"""Study cells on a local Dask cluster of two workers: the same records as the local pool,
and a cell whose worker is killed is run again, never half-recorded."""

import json
import os
import signal
import threading
import time

from dask import distributed
import pytest

from kmtl import config as config_lib
from kmtl import dask_executor
from kmtl import sweep
from tests import helpers


@pytest.fixture(scope="module")
def cluster():
  with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                dashboard_address=None) as local:
    with distributed.Client(local) as client:
      yield client


def _cells(tmp_path, directory):
  frame = helpers.tiny_frame(per_task=20)
  path = tmp_path / "tiny.csv"
  if not path.exists():
    frame.to_csv(path, index=False)
  cells = []
  for name, surgery, seed in (("shared", "none", 0), ("shared:pcgrad", "pcgrad", 1)):
    cfg = config_lib.RunConfig(
        data=config_lib.DataConfig(path=str(path)), seed=seed,
        train=config_lib.TrainConfig(surgery=surgery, epochs=2, summaries=False,
                                     grad_stats=False, jit_compile=False))
    cells.append(sweep.Cell(name, seed, cfg, {"k": 1},
                            sweep.cell_path(str(tmp_path / directory), name, seed)))
  os.makedirs(tmp_path / directory, exist_ok=True)
  return cells


def _records(cells):
  return [json.loads(open(c.path, encoding="utf-8").read()) for c in cells]


def test_dask_cells_equal_the_local_pool(cluster, tmp_path):
  local, remote = _cells(tmp_path, "local"), _cells(tmp_path, "dask")
  sweep.run(local, 1, lambda _: None)  # one worker: its second cell follows the first
  logged = []
  dask_executor.run(remote, None, logged.append, client=cluster)
  for a, b in zip(_records(local), _records(remote)):
    assert not b.get("failed") and b["settings"] == {"k": 1}
    assert (a["config"], a["seed"], a["test"]) == (b["config"], b["seed"], b["test"])
  assert len(logged) == 2


def test_a_lost_workers_cell_is_run_again(cluster, tmp_path):
  cells = _cells(tmp_path, "lost")
  runner = threading.Thread(target=dask_executor.run,
                            args=(cells, None, lambda _: None), kwargs={"client": cluster})
  runner.start()
  deadline = time.time() + 60
  while time.time() < deadline and sum(map(len, cluster.processing().values())) < 2:
    time.sleep(0.2)
  victim = next(w for w, tasks in cluster.processing().items() if tasks)
  os.kill(cluster.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
  runner.join(timeout=240)
  assert not runner.is_alive()
  records = _records(cells)
  assert all(not r.get("failed") and r["epochs_run"] == 2 for r in records)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads cell processes from /proc")
def test_a_cancelled_cell_ends_its_training_process(cluster, tmp_path):
  cell = _cells(tmp_path, "cancelled")[0]
  cell = sweep.Cell(cell.name, cell.seed, config_lib.RunConfig(**{
      **cell.cfg.__dict__, "train": config_lib.TrainConfig(
          epochs=100_000, patience=100_000, summaries=False, grad_stats=False,
          jit_compile=False)}),
                    cell.settings, cell.path)
  future = cluster.submit(dask_executor.cell_record, cell, 1, pure=False)
  pids = cluster.run(os.getpid)
  deadline, running = time.time() + 60, []
  while time.time() < deadline and not running:
    time.sleep(0.2)
    running = [p for pid in pids.values() for p in helpers.child_processes(pid, "run_cell")]
  assert running, "the cell's process never started"
  future.cancel()
  deadline = time.time() + 20
  while time.time() < deadline and [p for pid in pids.values() for p in helpers.child_processes(pid, "run_cell")]:
    time.sleep(0.2)
  assert not [p for pid in pids.values() for p in helpers.child_processes(pid, "run_cell")]
