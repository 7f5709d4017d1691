"""The tuning flags of every command that tunes (`kmtl tune`, the study, the benchmark): the
trial budget, the search-space overrides (kmtl/search_space.py) and the objective."""

from absl import flags

from kmtl import tuning


class TuningFlags:
  """The flag holders of the tuning flags."""

  def __init__(self, default_trials):
    self.tune_trials = flags.DEFINE_integer(
        "tune_trials", default_trials, "Trials of the hyper-parameter search (Optuna TPE, "
        "median pruning) per configuration, on training and validation rows only.")
    self.search_space = flags.DEFINE_string(
        "search_space", "", "Overrides of the search space, comma-separated: NAME=LOW:HIGH"
        "[:log|:int], NAME=A|B, NAME=VALUE (fixed) or NAME=off, e.g. "
        "'lr=1e-4:3e-3:log,trunk_depth=2,batch_size=32|64' (see kmtl/search_space.py).")

    self.tune_tasks = flags.DEFINE_list(
        "tune_tasks", [], "Tasks whose validation loss scores a trial (default: the mean over "
        "all tasks). The single-task baseline's trials then train only these tasks' networks.")
    self.tune_folds = flags.DEFINE_integer(
        "tune_folds", 1, "1: a trial is scored on the split's validation rows; K >= 2: on K "
        "folds of the training and validation rows (grouped by composition), each validated "
        "once by a model trained on the others (K times the training).")
    self.tune_jobs = flags.DEFINE_integer(
        "tune_jobs", 1, "Worker processes running trials at once (1: the search is "
        "deterministic under --seed; more: which trials a trial's sampler sees depends on "
        "timing).")

  def plan(self):
    """The flags as a `tuning.Plan`, its search space parsed; ValueError naming the flag."""
    if self.tune_jobs.value < 1:
      raise ValueError(f"--tune_jobs={self.tune_jobs.value}: needs 1 or more")
    plan = tuning.Plan(self.tune_trials.value, self.search_space.value,
                       tuple(self.tune_tasks.value), self.tune_folds.value)
    plan.overrides()
    return plan


def define(default_trials=0):
  """Defines the tuning flags (once per program); returns their holders."""
  return TuningFlags(default_trials)
