"""A seeded, resumable hyper-parameter search of one configuration (Optuna's TPE sampler and
median pruner), on the training and validation rows of its split only.

Each trial trains the configuration with the trial's values (kmtl/search_space.py) on the
training rows and scores it by its mean validation loss over the scored tasks (all, or those of
`--tune_tasks`; model units, at the best epoch, as early stopping keeps it). With
`--tune_folds=K` the score is instead the mean over K grouped folds of the training and
validation rows, each fold validating once a model trained on the others: K times the work for a
score measured on every seen row rather than on the validation rows alone
(kmtl/trial_objective.py). The test rows are dropped before the first trial, so no trial can
read them. A multi-task trial reports each epoch's mean validation loss, and the
median pruner stops a trial whose loss is worse than the median of earlier trials at that epoch
(once 5 trials have finished, from the 10th epoch on); the single-task baseline's networks
train one after the other and are never pruned. A trial whose training fails (a non-finite loss, a solver error) is
recorded as failed with its reason and the search goes on.

The search lives in an SQLite file (`tuning.db`), so a killed search started again continues
where it stopped: a trial that was running is marked failed, without a reason, and does not
count.
Trial k draws its values from a TPE sampler seeded with (seed, k) and the finished trials
before it, and every trial trains with the run's seed, so a search of one job ends with the
same trials, interrupted or not, on the same machine (with several jobs, which trials have
finished when trial k starts depends on timing). Trials run in fresh processes of 10 trials
each: TensorFlow keeps every compiled program of a process, about 40 MB a trial under XLA.
"""

import dataclasses
import os
import time

import numpy as np

from kmtl import search_space
from kmtl import trial_objective

DATABASE = "tuning.db"
STUDY_NAME = "kmtl"
STARTUP_TRIALS = 5
WARMUP_EPOCHS = 10
TRIALS_PER_PROCESS = 10


class TuningError(ValueError):
  """The search cannot run (no trial finished, a bad setting); the message says why."""


@dataclasses.dataclass(frozen=True)
class Plan:
  """A tuned run's search: `trials` per configuration, the `--search_space` text, the tasks
  whose validation loss scores a trial (`--tune_tasks`; empty: all) and the folds the score
  is averaged over (`--tune_folds`; 1: the split's validation rows)."""
  trials: int = 0
  search_space: str = ""
  tasks: tuple = ()
  folds: int = 1

  def __post_init__(self):
    if self.trials < 0:
      raise ValueError(f"--tune_trials={self.trials}: needs 0 or more")
    if self.folds < 1:
      raise ValueError(f"--tune_folds={self.folds}: needs 1 (the validation rows) or more "
                       "(folds of the training and validation rows)")
    if len(set(self.tasks)) != len(self.tasks):
      raise ValueError(f"--tune_tasks={','.join(self.tasks)}: a task is named twice")

  def overrides(self):
    """{name: override} of the `--search_space` text; ValueError naming the flag."""
    return search_space.parse_overrides(self.search_space)

  def check(self, task_names):
    """A ValueError naming `--tune_tasks` if it names a task the run does not have."""
    unknown = [t for t in self.tasks if t not in task_names]
    if unknown:
      raise ValueError(f"--tune_tasks: {', '.join(unknown)} is not a task of this run "
                       f"(tasks: {', '.join(task_names)})")

  def settings(self):
    """What a tuned cell's result also depends on (nothing untuned, so that untuned cells keep
    matching; the objective only where it differs from the default, so that earlier tuned
    cells do too)."""
    if not self.trials:
      return {}
    out = {"tuning.trials": self.trials, "tuning.search_space": self.search_space}
    if self.tasks:
      out["tuning.tasks"] = ",".join(self.tasks)
    if self.folds != 1:
      out["tuning.folds"] = self.folds
    return out


