"""Tune one configuration, then train it with the best values found:

    kmtl tune --arch=shared --surgery=gradnorm --tune_trials=50 --out=tuned [--workdir=runs/t]

takes every flag of `kmtl train`. The search (kmtl/tuning.py) sees the split's training and
validation rows only; the final model trains with the best values on the same split and
reports its test metrics, as `kmtl train` does (kept in --workdir when given). --out receives
`tuning.db` (the Optuna study: run the same command again to continue a killed search),
`trials.csv` (every trial: state, validation loss, seconds, values, why it failed),
`best.json` (the best values, the budget and the tuning time), `best.cfg` (the tuned flags, for
`kmtl train --flagfile=OUT/best.cfg`) and `tb/` (each trial in TensorBoard's HParams
dashboard). With `--ensemble=K` the final model is the ensemble of the K best trials, each
member trained with its trial's values: it exports, predicts and serves as any ensemble, with
the ensemble's uncertainty.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top

from kmtl import atomic  # pylint: disable=g-import-not-at-top
from kmtl import data_flags  # pylint: disable=g-import-not-at-top
from kmtl import entry  # pylint: disable=g-import-not-at-top
from kmtl import knob_flags  # pylint: disable=g-import-not-at-top
from kmtl import model_flags  # pylint: disable=g-import-not-at-top
from kmtl import provenance  # pylint: disable=g-import-not-at-top
from kmtl import quiet  # pylint: disable=g-import-not-at-top
from kmtl import run as run_lib  # pylint: disable=g-import-not-at-top  (the training flags)
from kmtl import training_flags  # pylint: disable=g-import-not-at-top
from kmtl import tuning_flags  # pylint: disable=g-import-not-at-top
from kmtl import uncertainty_flags  # pylint: disable=g-import-not-at-top
from kmtl.data import io  # pylint: disable=g-import-not-at-top

PROG = "kmtl.tune"
_OUT = flags.DEFINE_string("out", None, "Folder of the search (continued if it holds one).")
_TUNING_FLAGS = tuning_flags.define(default_trials=20)


def tuned_flags(cfg):
  """The flagfile lines that give `kmtl train` the tuned configuration."""
  weights = cfg.train.task_weights
  lines = [f"--arch={cfg.train.arch}", f"--surgery={cfg.train.surgery}",
           f"--lr={cfg.train.learning_rate!r}", f"--weight_decay={cfg.train.weight_decay!r}",
           f"--batch_size={cfg.train.batch_size}",
           f"--dropout={training_flags.format_dropout(cfg.model.dropout)}",
           f"--trunk_units={','.join(map(str, cfg.model.trunk_units))}",
           f"--head_units={','.join(map(str, cfg.model.head_units))}",
           f"--task_weights={weights if isinstance(weights, str) else ','.join(map(repr, weights))}"]
  if cfg.train.surgery_kwargs:
    lines.append("--surgery_args=" + ",".join(f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in cfg.train.surgery_kwargs))
  return "\n".join(lines) + "\n"


def _hparams_summaries(directory, outcome):
  """Each trial as one run of TensorBoard's HParams dashboard, its validation loss the metric."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top
  for row in outcome.trials:
    with tf.summary.create_file_writer(
        os.path.join(directory, "tb", f"trial_{row['trial']:04d}")).as_default():
      hp.hparams({k: v for k, v in row["values"].items()}, trial_id=f"trial {row['trial']}")
      if row["validation_loss"] is not None:
        tf.summary.scalar("validation_loss", row["validation_loss"], step=0)


