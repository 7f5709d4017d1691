"""The hyper-parameter search space of `kmtl tune` and of a tuned study: each parameter's range
and scale, the methods' own parameters, the task weights of the plain sum, overrides from
`--search_space`, and how a trial's values become a run configuration.

Default space (every configuration of a study gets the same one, plus its method's own):

    lr            1e-4 .. 1e-2, log          trunk_width   64 | 128 | 256
    weight_decay  0, or 1e-6 .. 1e-2, log    trunk_depth   1 .. 3 (not for ple, whose levels
    dropout       0 .. 0.5                                are the trunk's two layers)
    batch_size    32 | 64 | 128              head_width    32 | 64 | 128

The gradient-boosting reference `gbm` searches its own (`GBM_PARAMETERS`: learning rate,
iterations, leaves, samples per leaf, L2). Method parameters (`method.NAME`) are in
`METHOD_PARAMETERS`; with `--surgery=none` each task's
weight is tuned as a factor 0.1 .. 10 (log) on the run's `--task_weights` (`task_weight.TASK`).
`--search_space` overrides entries, comma-separated: `NAME=LOW:HIGH` (uniform), `NAME=LOW:HIGH:
log`, `NAME=LOW:HIGH:int`, `NAME=A|B|C` (choices), `NAME=VALUE` (fixed, not searched) or
`NAME=off` (not searched: the run's own setting stays).
"""

import dataclasses
import math

SEPARATE = ("independent", "independent_joint")


@dataclasses.dataclass(frozen=True)
class Parameter:
  """One searched parameter: a range (`log`, `integer` scale) or a tuple of `choices`;
  `zero` adds the value 0 beside a log range (as a separate choice)."""
  name: str
  low: float = None
  high: float = None
  log: bool = False
  integer: bool = False
  choices: tuple = ()
  zero: bool = False

  def __post_init__(self):
    if self.choices:
      return
    if self.low is None or self.high is None or not self.low < self.high:
      raise ValueError(f"--search_space: {self.name}: empty or inverted range "
                       f"{self.low}:{self.high}")
    if self.log and self.low <= 0:
      raise ValueError(f"--search_space: {self.name}: a log range needs LOW > 0")

  def suggest(self, trial):
    """This parameter's value in an Optuna trial."""
    if self.choices:
      return trial.suggest_categorical(self.name, list(self.choices))
    if self.zero and trial.suggest_categorical(f"{self.name}.zero", [True, False]):
      return 0.0
    if self.integer:
      return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
    return trial.suggest_float(self.name, self.low, self.high, log=self.log)

  def describe(self):
    if self.choices:
      return " | ".join(map(str, self.choices))
    scale = ", log" if self.log else ", integer" if self.integer else ""
    return f"{'0, or ' if self.zero else ''}{self.low:g} .. {self.high:g}{scale}"


DEFAULT = (
    Parameter("lr", 1e-4, 1e-2, log=True),
    Parameter("weight_decay", 1e-6, 1e-2, log=True, zero=True),
    Parameter("dropout", 0.0, 0.5),
    Parameter("batch_size", choices=(32, 64, 128)),
    Parameter("trunk_width", choices=(64, 128, 256)),
    Parameter("trunk_depth", 1, 3, integer=True),
    Parameter("head_width", choices=(32, 64, 128)),
)

# Ranges around each paper's recommended value, for the methods that have a parameter to tune.
METHOD_PARAMETERS = {
    "cagrad": (Parameter("method.c", 0.0, 0.9),),
    "db_mtl": (Parameter("method.beta", 0.5, 0.99),),
    "dwa": (Parameter("method.temperature", 0.5, 5.0, log=True),),
    "excess_mtl": (Parameter("method.step_size", 1e-3, 1e-1, log=True),),
    "fairgrad": (Parameter("method.alpha", 0.1, 5.0, log=True),),
    "famo": (Parameter("method.gamma", 1e-4, 1e-2, log=True),),
    "graddrop": (Parameter("method.leak", 0.0, 1.0),),
    "gradnorm": (Parameter("method.alpha", 0.0, 3.0),),
    "gradscale": (Parameter("method.momentum", 0.0, 0.99),),
    "gradvac": (Parameter("method.beta", 1e-3, 1e-1, log=True),),
    "stch": (Parameter("method.mu", 0.1, 10.0, log=True),),
}
TASK_WEIGHT_RANGE = (0.1, 10.0)

# The gradient-boosting reference (scikit-learn's histogram boosting), tuned with the same
# budget and objective as the networks.
GBM = "gbm"
GBM_PARAMETERS = (
    Parameter("gbm.learning_rate", 0.01, 0.3, log=True),
    Parameter("gbm.max_iter", 50, 500, log=True, integer=True),
    Parameter("gbm.max_leaf_nodes", 7, 63, log=True, integer=True),
    Parameter("gbm.min_samples_leaf", 2, 50, log=True, integer=True),
    Parameter("gbm.l2_regularization", 1e-4, 10.0, log=True, zero=True),
)


