"""One experiment end to end: data, split, model, method, training, test metrics, artifacts.

`train_and_evaluate(cfg)` is what `python -m kmtl.run` calls and what tests call. Its workdir
receives `config.json`, `checkpoints/` (every epoch, for `--resume`), `history.jsonl` (one line
per epoch), `model.keras` (best weights), `preprocessing.json` (the scalers) and `metrics.json`.

Resume order: with `resume`, the latest checkpoint in `workdir/checkpoints` is restored and
training continues after its epoch (an error if there is none); without it, a workdir that
already holds checkpoints is an error, so a finished run is never silently overwritten.
"""

import contextlib
import os
import shutil
import tempfile
import time

from absl import logging
import keras
import tensorflow as tf

from kmtl import atomic
from kmtl import calibration_plot
from kmtl import config as config_lib
from kmtl import distribute
from kmtl import domain
from kmtl import gbm
from kmtl import gradients
from kmtl import models
from kmtl import predictive
from kmtl import run_files
from kmtl import single_task
from kmtl import summaries
from kmtl import task_selection
from kmtl import trainer as trainer_lib
from kmtl import uncertainty
from kmtl import uncertainty_config
from kmtl.data import io
from kmtl.data import selection
from kmtl.data import splits
from kmtl.data import streaming
from kmtl.imbalance import parts
from kmtl.surgery import registry


STREAM_DIR = ".stream"  # a streamed table's files while its run trains


class ExperimentError(ValueError):
  """A run that cannot start as asked (resume without a checkpoint, a used workdir)."""


def set_seeds(seed):
  """Python, NumPy and TF seeds, and deterministic TF ops."""
  keras.utils.set_random_seed(seed)
  tf.config.experimental.enable_op_determinism()


def _save_model(model, path):
  tmp = os.path.join(os.path.dirname(path), ".partial." + os.path.basename(path))
  model.save(tmp)
  os.replace(tmp, path)


def latest_checkpoint(cfg):
  """The checkpoint to resume from (None for a new run), after checking that `resume` and the
  workdir agree and that a resumed run keeps its settings."""
  checkpoint_dir = os.path.join(cfg.workdir, "checkpoints") if cfg.workdir else None
  latest = tf.train.latest_checkpoint(checkpoint_dir) if checkpoint_dir else None
  if cfg.resume and latest is None:
    raise ExperimentError(f"--resume: no checkpoint in {checkpoint_dir}")
  if not cfg.resume and latest is not None:
    raise ExperimentError(f"--workdir={cfg.workdir} already holds a run; pass --resume to "
                          "continue it or choose another --workdir")
  if cfg.resume:
    check_resume_settings(cfg)
  return latest


def _clean_leftovers(workdir):
  """What a killed run left half-written in its workdir: temporary files and checkpoint
  parts."""
  for directory in (workdir, os.path.join(workdir, "checkpoints")):
    removed = atomic.remove_leftovers(directory)
    if removed:
      logging.info("removed %d leftover files of an interrupted run in %s", len(removed),
                   directory)


def check_resume_data(cfg, data):
  """Before anything is written: a resumed run must train on the data it started with (the
  same content, not only the same path)."""
  try:
    saved = run_files.read(cfg.workdir, run_files.DATA)
  except run_files.RunFileError:
    return  # a run from before data fingerprints were recorded
  if saved.get("fingerprint") != data.fingerprint():
    raise ExperimentError(f"--resume: {cfg.workdir} was started on other data (its "
                          f"{saved.get('rows')} rows differ from the {data.num_rows} rows of "
                          f"{cfg.data.path or 'the embedded default'}); resume with its data")


def checkpoint_saver(cfg, trainer, workdir, latest, data):
  """Writes config.json and data.json, restores `latest` if any, and returns save(epoch) for
  `fit`."""
  os.makedirs(workdir, exist_ok=True)
  run_files.write_config(workdir, cfg)
  run_files.write_data(workdir, data)
  checkpoint = trainer.checkpoint()
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, "checkpoints"),
                                       max_to_keep=2)
  if latest is not None:
    checkpoint.restore(latest).assert_existing_objects_matched()
    logging.info("resumed from %s (epoch %d)", latest, int(trainer.epoch.numpy()))
    epochs = trainer.epochs_done()
    run_files.keep_history(workdir, lambda r: r["epoch"] <= epochs[r.get("task")])
  if cfg.train.arch == "independent":
    # Per-task trainers each count epochs from 1: number their checkpoints in sequence.
    return lambda epoch: manager.save()
  return lambda epoch: manager.save(checkpoint_number=epoch)


