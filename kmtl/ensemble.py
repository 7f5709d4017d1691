"""Deep ensembles: `--ensemble=M` trains M members on the run's split, member k with its own
initialisation and shuffling seed (kmtl/uncertainty_config.py), each a complete run in
`WORKDIR/members/<k>/` (checkpoints, history, model.keras), then scores the ensemble's
predictive distribution (kmtl/uncertainty.py) into `WORKDIR/metrics.json` and records the
variance scales in `WORKDIR/preprocessing.json`.

Members run one after the other in this process (`jobs=1`) or in `jobs` fresh worker
processes, as the study's cells do. A member whose run finished is never trained again; with
`resume`, a member cut short resumes from its checkpoint.
"""

import dataclasses
import os
import shutil
import tempfile
import time

import keras

from kmtl import calibration_plot
from kmtl import domain
from kmtl import experiment
from kmtl import gbm
from kmtl import models  # pylint: disable=unused-import  (registers the custom layers)
from kmtl import run_files
from kmtl import sweep
from kmtl import uncertainty
from kmtl.data import io
from kmtl.data import splits

MEMBERS = "members"


def member_dir(workdir, member):
  return os.path.join(workdir, MEMBERS, str(member))


def member_config(cfg, workdir, member):
  """The run config of ensemble member `member`: its own workdir, resumed where it has a
  checkpoint; the gradient-boosting baseline, if asked for, is fitted once for the ensemble."""
  path = member_dir(workdir, member)
  return dataclasses.replace(
      cfg, workdir=path, resume=os.path.isdir(os.path.join(path, "checkpoints")),
      uncertainty=dataclasses.replace(cfg.uncertainty, member=member), baseline_gbm=False)


def _finished(member_cfg):
  return all(os.path.exists(os.path.join(member_cfg.workdir, name))
             for name in (run_files.METRICS, "model.keras"))


def _check_workdir(cfg, member_cfgs, data):
  """A used workdir needs `resume`; a resumed one must have the same settings and data."""
  started = [m for m in member_cfgs if os.path.isdir(m.workdir)]
  if started and not cfg.resume:
    raise experiment.ExperimentError(
        f"--workdir={cfg.workdir} already holds a run; pass --resume to continue it or choose "
        "another --workdir")
  for member_cfg in started:
    experiment.check_resume_settings(member_cfg)
    experiment.check_resume_data(member_cfg, data)


def _train_members(todo, data, jobs, log):
  if jobs == 1:
    for member_cfg in todo:
      experiment.train_and_evaluate(member_cfg, data=data)
      log(f"ensemble member {member_cfg.uncertainty.member} trained")
    return
  cells = [sweep.Cell(f"member{m.uncertainty.member}", m.seed, m, {},
                      os.path.join(m.workdir, "cell.json")) for m in todo]
  for cell in cells:
    os.makedirs(cell.cfg.workdir, exist_ok=True)
    if os.path.exists(cell.path):
      os.remove(cell.path)
  sweep.run(cells, min(jobs, len(cells)), log, threads=max(1, (os.cpu_count() or 1) // jobs))
  failed = [c for c in cells if not _finished(c.cfg)]
  if failed:
    error = run_files.read(failed[0].cfg.workdir, "cell.json").get("error", "unknown")
    raise experiment.ExperimentError(f"ensemble member {failed[0].cfg.uncertainty.member} "
                                     f"failed: {error}")


def train_and_evaluate(cfg, data=None, jobs=1, log=print, variants=None):
  """Trains and scores the ensemble of `cfg`; returns the metrics dict also written to
  WORKDIR/metrics.json (a temporary workdir, removed at the end, when `cfg.workdir` is
  None). `variants`, when given, are the members' own configs (the best trials of a search:
  other layer sizes or learning rates), one per member, on `cfg`'s data and split."""
  start = time.perf_counter()
  data = data if data is not None else io.load_from_config(cfg.data)
  workdir = cfg.workdir or tempfile.mkdtemp(prefix="kmtl-ensemble-")
  variants = variants or [cfg] * cfg.uncertainty.ensemble
  if len(variants) != cfg.uncertainty.ensemble:
    raise ValueError(f"--ensemble={cfg.uncertainty.ensemble}: {len(variants)} member configs")
  try:
    member_cfgs = [member_config(v, workdir, k) for k, v in enumerate(variants)]
    _check_workdir(cfg, member_cfgs, data)
    _train_members([m for m in member_cfgs if not _finished(m)], data, jobs, log)
    result = _evaluated(cfg, data, member_cfgs)
    result["seconds"] = time.perf_counter() - start
    if cfg.workdir:
      run_files.write_config(workdir, cfg)
      run_files.write_data(workdir, data)
      run_files.write_metrics(workdir, result)
    return result
  finally:
    if not cfg.workdir:
      shutil.rmtree(workdir, ignore_errors=True)


def _evaluated(cfg, data, member_cfgs):
  """The ensemble's result dict: recalibrated test metrics of its predictive distribution,
  the uncalibrated ones, the variance scales and each member's own test metrics."""
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                            cfg.data.group_split, cfg.data.cv)
  members = [keras.models.load_model(os.path.join(m.workdir, "model.keras"))
             for m in member_cfgs]
  targets = run_files.preprocessing(prepared, data)["targets"]
  test, scales, raw, curves = uncertainty.evaluate(members, data.tasks, prepared, targets)
  if cfg.workdir:
    run_files.write_preprocessing(cfg.workdir, prepared, data, scales)
    domain.write(cfg.workdir, domain.fit(data, prepared))
    calibration_plot.write(cfg.workdir, curves)
  member_results = [run_files.read(m.workdir, run_files.METRICS) for m in member_cfgs]
  gbm_test = ({"gbm_test": gbm.gradient_boosting(prepared, data.tasks, cfg.seed)}
              if cfg.baseline_gbm else {})
  return {
      **gbm_test, "arch": cfg.train.arch, "surgery": cfg.train.surgery, "seed": cfg.seed,
      "imbalance": list(cfg.imbalance.methods), "ensemble": len(member_cfgs),
      "test": test, "uncalibrated_test": raw, "variance_scale": scales,
      "calibration_curves": curves,
      "val": _mean_member_metrics(member_results, "val"),
      "members": [r["test"] for r in member_results],
      "epochs_run": max(r["epochs_run"] for r in member_results),
      "member_epochs": [r["epochs_run"] for r in member_results],
      "num_params": sum(r["num_params"] for r in member_results),
  }


def _mean_member_metrics(member_results, split):
  """{task: {metric: the members' mean}} of one split's metrics."""
  out = {}
  for task in member_results[0][split]:
    names = member_results[0][split][task]
    out[task] = {m: sum(r[split][task][m] for r in member_results) / len(member_results)
                 for m in names}
  return out
