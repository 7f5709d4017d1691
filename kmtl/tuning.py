"""A seeded, resumable hyper-parameter search of one configuration (Optuna's TPE sampler and
median pruner), on the training and validation rows of its split only.

Each trial trains the configuration with the trial's values (kmtl/search_space.py) on the
training rows and scores it by its mean validation loss over the tasks (model units, at the
best epoch, as early stopping keeps it); the test rows are dropped before the first trial, so
no trial can read them. A multi-task trial reports each epoch's mean validation loss, and the
median pruner stops a trial whose loss is worse than the median of earlier trials at that epoch
(once 5 trials have finished, from the 10th epoch on); the single-task baseline's networks
train one after the other and are never pruned. A trial whose training fails (a non-finite loss, a solver error) is
recorded as failed with its reason and the search goes on.

The search lives in an SQLite file (`tuning.db`), so a killed search started again continues
where it stopped: a trial that was running is marked failed, without a reason, and does not
count.
Trial k draws its values from a TPE sampler seeded with (seed, k) and the finished trials
before it, and every trial trains with the run's seed, so a search ends with the same trials,
interrupted or not, on the same machine.
"""

import dataclasses
import os
import time

import numpy as np

from kmtl import search_space

DATABASE = "tuning.db"
STUDY_NAME = "kmtl"
STARTUP_TRIALS = 5
WARMUP_EPOCHS = 10


class TuningError(ValueError):
  """The search cannot run (no trial finished, a bad setting); the message says why."""


@dataclasses.dataclass(frozen=True)
class Outcome:
  """A finished search: the best trial's values and score, every trial, and the seconds."""
  best_values: dict
  best_score: float
  best_number: int
  trials: list
  seconds: float
  budget: int


def _optuna():
  try:
    import optuna  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise TuningError("tuning needs Optuna: pip install 'kmtl[tune]'") from None
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  return optuna


def check_available():
  """A TuningError unless Optuna can be imported."""
  _optuna()


def without_test(prepared):
  """`prepared` with its test split emptied: what a trial may see."""
  return dataclasses.replace(prepared, test=prepared.test.take(np.arange(0)))


def _values(trial, params, fixed):
  values = dict(fixed)
  for p in params:
    values[p.name] = p.suggest(trial)
  return values


def _finished(study, optuna):
  """The trials that count towards the budget: all but the interrupted ones (failed trials
  that a kill left running, which hold no reason)."""
  states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL)
  return [t for t in study.get_trials(deepcopy=False, states=states)
          if t.state != optuna.trial.TrialState.FAIL or "error" in t.user_attrs]


def _mark_interrupted(study, optuna):
  """Trials left running by a killed search end as failed, without a reason."""
  for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
    study.tell(t.number, state=optuna.trial.TrialState.FAIL)


def validation_score(trainer, prepared):
  """Mean over tasks of the validation loss (model units) of the trainer's current weights."""
  losses, _ = trainer.evaluate(prepared.val)
  return float(np.mean(losses))


def train_trial(cfg, data, prepared, report=None):
  """Trains `cfg` on `prepared` (without a test split) in this process; its validation score.
  `report(epoch, score)` receives each epoch's mean validation loss of a multi-task model and
  may raise to stop the trial."""
  import keras  # pylint: disable=g-import-not-at-top
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  from kmtl import models  # pylint: disable=g-import-not-at-top
  from kmtl import predictive  # pylint: disable=g-import-not-at-top
  from kmtl.surgery import registry  # pylint: disable=g-import-not-at-top
  keras.backend.clear_session()
  experiment.set_seeds(cfg.seed)
  method = registry.create(cfg.train.surgery, **dict(cfg.train.surgery_kwargs))
  net = models.build_model(cfg.train.arch, [t.name for t in data.tasks],
                           len(prepared.input_names), cfg.model,
                           predictive.head_outputs(data.tasks, cfg.uncertainty.heteroscedastic))
  trainer = experiment.build_trainer(cfg, net, data.tasks, prepared, method)

  def on_epoch_end(record):
    if report is not None and "task" not in record:
      report(record["epoch"], float(np.mean(list(record["val_loss"].values()))))
  from absl import logging  # pylint: disable=g-import-not-at-top
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)  # one line per trial, not per epoch
  try:
    trainer.fit(on_epoch_end=on_epoch_end)
  finally:
    logging.set_verbosity(verbosity)
  return validation_score(trainer, prepared)


def base_task_weights(cfg, prepared):
  """The run's task weights as numbers, from the training label counts."""
  from kmtl import losses  # pylint: disable=g-import-not-at-top
  counts = [int(prepared.train.masks[t.name].sum()) for t in cfg.data.tasks]
  return losses.task_weights(cfg.train.task_weights, counts).tolist()