def write_outcome(directory, outcome, cfg, plan):
  """trials.csv, best.json and best.cfg of a finished search."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  table = pd.DataFrame([{**{k: v for k, v in r.items() if k != "values"},
                         **{f"value.{k}": v for k, v in r["values"].items()}}
                        for r in outcome.trials])
  atomic.write_text(os.path.join(directory, "trials.csv"), table.to_csv(index=False))
  counts = {s: int((table["state"] == s).sum()) for s in ("complete", "pruned", "fail")}
  atomic.write_text(os.path.join(directory, "best.json"), json.dumps({
      "made_by": provenance.line(PROG),
      "configuration": f"{cfg.train.arch}:{cfg.train.surgery}", "budget": outcome.budget,
      "scored_tasks": list(plan.tasks) or [t.name for t in cfg.data.tasks],
      "folds": plan.folds,
      "trials": counts, "best_trial": outcome.best_number,
      "validation_loss": outcome.best_score, "values": outcome.best_values,
      "tuning_seconds": outcome.seconds}, indent=2, default=str))
  atomic.write_text(os.path.join(directory, "best.cfg"), tuned_flags(cfg))


def main(argv):
  if len(argv) > 1:
    sys.exit(f"{PROG}: error: unexpected arguments {argv[1:]}")
  try:
    plan = _TUNING_FLAGS.plan()
    trials = plan.trials
    if not _OUT.value:
      raise ValueError("--out is required")
    if trials < 1:
      raise ValueError("--tune_trials: kmtl tune needs 1 or more trials")
    atomic.check_output_dir(_OUT.value, "--out")
    cfg, data = run_lib.checked_inputs()
    from kmtl import search_space  # pylint: disable=g-import-not-at-top
    search_space.parameters(cfg.train.arch, cfg.train.surgery, [t.name for t in cfg.data.tasks],
                            plan.overrides())
    plan.check([t.name for t in cfg.data.tasks])
    if data is None:
      raise ValueError(f"--data={cfg.data.path}: tuning runs tables in memory")
    if cfg.uncertainty.trains_ensemble and cfg.uncertainty.ensemble > trials:
      raise ValueError(f"--ensemble={cfg.uncertainty.ensemble} takes the best trials; "
                       f"--tune_trials={trials} cannot give them")
  except (ValueError, io.DataError) as e:
    sys.exit(f"{PROG}: error: {e}")
  quiet.import_tensorflow()
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  from kmtl import metrics  # pylint: disable=g-import-not-at-top
  from kmtl import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  from kmtl import tuning  # pylint: disable=g-import-not-at-top
  from kmtl.data import splits  # pylint: disable=g-import-not-at-top
  try:
    prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                              cfg.data.group_split, cfg.data.cv)
    outcome = tuning.search(cfg, data, prepared, plan, _OUT.value,
                            log=lambda m: logging.info("%s", m),
                            jobs=_TUNING_FLAGS.tune_jobs.value)
    best = search_space.apply(cfg, outcome.best_values,
                              tuning.base_task_weights(cfg, prepared))
    write_outcome(_OUT.value, outcome, best, plan)
    _hparams_summaries(_OUT.value, outcome)
    if cfg.uncertainty.trains_ensemble:
      from kmtl import ensemble  # pylint: disable=g-import-not-at-top
      weights = tuning.base_task_weights(cfg, prepared)
      variants = [search_space.apply(cfg, values, weights)
                  for values in outcome.best(cfg.uncertainty.ensemble)]
      result = ensemble.train_and_evaluate(cfg, data, run_lib.ensemble_jobs(),
                                           variants=variants)
    else:
      result = experiment.train_and_evaluate(best, data=data)
  except (tuning.TuningError, experiment.ExperimentError, trainer_lib.TrainingError,
          io.DataError, ValueError) as e:
    sys.exit(f"{PROG}: error: {e}")
  print(f"best of {trials} trials (trial {outcome.best_number}, validation loss "
        f"{outcome.best_score:.5g}, {outcome.seconds:.0f} s of tuning): "
        + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in outcome.best_values.items()))
  kind = (f"ensemble of the {cfg.uncertainty.ensemble} best trials"
          if cfg.uncertainty.trains_ensemble else "tuned")
  print(f"test metrics ({cfg.train.arch}, surgery={cfg.train.surgery}, {kind}, seed={cfg.seed}, "
        f"{result['epochs_run']} epochs):")
  print(metrics.format_table(result["test"], cfg.data.tasks))
  print(f"wrote {os.path.join(_OUT.value, 'best.cfg')} (kmtl train --flagfile=... trains it)")
  if run_lib.export_dir():
    from kmtl import export  # pylint: disable=g-import-not-at-top
    try:
      print(f"exported {export.export_run(cfg.workdir, run_lib.export_dir())}")
    except export.ExportError as e:
      sys.exit(f"{PROG}: error: {e}")


if __name__ == "__main__":
  for flag_module in (data_flags, model_flags, training_flags, tuning_flags, uncertainty_flags,
                      knob_flags, run_lib):
    flags.adopt_module_key_flags(flag_module)
  entry.run(main, PROG)
