"""The tuning flags of every command that tunes (`kmtl tune`, the study): the trial budget and
the search-space overrides (kmtl/search_space.py)."""

from absl import flags

from kmtl import search_space


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

    self.tune_jobs = flags.DEFINE_integer(
        "tune_jobs", 1, "Worker processes running trials at once (1: the search is "
        "deterministic under --seed; more: which trials a trial's sampler sees depends on "
        "timing).")

  def settings(self):
    """(trials, {name: override}); ValueError naming the flag."""
    if self.tune_trials.value < 0:
      raise ValueError(f"--tune_trials={self.tune_trials.value}: needs 0 or more")
    if self.tune_jobs.value < 1:
      raise ValueError(f"--tune_jobs={self.tune_jobs.value}: needs 1 or more")
    return self.tune_trials.value, search_space.parse_overrides(self.search_space.value)


def define(default_trials=0):
  """Defines the tuning flags (once per program); returns their holders."""
  return TuningFlags(default_trials)
