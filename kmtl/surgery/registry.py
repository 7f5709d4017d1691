"""Method names (the `--surgery` values) -> method classes. The only place names are listed."""

from kmtl.surgery import gradnorm
from kmtl.surgery import gradscale
from kmtl.surgery import pcgrad
from kmtl.surgery import uw
from kmtl.surgery import weighted_sum

METHODS = {
    "none": weighted_sum.WeightedSum,
    "pcgrad": pcgrad.PCGrad,
    "gradnorm": gradnorm.GradNorm,
    "gradscale": gradscale.GradScale,
    "uw": uw.UncertaintyWeighting,
}


def create(name, **kwargs):
  """A new, unbuilt method; unknown names get an error listing the registered ones."""
  if name not in METHODS:
    raise ValueError(f"Invalid value for `--surgery`. Expected one of {list(METHODS)}. "
                     f"Received: {name!r}")
  return METHODS[name](**kwargs)
