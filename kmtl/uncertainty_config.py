"""The uncertainty section of the run configuration: deep ensembles, the heteroscedastic
regression head and MC dropout (kmtl/ensemble.py, kmtl/predictive.py), with the checks that
need the rest of the run's settings."""

import dataclasses

from kmtl.data import schema
from kmtl.surgery import registry

# Member k of an ensemble initialises and shuffles with seed + k * MEMBER_SEED_STRIDE; the split
# is the run's seed for every member, so members differ only in what they learn.
MEMBER_SEED_STRIDE = 7919


@dataclasses.dataclass(frozen=True)
class UncertaintyConfig:
  """How a run estimates the uncertainty of its predictions.

  Attributes:
    ensemble: members of a deep ensemble (1: a single model).
    heteroscedastic: each regression head also predicts a log-variance and trains with the
      Gaussian negative log-likelihood.
    mc_samples: dropout samples per prediction (MC dropout); 0 for none.
    member: which member of an ensemble this run trains (set by kmtl/ensemble.py); None for
      the run as a whole.
  """
  ensemble: int = 1
  heteroscedastic: bool = False
  mc_samples: int = 0
  member: int = None

  def __post_init__(self):
    if self.ensemble < 1:
      raise ValueError(f"--ensemble={self.ensemble}: an ensemble needs at least 1 member")
    if self.mc_samples < 0 or self.mc_samples == 1:
      raise ValueError(f"--mc_samples={self.mc_samples}: MC dropout needs 2 or more samples "
                       "(0 turns it off)")
    if self.mc_samples and self.ensemble > 1:
      raise ValueError(f"--mc_samples={self.mc_samples} with --ensemble={self.ensemble}: "
                       "choose one source of model uncertainty")
    if self.member is not None and not 0 <= self.member < self.ensemble:
      raise ValueError(f"ensemble member {self.member} of {self.ensemble}")

  @property
  def trains_ensemble(self):
    """Whether this run trains several members (rather than being one of them)."""
    return self.ensemble > 1 and self.member is None

  def check(self, tasks, model, loss, imbalance, train):
    """A ValueError naming the flag when the rest of the run's settings rule these out."""
    if train.model_selection == "per_task" and (self.ensemble > 1 or self.heteroscedastic
                                                or self.mc_samples):
      raise ValueError("--model_selection=per_task picks each task's point predictions from "
                       "its own weights; the ensemble's and the predictive distribution's "
                       "come from one set (use --model_selection=joint)")
    if self.mc_samples and not model.has_dropout:
      raise ValueError(f"--mc_samples={self.mc_samples} needs --dropout > 0 (MC dropout "
                       "samples the dropout masks)")
    if self.mc_samples and model.input_noise > 0:
      raise ValueError(f"--mc_samples={self.mc_samples} with --input_noise would sample the "
                       "input noise as well as the dropout masks; drop one of them")
    if not self.heteroscedastic:
      return
    if not any(t.kind == schema.REGRESSION for t in tasks):
      raise ValueError("--uncertainty_head applies to regression tasks; every task here is a "
                       "classification")
    if loss.regression != "mse":
      raise ValueError(f"--uncertainty_head trains with the Gaussian negative log-likelihood; "
                       f"--regression_loss={loss.regression} would replace it")
    if "bmse" in imbalance.methods:
      raise ValueError("--uncertainty_head trains with the Gaussian negative log-likelihood; "
                       "--imbalance=bmse would replace it")
    if train.surgery in registry.POSITIVE_LOSSES or train.stopping == "relative_val_loss":
      what = (f"--surgery={train.surgery}" if train.surgery in registry.POSITIVE_LOSSES
              else "--stopping=relative_val_loss")
      raise ValueError(f"{what} reads task losses as positive magnitudes (ratios or "
                       "logarithms); the Gaussian negative log-likelihood of --uncertainty_head "
                       "can be negative")


def member_seed(seed, member):
  """The initialisation and shuffling seed of ensemble member `member` of a run seeded
  `seed` (member 0, like a single model's run, None, trains with `seed` itself)."""
  return seed + MEMBER_SEED_STRIDE * (member or 0)
