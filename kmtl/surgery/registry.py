"""Method names (the `--surgery` values) -> the classes that implement them. The only place the
names are listed. Importing this module loads no TensorFlow, so flags are checked before it."""

import ast
import importlib
import os

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


def hyper_parameters(name):
  """{hyper-parameter: default} of method `name`'s constructor, read from its source (and
  its base classes' in this package) without importing it, so without TensorFlow."""
  check_name(name)
  module, cls = METHODS[name].split(".")
  while True:
    path = os.path.join(os.path.dirname(__file__), f"{module}.py")
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef)
                 and n.name == "__init__"), None)
    if init is not None:
      args = init.args.args[1:]
      defaults = [ast.literal_eval(d) for d in init.args.defaults]
      return {a.arg: d for a, d in zip(args[len(args) - len(defaults):], defaults)}
    parent = node.bases[0] if node.bases else None
    if isinstance(parent, ast.Attribute) and isinstance(parent.value, ast.Name):
      module, cls = parent.value.id, parent.attr  # e.g. base.LossWeighting
    elif isinstance(parent, ast.Name) and parent.id not in ("object",):
      cls = parent.id
    else:
      return {}
    if not os.path.exists(os.path.join(os.path.dirname(__file__), f"{module}.py")):
      return {}  # a class outside this package (tf.Module): no hyper-parameters


def check_arguments(name, kwargs):
  """One-line errors, before TensorFlow loads, for hyper-parameters method `name` does not
  take and for text where it takes a number (ranges are the constructor's to check)."""
  defaults = hyper_parameters(name)
  unknown = sorted(set(kwargs) - set(defaults))
  if unknown:
    raise ValueError(f"--surgery_args: {name} takes {list(defaults) or 'no hyper-parameters'}, "
                     f"not {unknown}")
  for key, value in kwargs.items():
    default = defaults[key]
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
      raise ValueError(f"--surgery_args: {name}'s {key} takes a number. Received: {value!r}")


def method_class(name):
  """The class registered as `name` (importing its module, and TensorFlow)."""
  check_name(name)
  module, cls = METHODS[name].split(".")
  return getattr(importlib.import_module(f"kmtl.surgery.{module}"), cls)


def create(name, **kwargs):
  """A new, unbuilt method; unknown names or hyper-parameters get a one-line error."""
  check_arguments(name, kwargs)
  cls = method_class(name)
  try:
    return cls(**kwargs)
  except (TypeError, ValueError) as e:
    raise ValueError(f"--surgery_args: invalid value for {name}: {e}") from None