def search(cfg, data, prepared, trials, directory, overrides=None, log=print):
  """Runs (or continues) the search of `cfg`'s configuration in `directory` until `trials`
  trials have finished; returns its `Outcome`. `prepared` is the run's split; its test rows are
  dropped here."""
  optuna = _optuna()
  start = time.perf_counter()
  params, fixed = search_space.parameters(cfg.train.arch, cfg.train.surgery,
                                          [t.name for t in data.tasks], overrides)
  seen = without_test(prepared)
  weights = base_task_weights(cfg, seen)
  os.makedirs(directory, exist_ok=True)
  storage = f"sqlite:///{os.path.abspath(os.path.join(directory, DATABASE))}"
  pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS,
                                       n_warmup_steps=WARMUP_EPOCHS)
  study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="minimize",
                              pruner=pruner, load_if_exists=True)
  _mark_interrupted(study, optuna)
  while len(_finished(study, optuna)) < trials:
    k = len(_finished(study, optuna))
    study.sampler = optuna.samplers.TPESampler(seed=cfg.seed * 1_000_003 + k,
                                               n_startup_trials=STARTUP_TRIALS)
    trial = study.ask()
    trial.set_user_attr("index", k)
    values = _values(trial, params, fixed)
    trial_start = time.perf_counter()

    def report(epoch, score, trial=trial):
      trial.report(score, epoch)
      if trial.should_prune():
        raise optuna.TrialPruned()
    try:
      score = train_trial(search_space.apply(cfg, values, weights), data, seen, report)
    except optuna.TrialPruned:
      trial.set_user_attr("seconds", time.perf_counter() - trial_start)
      study.tell(trial, state=optuna.trial.TrialState.PRUNED)
      log(f"trial {k + 1}/{trials}: pruned")
      continue
    except (ValueError, ArithmeticError, RuntimeError) as e:
      trial.set_user_attr("error", _reason(e))
      trial.set_user_attr("seconds", time.perf_counter() - trial_start)
      study.tell(trial, state=optuna.trial.TrialState.FAIL)
      log(f"trial {k + 1}/{trials}: failed: {_reason(e)}")
      continue
    trial.set_user_attr("seconds", time.perf_counter() - trial_start)
    if not np.isfinite(score):
      trial.set_user_attr("error", "non-finite validation loss")
      study.tell(trial, state=optuna.trial.TrialState.FAIL)
      log(f"trial {k + 1}/{trials}: failed: non-finite validation loss")
      continue
    study.tell(trial, score)
    log(f"trial {k + 1}/{trials}: validation loss {score:.5g}")
  return _outcome(study, optuna, params, fixed, trials, time.perf_counter() - start)


def _reason(error):
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def _outcome(study, optuna, params, fixed, budget, seconds):
  finished = sorted(_finished(study, optuna), key=lambda t: t.user_attrs.get("index", t.number))
  rows = []
  for t in finished:
    values = {**fixed, **{p.name: _value_of(t.params, p) for p in params if p.name in t.params
                          or f"{p.name}.zero" in t.params}}
    rows.append({"trial": t.user_attrs.get("index", t.number), "state": t.state.name.lower(),
                 "validation_loss": t.value, "seconds": t.user_attrs.get("seconds"),
                 "error": t.user_attrs.get("error"), "values": values})
  complete = [r for r in rows if r["state"] == "complete"]
  if not complete:
    reasons = sorted({r["error"] for r in rows if r["error"]})
    raise TuningError(f"no trial of {budget} finished"
                      f"{': ' + reasons[0] if reasons else ' (every trial was pruned)'}")
  best = min(complete, key=lambda r: (r["validation_loss"], r["trial"]))
  return Outcome(best["values"], best["validation_loss"], best["trial"], rows, seconds, budget)


def _value_of(params, parameter):
  if params.get(f"{parameter.name}.zero"):
    return 0.0
  return params[parameter.name]


def tuned_run(cfg, trials, search_space_text, directory, log=lambda _: None):
  """A study cell that tunes first: the search of `cfg` on its split's training and validation
  rows in `directory`, then `cfg` with the best values trained and tested; the result dict of
  `experiment.train_and_evaluate`, with `tuning` (budget, states, best values, seconds)."""
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  from kmtl.data import io  # pylint: disable=g-import-not-at-top
  from kmtl.data import splits  # pylint: disable=g-import-not-at-top
  data = io.load_from_config(cfg.data)
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                            cfg.data.group_split, cfg.data.cv)
  outcome = search(cfg, data, prepared, trials, directory,
                   search_space.parse_overrides(search_space_text), log)
  best = search_space.apply(cfg, outcome.best_values, base_task_weights(cfg, prepared))
  result = experiment.train_and_evaluate(best, data=data)
  states = [r["state"] for r in outcome.trials]
  result["tuning"] = {"budget": trials, "values": outcome.best_values,
                      "validation_loss": outcome.best_score, "seconds": outcome.seconds,
                      "trials": {s: states.count(s) for s in ("complete", "pruned", "fail")}}
  return result
