"""The model section of the run configuration: layer sizes, regularisation, and the settings of
the structured and adaptive-sharing architectures (kmtl/models.py, kmtl/adaptive.py)."""

import dataclasses
import math

PLE_LEVELS = (1, 2)
# Compute precisions: float32, or bfloat16 matmuls and activations with float32 variables,
# heads and losses (the Keras "mixed_bfloat16" policy).
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# Architectures whose hidden layers are experts (kmtl/adaptive.py), not Dense layers.
EXPERT_ARCHS = ("mmoe", "ple", "cross_stitch")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Layer sizes and optional regularisation (all off by default, as in the reference).

  Attributes:
    trunk_units, head_units: the shared trunk's and each task tower's widths.
    dropout: the dropout rate after every hidden layer, or a tuple of rates, one per hidden
      level: the trunk's levels (or experts' levels) first, then the towers'.
    l2: a coupled L2 penalty on kernels, added to the loss.
    input_noise: the standard deviation of Gaussian noise added to the (standardised) features
      while training.
    layer_norm: normalise each hidden Dense layer's pre-activations over its units (learned
      scale and offset), as Dense -> LayerNorm -> ReLU.
    graph_init, graph_sparsity: the structured model's task graph (kmtl/models.py).
    experts: expert networks of `mmoe`, and shared experts per level of `ple`.
    task_experts: task-specific experts per task and level of `ple`.
    ple_levels: extraction levels of `ple` (1: experts of the trunk's depth; 2: one layer each).
    groups: task groups of `groups`, e.g. (("resistivity",), ("hardness", "amorphous")).
    precision: `float32` or `bfloat16` (see `PRECISIONS`).
  """
  trunk_units: tuple = (128, 128)
  head_units: tuple = (64,)
  dropout: object = 0.0
  l2: float = 0.0
  input_noise: float = 0.0
  layer_norm: bool = False
  graph_init: float = 4.0
  graph_sparsity: float = 0.0
  experts: int = 4
  task_experts: int = 1
  ple_levels: int = 2
  groups: tuple = ()
  precision: str = "float32"

  def __post_init__(self):
    if self.precision not in PRECISIONS:
      raise ValueError(f"--precision={self.precision}: expected one of {list(PRECISIONS)}")
    if not self.trunk_units or not self.head_units or min(self.trunk_units + self.head_units) < 1:
      raise ValueError("Invalid layer sizes: `trunk_units` and `head_units` need positive sizes. "
                       f"Received: {self.trunk_units}, {self.head_units}")
    rates = self.dropout if isinstance(self.dropout, tuple) else (self.dropout,)
    if not all(0.0 <= r < 1.0 for r in rates):
      raise ValueError(f"--dropout={','.join(map(str, rates))}: every rate needs "
                       "0 <= rate < 1")
    levels = len(self.trunk_units) + len(self.head_units)
    if isinstance(self.dropout, tuple) and len(self.dropout) != levels:
      raise ValueError(f"--dropout: {len(self.dropout)} rates for {levels} hidden levels "
                       f"(trunk {list(self.trunk_units)}, towers {list(self.head_units)}); give "
                       "one rate, or one per level")
    if self.l2 < 0 or self.graph_sparsity < 0:
      raise ValueError("`l2` and `graph_sparsity` must be >= 0.")
    if not 0.0 <= self.input_noise < math.inf:
      raise ValueError(f"--input_noise={self.input_noise}: expected a standard deviation >= 0")
    if self.experts < 1 or self.task_experts < 1:
      raise ValueError(f"--experts and --task_experts must be >= 1. Received: {self.experts}, "
                       f"{self.task_experts}")
    if self.ple_levels not in PLE_LEVELS:
      raise ValueError(f"--ple_levels must be one of {list(PLE_LEVELS)}. Received: "
                       f"{self.ple_levels}")

  def dropout_at(self, level):
    """The dropout rate after hidden level `level` (trunk levels first, then the towers')."""
    return self.dropout[level] if isinstance(self.dropout, tuple) else self.dropout

  @property
  def has_dropout(self):
    """Whether any hidden level drops units."""
    rates = self.dropout if isinstance(self.dropout, tuple) else (self.dropout,)
    return max(rates) > 0

  def check_arch(self, arch):
    """A ValueError when a setting cannot apply to `arch`."""
    if arch == "ple" and self.ple_levels == 2 and len(self.trunk_units) != 2:
      raise ValueError("--ple_levels=2 gives each level one layer of a two-layer trunk; "
                       f"the trunk has {len(self.trunk_units)} (--trunk_units)")
    if self.layer_norm and arch in EXPERT_ARCHS:
      raise ValueError(f"--layer_norm normalises Dense layers; the experts of --arch={arch} "
                       "have none (use it with shared, structured, task_attention, groups or "
                       "the separate networks)")

  def check_groups_of(self, arch, surgery, task_names):
    """--groups goes with --arch=groups, puts every task in one group, and leaves something
    shared for a surgery method to act on."""
    if arch != "groups":
      if self.groups:
        raise ValueError(f"--groups applies to --arch=groups, not --arch={arch}")
      return
    if not self.groups:
      raise ValueError("--arch=groups needs --groups, e.g. 'resistivity|hardness,amorphous'")
    self.check_groups(task_names)
    if surgery != "none" and max(map(len, self.groups)) < 2:
      raise ValueError(f"--surgery={surgery} needs shared parameters; groups of one task share "
                       "none (use --surgery=none).")

  def check_groups(self, task_names):
    """A ValueError unless `groups` puts every task in exactly one group (when given)."""
    if not self.groups:
      return
    listed = [t for group in self.groups for t in group]
    unknown = [t for t in listed if t not in task_names]
    if unknown:
      raise ValueError(f"--groups: {unknown[0]!r} is not one of --tasks {list(task_names)}")
    twice = sorted({t for t in listed if listed.count(t) > 1})
    if twice:
      raise ValueError(f"--groups: task {twice[0]!r} is in more than one group")
    left_out = [t for t in task_names if t not in listed]
    if left_out:
      raise ValueError(f"--groups leaves out task {left_out[0]!r}: every task needs a group")