@dataclasses.dataclass(frozen=True)
class Outcome:
  """A finished search: the best trial's values and score, every trial, and the seconds."""
  best_values: dict
  best_score: float
  best_number: int
  trials: list
  seconds: float
  budget: int

  def best(self, count):
    """The values of the `count` completed trials with the lowest validation loss, best
    first; a TuningError if fewer completed."""
    complete = sorted((r for r in self.trials if r["state"] == "complete"),
                      key=lambda r: (r["validation_loss"], r["trial"]))
    if len(complete) < count:
      raise TuningError(f"--ensemble={count} takes the {count} best trials; {len(complete)} "
                        f"of {self.budget} completed")
    return [r["values"] for r in complete[:count]]


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


def train_trial(cfg, data, prepared, names, report=None):
  """Trains `cfg` on `prepared` (without a test split) in this process; {task: validation
  loss} of the tasks in `names`. The single-task baseline trains only those tasks' networks:
  the others cannot change the score. `report(epoch, score)` receives each epoch's mean
  validation loss over `names` of a multi-task model and may raise to stop the trial."""
  import keras  # pylint: disable=g-import-not-at-top
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  from kmtl import models  # pylint: disable=g-import-not-at-top
  from kmtl import predictive  # pylint: disable=g-import-not-at-top
  from kmtl.surgery import registry  # pylint: disable=g-import-not-at-top
  keras.backend.clear_session()
  # A trial is scored on validation only: no training-split metrics, summaries or gradient
  # statistics, which cost time every epoch.
  cfg = dataclasses.replace(cfg, train=dataclasses.replace(
      cfg.train, summaries=False, grad_stats=False, affinity_batches=0))
  tasks = data.tasks
  if cfg.train.arch == "independent":
    tasks = [t for t in data.tasks if t.name in names]
  experiment.set_seeds(cfg.seed)
  method = registry.create(cfg.train.surgery, **dict(cfg.train.surgery_kwargs))
  net = models.build_model(cfg.train.arch, [t.name for t in tasks],
                           len(prepared.input_names), cfg.model,
                           predictive.head_outputs(tasks, cfg.uncertainty.heteroscedastic),
                           _selected_inputs(cfg, data, prepared))
  trainer = experiment.build_trainer(cfg, net, tasks, prepared, method)

  def on_epoch_end(record):
    if report is not None and "task" not in record:
      report(record["epoch"], float(np.mean([record["val_loss"][n] for n in names])))
  from absl import logging  # pylint: disable=g-import-not-at-top
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)  # one line per trial, not per epoch
  try:
    trainer.fit(on_epoch_end=on_epoch_end)
  finally:
    logging.set_verbosity(verbosity)
  return trial_objective.validation_losses(trainer, prepared, names)


_SELECTED = {}


def _selected_inputs(cfg, data, prepared):
  """The search's feature selection, ranked once per process: every trial sees the same rows."""
  from kmtl.data import selection  # pylint: disable=g-import-not-at-top
  key = (id(prepared), cfg.data.select_features, cfg.seed)
  if key not in _SELECTED:
    _SELECTED.clear()
    _SELECTED[key] = (prepared, selection.selected_inputs(prepared, data.tasks,
                                                          cfg.data.select_features, cfg.seed))
  return _SELECTED[key][1]


def base_task_weights(cfg, prepared):
  """The run's task weights as numbers, from the training label counts."""
  from kmtl import losses  # pylint: disable=g-import-not-at-top
  counts = [int(prepared.train.masks[t.name].sum()) for t in cfg.data.tasks]
  return losses.task_weights(cfg.train.task_weights, counts).tolist()


def _open(directory):
  """The search's Optuna study in `directory` (created on first use)."""
  optuna = _optuna()
  os.makedirs(directory, exist_ok=True)
  storage = f"sqlite:///{os.path.abspath(os.path.join(directory, DATABASE))}"
  pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS,
                                       n_warmup_steps=WARMUP_EPOCHS)
  return optuna, optuna.create_study(study_name=STUDY_NAME, storage=storage,
                                     direction="minimize", pruner=pruner, load_if_exists=True)


