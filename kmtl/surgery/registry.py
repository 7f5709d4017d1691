"""Method names (the `--surgery` values) -> method classes. The only place names are listed."""

import inspect

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
  parameters = list(inspect.signature(METHODS[name]).parameters)
  unknown = sorted(set(kwargs) - set(parameters))
  if unknown:
    raise ValueError(f"--surgery_args: {name} takes {parameters or 'no hyper-parameters'}, "
                     f"not {unknown}")
  try:
    return METHODS[name](**kwargs)
  except TypeError as e:
    raise ValueError(f"--surgery_args: invalid value for {name}: {e}") from None