def evaluated(cfg, trainer, tasks, prepared):
  """The result dict of a trained run: test and validation metrics and how it trained."""
  names = [t.name for t in tasks]
  _, test_metrics = trainer.evaluate(prepared.test, final=True)
  val_losses, val_metrics = trainer.evaluate(prepared.val, final=True)
  selection = {}
  if getattr(trainer, "task_selection", None) is not None:
    selection = {"test_joint": test_metrics, "val_joint": val_metrics,
                 "best_epoch_per_task": dict(zip(
                     names, trainer.task_selection.best_epoch.numpy().tolist()))}
    test_metrics = task_selection.selected_metrics(trainer, prepared.test, tasks)
    val_metrics = task_selection.selected_metrics(trainer, prepared.val, tasks)
  return {**selection,
      "arch": cfg.train.arch, "surgery": cfg.train.surgery, "seed": cfg.seed,
      "imbalance": list(cfg.imbalance.methods),
      "test": test_metrics, "val": val_metrics,
      "val_loss": dict(zip(names, val_losses.tolist())),
      "epochs_run": int(trainer.epoch.numpy()),
      "best_epoch": trainer.best_epochs(),
      "stopping": cfg.train.stopping,
      "training": trainer.task_report(),
      "task_weights": dict(zip(names, trainer.base_weights.numpy().tolist())),
      "num_params": int(trainer.model.count_params()),
      "num_rows": {name: int(prepared.split(name).num_rows) for name in splits.SPLIT_NAMES},
      "mixing": (trainer.net.mixing(trainer.mixing_features())
                 if trainer.net.mixing is not None else {}),
  }


def check_resume_settings(cfg):
  """Before anything is written: a resumed run must have the settings it was started with."""
  try:
    saved = run_files.read(cfg.workdir, run_files.CONFIG)
  except run_files.RunFileError as e:
    raise ExperimentError(f"--resume: {e}") from None
  saved_flat = {k: v for k, v in config_lib.flatten(saved).items() if k != "resume"}
  now_flat = {k: v for k, v in config_lib.flatten(cfg).items() if k != "resume"}
  differing = config_lib.differences(saved_flat, now_flat)
  if differing:
    shown = ", ".join(f"{k} (started with {saved_flat.get(k)!r}, now {now_flat.get(k)!r})"
                      for k in differing[:4])
    raise ExperimentError(f"--resume: {cfg.workdir} was started with other settings: {shown}"
                          f"{' ...' if len(differing) > 4 else ''}; resume with its flags")


def build_trainer(cfg, net, tasks, prepared, method, strategy=None):
  """The single-task baseline's per-task trainers for `independent`, else one Trainer."""
  if cfg.train.arch == "independent":
    return single_task.SingleTaskTrainers(cfg, net, tasks, prepared, strategy)
  seed = uncertainty_config.member_seed(cfg.seed, cfg.uncertainty.member)
  return trainer_lib.Trainer(cfg.train, net, tasks, prepared, method, seed=seed,
                             loss_config=cfg.loss, balanced_sampling=cfg.data.balanced_sampling,
                             strategy=strategy,
                             **parts.imbalance_parts(cfg.imbalance, tasks, prepared,
                                                     cfg.model.head_units[-1], seed))


def _epoch_recorder(workdir, writer, on_epoch_end):
  """fn(record): each epoch's record to TensorBoard, history.jsonl and the caller."""
  def record_epoch(record):
    if writer is not None:
      writer.write_epoch(record)
    if workdir:
      run_files.append_history(workdir, record)
    if on_epoch_end is not None:
      on_epoch_end(record)
  return record_epoch


def _single_model_uncertainty(cfg, net, data, prepared, result):
  """With a heteroscedastic head or MC dropout: the test metrics of the model's predictive
  distribution, recalibrated on validation, replace the point metrics in `result` (the
  uncalibrated ones are kept beside them); returns {task: variance scale}."""
  if not (cfg.uncertainty.heteroscedastic or cfg.uncertainty.mc_samples):
    return {}
  targets = run_files.preprocessing(prepared, data)["targets"]
  test, scales, raw, curves = uncertainty.evaluate([net.model], data.tasks, prepared, targets,
                                                   cfg.uncertainty.mc_samples)
  result.update(test=test, uncalibrated_test=raw, variance_scale=scales,
                calibration_curves=curves)
  return scales


def _write_artifacts(workdir, net, data, prepared, scales, result):
  """The finished run's files: the model, scalers, domain, calibration plots and metrics."""
  _save_model(net.model, os.path.join(workdir, "model.keras"))
  run_files.write_preprocessing(workdir, prepared, data, scales)
  if not isinstance(data, streaming.StreamedData):  # the domain needs every training row
    domain.write(workdir, domain.fit(data, prepared))
  if result.get("calibration_curves"):
    calibration_plot.write(workdir, result["calibration_curves"])
  run_files.write_metrics(workdir, result)