def run_trials(cfg, data, folds, names, indices, directory, params, fixed, budget, log=print,
               kind="network"):
  """Trials `indices` of the search in `directory`, one after the other in this process, on
  `folds` (`objective_splits`), scored on the tasks `names`, of `cfg`'s network or, with
  `kind="gbm"`, of the gradient-boosting reference."""
  optuna, study = _open(directory)
  weights = base_task_weights(cfg, folds[0])
  scored = [t for t in data.tasks if t.name in names]
  for k in indices:
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
    state, error, score = optuna.trial.TrialState.COMPLETE, None, None
    try:
      if kind == search_space.GBM:
        from kmtl import gbm  # pylint: disable=g-import-not-at-top
        score = trial_objective.trial_score([
            gbm.validation_losses(f, scored, cfg.seed, search_space.gbm_params(values))
            for f in folds])
      else:
        # Pruning reads the first fold's epochs: every trial reports the same fold.
        trial_cfg = search_space.apply(cfg, values, weights)
        score = trial_objective.trial_score([
            train_trial(trial_cfg, data, f, names, report if i == 0 else None)
            for i, f in enumerate(folds)])
      if not np.isfinite(score):
        state, error = optuna.trial.TrialState.FAIL, "non-finite validation loss"
    except optuna.TrialPruned:
      state = optuna.trial.TrialState.PRUNED
    except (ValueError, ArithmeticError, RuntimeError) as e:
      state, error = optuna.trial.TrialState.FAIL, _reason(e)
    trial.set_user_attr("seconds", time.perf_counter() - trial_start)
    if error is not None:
      trial.set_user_attr("error", error)
    study.tell(trial, score if state == optuna.trial.TrialState.COMPLETE else None,
               state=state)
    log(f"trial {k + 1}/{budget}: " + (
        f"validation loss {score:.5g}" if state == optuna.trial.TrialState.COMPLETE else
        "pruned" if state == optuna.trial.TrialState.PRUNED else f"failed: {error}"))


_CHILD = ("import pickle, sys\n"
          "from kmtl import tuning\n"
          "with open(sys.argv[1], 'rb') as f:\n"
          "  tuning.worker(*pickle.load(f))\n")


def worker(parent, threads, *args):
  """A fresh process's share of the trials (`run_trials`' arguments): it ends with its
  parent, and prints a line per trial."""
  import sys  # pylint: disable=g-import-not-at-top
  from kmtl import sweep  # pylint: disable=g-import-not-at-top
  sweep.die_with(parent)
  sweep.prepare_worker(threads)
  run_trials(*args, log=lambda m: print(m, file=sys.stderr, flush=True))


