"""Method names (the `--surgery` values) -> the classes that implement them. The only place the
names are listed. Importing this module loads no TensorFlow, so flags are checked before it."""

import importlib
import inspect

# name -> "module.Class" in this package.
METHODS = {
    "none": "weighted_sum.WeightedSum",
    "pcgrad": "pcgrad.PCGrad",
    "gradnorm": "gradnorm.GradNorm",
    "gradscale": "gradscale.GradScale",
    "uw": "uw.UncertaintyWeighting",
    # Gradient aggregators.
    "mgda": "mgda.MGDA",
    "cagrad": "cagrad.CAGrad",
    "imtl_g": "imtl_g.ImpartialGradient",
    "aligned_mtl": "aligned_mtl.AlignedMTL",
    "upgrad": "upgrad.UPGrad",
    "dualproj": "dualproj.DualProj",
    "config": "config.ConFIG",
    "gradvac": "gradvac.GradVac",
    "graddrop": "graddrop.GradDrop",
    "nash_mtl": "nash_mtl.NashMTL",
    "fairgrad": "fairgrad.FairGrad",
    "db_mtl": "db_mtl.DualBalancing",
    "moco": "moco.MoCo",
    # Loss weightings.
    "rlw": "rlw.RandomLossWeighting",
    "dwa": "dwa.DynamicWeightAverage",
    "gls": "gls.GeometricLoss",
    "stch": "stch.SmoothTchebycheff",
    "famo": "famo.FAMO",
    "imtl_l": "imtl_l.ImpartialLoss",
    "si": "si.ScaleInvariant",
    "excess_mtl": "excess_mtl.ExcessMTL",
}


# Methods that read task losses as positive magnitudes: ratios to earlier losses (gradnorm,
# dwa), logarithms (db_mtl, stch, gls, famo, si), or a learned scale e^-s L + s that a negative
# loss drives without bound (uw, imtl_l). A Gaussian negative log-likelihood can be negative.
POSITIVE_LOSSES = ("gradnorm", "dwa", "db_mtl", "stch", "gls", "famo", "si", "uw", "imtl_l")


# Methods with a running [T, P] state per shared parameter (kmtl/surgery/base.py
# `per_parameter_state`).
PER_PARAMETER_STATE = ("moco", "db_mtl")


def check_name(name):
  """A one-line error listing the registered names when `name` is not one of them."""
  if name not in METHODS:
    raise ValueError(f"Invalid value for `--surgery`. Expected one of {list(METHODS)}. "
                     f"Received: {name!r}")


def method_class(name):
  """The class registered as `name` (importing its module, and TensorFlow)."""
  check_name(name)
  module, cls = METHODS[name].split(".")
  return getattr(importlib.import_module(f"kmtl.surgery.{module}"), cls)


def create(name, **kwargs):
  """A new, unbuilt method; unknown names or hyper-parameters get a one-line error."""
  cls = method_class(name)
  parameters = list(inspect.signature(cls).parameters)
  unknown = sorted(set(kwargs) - set(parameters))
  if unknown:
    raise ValueError(f"--surgery_args: {name} takes {parameters or 'no hyper-parameters'}, "
                     f"not {unknown}")
  defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
  for key, value in kwargs.items():
    numeric = isinstance(defaults[key], (int, float)) and not isinstance(defaults[key], bool)
    if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
      raise ValueError(f"--surgery_args: {name}'s {key} takes a number. Received: {value!r}")
  try:
    return cls(**kwargs)
  except (TypeError, ValueError) as e:
    raise ValueError(f"--surgery_args: invalid value for {name}: {e}") from None