def train_and_evaluate(cfg, on_epoch_end=None, data=None):
  """Runs `cfg` (a `config.RunConfig`); returns the metrics dict also written to metrics.json.
  `data`, when given, is `cfg.data` already loaded and validated."""
  start = time.perf_counter()
  # First: MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
  strategy = distribute.make_strategy(cfg.train.strategy)
  method = registry.create(cfg.train.surgery, **dict(cfg.train.surgery_kwargs))
  latest = latest_checkpoint(cfg)

  set_seeds(uncertainty_config.member_seed(cfg.seed, cfg.uncertainty.member))
  with _scratch(cfg) as scratch:
    data, prepared = _prepared(cfg, data, latest, scratch)
    return _train_prepared(cfg, strategy, method, latest, data, prepared, on_epoch_end, start)


@contextlib.contextmanager
def _scratch(cfg):
  """A folder for a streamed table's files (kmtl/data/streaming.py), removed at the end; None
  for a table in memory."""
  if not streaming.streams(cfg.data):
    yield None
    return
  streaming.check_supported(cfg)
  created = cfg.workdir and not os.path.exists(cfg.workdir)
  if cfg.workdir:  # a killed run's files are prepared afresh: the same, as it is seeded
    directory = os.path.join(cfg.workdir, STREAM_DIR)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
  else:
    directory = tempfile.mkdtemp(prefix="kmtl-stream-")
  try:
    yield directory
  except io.DataError:  # bad data, found while reading it: leave no workdir behind
    if created:
      shutil.rmtree(cfg.workdir, ignore_errors=True)
    raise
  finally:
    shutil.rmtree(directory, ignore_errors=True)


def _prepared(cfg, data, latest, scratch):
  """(data, `splits.PreparedData`) of `cfg`, checked against a resumed run's data; a streamed
  table is read chunk by chunk into `scratch`."""
  if scratch is not None:
    data = streaming.load(cfg.data, scratch)
  elif data is None:
    data = io.load_from_config(cfg.data)
  if latest is not None:
    check_resume_data(cfg, data)
    _clean_leftovers(cfg.workdir)
  if scratch is not None:
    return data, streaming.prepare(data, scratch, cfg.data.val_fraction,
                                   cfg.data.test_fraction, cfg.seed, cfg.data.group_split)
  return data, splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                              cfg.data.group_split, cfg.data.cv)


def _train_prepared(cfg, strategy, method, latest, data, prepared, on_epoch_end, start):
  """Builds, trains, evaluates and writes the run of `cfg` on `prepared`; its result dict."""
  columns = selection.selected_inputs(prepared, data.tasks, cfg.data.select_features, cfg.seed)
  with strategy.scope() if strategy else contextlib.nullcontext():
    net = models.build_model(cfg.train.arch, [t.name for t in data.tasks],
                             len(prepared.input_names), cfg.model,
                             predictive.head_outputs(data.tasks, cfg.uncertainty.heteroscedastic),
                             columns)
    trainer = build_trainer(cfg, net, data.tasks, prepared, method, strategy)

  # Workers other than the chief of a multi-worker run save into a scratch directory that is
  # removed at the end: every worker must take part in saving, one writes the results.
  workdir = cfg.workdir
  if workdir and not distribute.is_chief(strategy):
    workdir = tempfile.mkdtemp(prefix="kmtl-worker-")
  save = checkpoint_saver(cfg, trainer, workdir, latest, data) if workdir else None

  writer = None
  if workdir and cfg.train.summaries:
    writer = summaries.Writer(os.path.join(workdir, "tb"), data.tasks, summaries.hparams(cfg))
  history = trainer.fit(save, _epoch_recorder(workdir, writer, on_epoch_end))
  result = evaluated(cfg, trainer, data.tasks, prepared)
  if columns is not None:
    result["selected_features"] = [prepared.input_names[i] for i in columns]
  if cfg.train.grad_stats and cfg.train.arch not in config_lib.SEPARATE_NETWORKS:
    # A resumed run's history file holds every epoch, those before the resume included.
    result["grad"] = gradients.epoch_means(run_files.read_history(workdir) if workdir
                                           else history)
  scales = _single_model_uncertainty(cfg, net, data, prepared, result)
  result["seconds"] = time.perf_counter() - start
  if writer is not None:
    writer.write_final(result["test"], result["epochs_run"])
    writer.close()
  if cfg.baseline_gbm:
    result["gbm_test"] = gbm.gradient_boosting(prepared, data.tasks, cfg.seed)
  if workdir:
    _write_artifacts(workdir, net, data, prepared, scales, result)
  if workdir and workdir != cfg.workdir:
    shutil.rmtree(workdir, ignore_errors=True)
  return result