def gbm_params(values):
  """A trial's `gbm.*` values as the boosting models' keyword arguments."""
  return {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("gbm.")}


def _number(text, entry):
  try:
    value = float(text)
  except ValueError:
    raise ValueError(f"--search_space: {entry!r}: {text!r} is not a number") from None
  if not math.isfinite(value):
    raise ValueError(f"--search_space: {entry!r}: {text!r} is not finite")
  return value


def _choice(text):
  try:
    value = float(text)
  except ValueError:
    return text
  return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def parse_overrides(text):
  """`--search_space` -> {name: Parameter, a fixed value, or None for off}."""
  overrides = {}
  for entry in (e.strip() for e in (text or "").split(",")):
    if not entry:
      continue
    name, sep, value = entry.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
      raise ValueError(f"--search_space: {entry!r}: expected NAME=LOW:HIGH[:log|:int], "
                       "NAME=A|B, NAME=VALUE or NAME=off")
    if name in overrides:
      raise ValueError(f"--search_space: {name} is given twice")
    if value == "off":
      overrides[name] = None
    elif "|" in value:
      choices = tuple(_choice(c.strip()) for c in value.split("|"))
      if any(c == "" for c in choices):
        raise ValueError(f"--search_space: {entry!r}: an empty choice")
      overrides[name] = Parameter(name, choices=choices)
    elif ":" in value:
      parts = value.split(":")
      scale = parts[2] if len(parts) == 3 else ""
      if len(parts) not in (2, 3) or scale not in ("", "log", "int"):
        raise ValueError(f"--search_space: {entry!r}: expected LOW:HIGH, LOW:HIGH:log or "
                         "LOW:HIGH:int")
      overrides[name] = Parameter(name, _number(parts[0], entry), _number(parts[1], entry),
                                  log=scale == "log", integer=scale == "int")
    else:
      overrides[name] = ("fixed", _choice(value))
  return overrides


def parameters(arch, surgery, task_names, overrides=None):
  """The searched parameters of one configuration, with `overrides` (`parse_overrides`)
  applied; a ValueError names an override that is not a parameter of it."""
  space = {p.name: p for p in (GBM_PARAMETERS if arch == GBM else DEFAULT)}
  if arch == "ple":
    space.pop("trunk_depth")
  space.update({p.name: p for p in METHOD_PARAMETERS.get(surgery, ())})
  if surgery == "none" and arch not in SEPARATE + (GBM,) and len(task_names) > 1:
    space.update({f"task_weight.{t}": Parameter(f"task_weight.{t}", *TASK_WEIGHT_RANGE, log=True)
                  for t in task_names})
  fixed = {}
  for name, value in (overrides or {}).items():
    if name not in space and not _known_elsewhere(name, task_names):
      raise ValueError(f"--search_space: unknown parameter {name!r}; expected one of "
                       f"{sorted(space)}")
    if name not in space:
      continue  # a parameter of another configuration of the study
    if value is None:
      space.pop(name)
    elif isinstance(value, tuple) and value[:1] == ("fixed",):
      space.pop(name)
      fixed[name] = value[1]
    else:
      space[name] = value
  return tuple(space.values()), fixed


def _known_elsewhere(name, task_names):
  """Whether `name` is a parameter of some configuration (another method's, a task weight)."""
  if name in {p.name for p in DEFAULT + GBM_PARAMETERS}:
    return True
  if any(name == p.name for params in METHOD_PARAMETERS.values() for p in params):
    return True
  return name in {f"task_weight.{t}" for t in task_names}


def apply(cfg, values, base_weights):
  """`cfg` (a `config.RunConfig`) with a trial's `values` {name: value}; `base_weights` are the
  run's task weights as numbers, which `task_weight.TASK` factors multiply."""
  model, train = {}, {}
  if "lr" in values:
    train["learning_rate"] = float(values["lr"])
  if "weight_decay" in values:
    train["weight_decay"] = float(values["weight_decay"])
  if "batch_size" in values:
    train["batch_size"] = int(values["batch_size"])
  if "dropout" in values:
    model["dropout"] = float(values["dropout"])
  if "trunk_width" in values or "trunk_depth" in values:
    width = int(values.get("trunk_width", cfg.model.trunk_units[0]))
    depth = int(values.get("trunk_depth", len(cfg.model.trunk_units)))
    model["trunk_units"] = (width,) * depth
  if "head_width" in values:
    model["head_units"] = (int(values["head_width"]),) * len(cfg.model.head_units)
  method = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("method.")}
  if method:
    train["surgery_kwargs"] = tuple(sorted({**dict(cfg.train.surgery_kwargs), **method}.items()))
  names = [t.name for t in cfg.data.tasks]
  if any(k.startswith("task_weight.") for k in values):
    train["task_weights"] = tuple(float(w) * float(values.get(f"task_weight.{n}", 1.0))
                                  for n, w in zip(names, base_weights))
  return dataclasses.replace(
      cfg, model=dataclasses.replace(cfg.model, **model),
      train=dataclasses.replace(cfg.train, **train))
