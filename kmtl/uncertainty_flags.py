"""The uncertainty flags that every entry point which trains takes (`kmtl.run`, the study): an
entry point calls `define()` at import and `config()` once its flags are parsed."""

from absl import flags

from kmtl import uncertainty_config


class UncertaintyFlags:
  """The flag holders of the uncertainty flags."""

  def __init__(self):
    self.ensemble = flags.DEFINE_integer(
        "ensemble", 1, "Members of a deep ensemble, each trained with its own seed on the "
        "run's split (1: a single model).")
    self.uncertainty_head = flags.DEFINE_bool(
        "uncertainty_head", False, "Regression heads also predict a log-variance and train "
        "with the Gaussian negative log-likelihood.")
    self.mc_samples = flags.DEFINE_integer(
        "mc_samples", 0, "MC dropout: dropout samples per prediction (needs --dropout > 0); "
        "0 for none.")

  def config(self):
    """The `UncertaintyConfig` of the flags; ValueError naming the flag otherwise."""
    return uncertainty_config.UncertaintyConfig(
        ensemble=self.ensemble.value, heteroscedastic=self.uncertainty_head.value,
        mc_samples=self.mc_samples.value)


def define():
  """Defines the uncertainty flags (once per program); returns their holders."""
  return UncertaintyFlags()