def _run_in_processes(chunks, jobs, arguments, directory):
  """Each chunk of trial indices in a fresh Python process (a subprocess, which the study's
  daemonic cell workers may start), up to `jobs` at once."""
  import pickle  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import kmtl  # pylint: disable=g-import-not-at-top
  here = os.path.dirname(os.path.dirname(os.path.abspath(kmtl.__file__)))
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(
      p for p in (here, os.environ.get("PYTHONPATH")) if p)}
  threads = max(1, (os.cpu_count() or 1) // jobs)
  pending, running = list(chunks), []
  try:
    while pending or running:
      while pending and len(running) < jobs:
        chunk = pending.pop(0)
        path = os.path.join(directory, f".worker-{chunk[0]}.pickle")
        with open(path, "wb") as f:
          pickle.dump((os.getpid(), threads, *arguments[:4], chunk, *arguments[4:]), f)
        running.append((subprocess.Popen([sys.executable, "-c", _CHILD, path], env=env),
                        path))
      child, path = running.pop(0)
      code = child.wait()
      os.remove(path)
      if code != 0:
        raise TuningError(f"a trial worker process exited with code {code}; run the same "
                          "command again to continue the search")
  finally:
    for child, path in running:
      child.kill()
      child.wait()
      if os.path.exists(path):
        os.remove(path)


def search(cfg, data, prepared, plan, directory, log=print,
           trials_per_process=TRIALS_PER_PROCESS, jobs=1, kind="network"):
  """Runs (or continues) the search of `cfg`'s configuration in `directory` until
  `plan.trials` trials have finished; returns its `Outcome`. `prepared` is the run's split;
  its test rows are dropped here. Trials run in fresh processes of `trials_per_process` trials
  each (compiled programs that TensorFlow keeps would otherwise grow with every trial), `jobs`
  at once; one chunk on one job, or `trials_per_process=0`, runs in this process. `kind="gbm"`
  tunes the gradient-boosting reference instead (in this process: it needs no TensorFlow)."""
  start = time.perf_counter()
  task_names = [t.name for t in data.tasks]
  plan.check(task_names)
  arch = search_space.GBM if kind == search_space.GBM else cfg.train.arch
  params, fixed = search_space.parameters(arch, cfg.train.surgery, task_names, plan.overrides())
  folds = trial_objective.objective_splits(data, without_test(prepared), plan, cfg.seed)
  names = trial_objective.scored_names(data, plan)
  optuna, study = _open(directory)
  _mark_interrupted(study, optuna)
  done = {t.user_attrs.get("index") for t in _finished(study, optuna)}
  todo = [k for k in range(plan.trials) if k not in done]
  chunks = ([todo[i:i + trials_per_process] for i in range(0, len(todo), trials_per_process)]
            if trials_per_process else [todo])
  # One chunk on one job runs here: this process is then what a fresh one would be.
  if kind == search_space.GBM or (len(chunks) == 1 and jobs == 1):
    run_trials(cfg, data, folds, names, todo, directory, params, fixed, plan.trials, log, kind)
  else:
    _run_in_processes(chunks, jobs, (cfg, data, folds, names, directory, params, fixed,
                                     plan.trials), directory)
  return _outcome(study, optuna, params, fixed, plan.trials, time.perf_counter() - start)


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


def summary(outcome, plan):
  """A tuned cell's record of its search: the budget, the objective, the trials' outcomes,
  the best values and score, and the seconds."""
  states = [r["state"] for r in outcome.trials]
  return {"budget": plan.trials, "tasks": list(plan.tasks), "folds": plan.folds,
          "values": outcome.best_values, "validation_loss": outcome.best_score,
          "seconds": outcome.seconds,
          "trials": {s: states.count(s) for s in ("complete", "pruned", "fail")}}


def tuned_run(cfg, plan, directory, log=lambda _: None):
  """A study cell that tunes first: the search of `cfg` on its split's training and validation
  rows in `directory`, then `cfg` with the best values trained and tested; the result dict of
  `experiment.train_and_evaluate`, with `tuning` (budget, states, best values, seconds)."""
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  from kmtl.data import io  # pylint: disable=g-import-not-at-top
  from kmtl.data import splits  # pylint: disable=g-import-not-at-top
  data = io.load_from_config(cfg.data)
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                            cfg.data.group_split, cfg.data.cv)
  outcome = search(cfg, data, prepared, plan, directory, log)
  best = search_space.apply(cfg, outcome.best_values, base_task_weights(cfg, prepared))
  result = experiment.train_and_evaluate(best, data=data)
  result["tuning"] = summary(outcome, plan)
  return result


def tuned_gbm_run(cfg, plan, directory):
  """The study's gradient-boosting row, tuned: the search of the boosting models' settings on
  `cfg`'s split's training and validation rows, then the best settings tested; a result dict
  as `sweep.gradient_boosting_run` gives, with `tuning`."""
  from kmtl import gbm  # pylint: disable=g-import-not-at-top
  from kmtl.data import io  # pylint: disable=g-import-not-at-top
  from kmtl.data import splits  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  data = io.load_from_config(cfg.data)
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                            cfg.data.group_split, cfg.data.cv)
  outcome = search(cfg, data, prepared, plan, directory, kind=search_space.GBM,
                   log=lambda _: None)
  params = search_space.gbm_params(outcome.best_values)
  return {"arch": "gbm", "surgery": "none", "seed": cfg.seed, "imbalance": [],
          "test": gbm.gradient_boosting(prepared, data.tasks, cfg.seed, params=params),
          "val": gbm.gradient_boosting(prepared, data.tasks, cfg.seed, split="val",
                                       params=params),
          "epochs_run": 0, "seconds": time.perf_counter() - start,
          "tuning": summary(outcome, plan)}
