"""The data contract: feature names and order, and tasks as data (name, kind, unit, transform).

Features are the elemental fractions over an element vocabulary (15 elements by default), then
six physical descriptors; the input width is `len(elements) + 6` (21 for the reference).
"""

import dataclasses
import difflib

# How the amount after a bracket group in a composition applies (featurize.parse_composition):
# "alloy" normalises the group's contents and scales them to it, "chemical" multiplies them.
COMPOSITION_CONVENTIONS = ("alloy", "chemical")

DEFAULT_ELEMENTS = ("Al", "Co", "Cr", "Cu", "Fe", "Ni", "Mo", "Ti", "W", "Nb", "Ta", "V", "Mn",
                    "Hf", "Zr")

# Column name -> meaning and unit. Definitions in kmtl/data/featurize.py.
DESCRIPTORS = (
    ("atomic_size_mismatch_pct", "atomic size mismatch delta, %"),
    ("electronegativity_difference", "Pauling electronegativity difference"),
    ("vec", "valence electron concentration"),
    ("mixing_entropy_j_mol_k", "ideal mixing entropy, J/(mol K)"),
    ("mixing_enthalpy_kj_mol", "mixing enthalpy, kJ/mol"),
    ("melting_point_k", "mean melting point, K"),
)
DESCRIPTOR_NAMES = tuple(name for name, _ in DESCRIPTORS)

# Physical ranges of the descriptors given as columns (a value outside is a data error): delta
# is a percentage; Pauling electronegativities lie in 0.7-4.0; no element has more than 18
# valence electrons; ideal mixing entropy is at most R ln 118 = 39.7 J/(mol K); Takeuchi-Inoue
# pair enthalpies lie within +-200 kJ/mol; no element melts above 4,100 K.
DESCRIPTOR_LIMITS = {
    "atomic_size_mismatch_pct": (0.0, 100.0),
    "electronegativity_difference": (0.0, 3.3),
    "vec": (0.0, 18.0),
    "mixing_entropy_j_mol_k": (0.0, 39.7),
    "mixing_enthalpy_kj_mol": (-200.0, 200.0),
    "melting_point_k": (0.0, 4100.0),
}

REGRESSION = "regression"
BINARY = "binary"
MULTICLASS = "multiclass"
KINDS = (REGRESSION, BINARY, MULTICLASS)
CLASSIFICATION = (BINARY, MULTICLASS)
TRANSFORMS = ("none", "log")
# Named feature sets (kmtl/data/validation.py); a tuple of column names is the other kind.
FEATURE_SETS = ("composition", "descriptors", "magpie", "composition+magpie", "magpie_preset",
                "composition+magpie_preset")


class SchemaError(ValueError):
  """A task or feature specification that cannot be used."""


def feature_names(elements=DEFAULT_ELEMENTS):
  """The model's input columns in order: one fraction per element, then the descriptors."""
  return tuple(elements) + DESCRIPTOR_NAMES


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One prediction target.

  Attributes:
    name: the target column in the data, and the model output's name.
    kind: `regression`, `binary` or `multiclass`.
    unit: unit of the target in the data, for reports.
    transform: `none` or `log` (natural log before standardisation; labels must be > 0).
    nonnegative: labels below 0 are a data error (a resistivity or a hardness).
    upper_limit: labels above it are a data error (a hardness above diamond's), or None.
    classes: a multiclass task's class names, in output order; empty until given in the spec
      or read from the data (`with_classes`). A label is stored as its class index.
  """
  name: str
  kind: str = REGRESSION
  unit: str = ""
  transform: str = "none"
  nonnegative: bool = False
  upper_limit: float = None
  classes: tuple = ()

  def __post_init__(self):
    if not self.name.isidentifier():
      raise SchemaError(f"Invalid task name {self.name!r}: use letters, digits and underscores.")
    if self.kind not in KINDS:
      raise SchemaError(f"Invalid kind {self.kind!r} for task {self.name!r}. "
                        f"Expected one of {list(KINDS)}.")
    if self.transform not in TRANSFORMS:
      raise SchemaError(f"Invalid transform {self.transform!r} for task {self.name!r}. "
                        f"Expected one of {list(TRANSFORMS)}.")
    if self.kind == BINARY and self.transform != "none":
      raise SchemaError(f"Task {self.name!r} is {self.kind} and cannot take transform "
                        f"{self.transform!r}.")
    if self.kind != MULTICLASS and self.classes:
      raise SchemaError(f"Task {self.name!r} is {self.kind}; only a multiclass task lists "
                        "classes.")
    if len(set(self.classes)) != len(self.classes) or "" in self.classes:
      raise SchemaError(f"Task {self.name!r}: classes {list(self.classes)} must be distinct "
                        "and non-empty.")

  @property
  def num_outputs(self):
    """Width of the model's output: one logit per class for a multiclass task, else 1."""
    return len(self.classes) if self.kind == MULTICLASS else 1


DEFAULT_TASKS = (
    TaskSpec("resistivity", REGRESSION, "micro-ohm cm", "log", nonnegative=True),
    # Diamond, the hardest known material, is about 10,000 HV.
    TaskSpec("hardness", REGRESSION, "HV", "none", nonnegative=True, upper_limit=15000.0),
    TaskSpec("amorphous", BINARY, "", "none"),
)
# Known by name beside the defaults: the synthetic set's optional task (kmtl/data/knobs.py).
EXTRA_TASKS = (TaskSpec("thermal_conductivity", REGRESSION, "W/(m K)", "log", nonnegative=True),)
_KNOWN = {task.name: task for task in DEFAULT_TASKS + EXTRA_TASKS}


def parse_tasks(text):
  """Parses `--tasks`: comma-separated `name` (a default task), `name:kind[:transform[:unit]]`
  or `name:multiclass[:class|class|...]` (classes in output order; default: those in the data).

  Example: `resistivity,hardness,yield_strength:regression:log:MPa,phase:multiclass:BCC|FCC|other`.
  """
  specs = []
  for item in (part.strip() for part in text.split(",")):
    if not item:
      continue
    name, *rest = item.split(":")
    if not rest:
      if name not in _KNOWN:
        hint = difflib.get_close_matches(name, list(_KNOWN), n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise SchemaError(f"Unknown task {name!r}: give its kind, e.g. '{name}:regression', or "
                          f"use one of {list(_KNOWN)}.{extra}")
      specs.append(_KNOWN[name])
      continue
    if len(rest) > 3:
      raise SchemaError(f"Invalid task {item!r}: expected name:kind[:transform[:unit]].")
    if rest[0] == MULTICLASS:
      if len(rest) > 2:
        raise SchemaError(f"Invalid task {item!r}: expected name:multiclass[:class|class|...].")
      classes = tuple(c.strip() for c in rest[1].split("|")) if len(rest) > 1 else ()
      if len(classes) == 1:
        raise SchemaError(f"Task {name!r} lists one class {classes[0]!r}: a multiclass task "
                          "needs at least 2.")
      specs.append(TaskSpec(name, MULTICLASS, classes=classes))
      continue
    kind = rest[0]
    transform = rest[1] if len(rest) > 1 and rest[1] else "none"
    unit = rest[2] if len(rest) > 2 else ""
    specs.append(TaskSpec(name, kind, unit, transform, nonnegative=transform == "log"))
  names = [spec.name for spec in specs]
  if not specs:
    raise SchemaError("No task given.")
  if len(set(names)) != len(names):
    raise SchemaError(f"A task is listed twice in {names}.")
  return tuple(specs)
