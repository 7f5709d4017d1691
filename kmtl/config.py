"""Frozen configuration objects, built once (from flags in `kmtl/run.py`, or in tests) and passed down."""

import dataclasses
import json
import math

from kmtl import grad_space
from kmtl.data import knobs as knobs_lib
from kmtl.data import schema
from kmtl.model_config import ModelConfig  # pylint: disable=unused-import  (part of this API)
from kmtl.surgery import registry
from kmtl.uncertainty_config import UncertaintyConfig

# `independent`: the single-task baseline, one network per task on its own rows.
# `independent_joint`: a control, the same networks trained on the multi-task batch stream.
ARCHITECTURES = ("independent", "independent_joint", "shared", "structured", "mmoe", "ple",
                 "cross_stitch", "task_attention", "groups")
SEPARATE_NETWORKS = ("independent", "independent_joint")
STOPPING_CRITERIA = ("mean_val_loss", "relative_val_loss")
MODEL_SELECTIONS = ("joint", "per_task")
REGRESSION_LOSSES = ("mse", "huber")
TASK_WEIGHTINGS = ("equal", "inverse_count")
GRAD_MODES = ("jacobian", "loop", "batched")
STRATEGIES = ("default", "mirrored", "multiworker")
IMBALANCE_METHODS = ("lds", "fds", "bmse")
KERNEL_FORMS = ("reference", "exact")
LR_SCHEDULES = ("constant", "cosine", "plateau")


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the data comes from and how it is split and batched.

  Attributes:
    path: CSV or Parquet file; None for the embedded synthetic default.
    synthetic_seed: seed of the embedded default (fixed, so runs differ only by their split).
    tasks: the `schema.TaskSpec`s to learn.
    elements: element vocabulary for the fraction features, or "auto" (every element in the data).
    duplicates: "keep" or "drop" exact duplicate rows.
    val_fraction, test_fraction: per-task shares of the labelled rows.
    balanced_sampling: draw training rows so that every task is equally represented.
    group_split: keep every canonical composition in one split (repeated measurements of an
      alloy never leak between train and test).
    average_repeats: collapse repeated compositions into one row with averaged labels.
    feature_set: "composition" (element fractions + the six descriptors), "descriptors" (the
      six only), "magpie" (the six and composition statistics), "composition+magpie", or a
      tuple of numeric column names.
    row_filter: a pandas query keeping matching rows, e.g. room-temperature hardness only.
    composition_convention: how a bracket group's amount applies, "alloy" (its contents are
      normalised and scaled to it) or "chemical" (they are multiplied by it).
    conditions: `ConditionSpec`s of test-condition inputs (kmtl/data/conditions.py).
    cv: (number of folds, held-out fold) for a k-fold split, with a third entry r >= 1 for the
      r-th reshuffle of the compositions into folds (repeated cross-validation); () for the
      seeded split.
    folds: a file of each row's fold (kmtl/data/folds.py) behind `cv`, else KFold's.
    memory_budget_gb: a Parquet table larger than this streams (kmtl/data/streaming.py).
    synthetic_knobs: the synthetic set's knobs (kmtl/data/knobs.py); defaults: the default.
    select_features: keep the K inputs most informative on the training rows
      (kmtl/data/selection.py); 0 keeps every input.
  """
  path: str = None
  synthetic_seed: int = 0
  tasks: tuple = schema.DEFAULT_TASKS
  elements: object = schema.DEFAULT_ELEMENTS
  duplicates: str = "keep"
  val_fraction: float = 0.1
  test_fraction: float = 0.2
  balanced_sampling: bool = False
  group_split: bool = True
  average_repeats: bool = False
  feature_set: object = "composition"
  row_filter: str = None
  composition_convention: str = "alloy"
  conditions: tuple = ()
  cv: tuple = ()
  folds: str = None
  memory_budget_gb: float = 1.0
  synthetic_knobs: knobs_lib.Knobs = knobs_lib.Knobs()
  select_features: int = 0

  def __post_init__(self):
    self.synthetic_knobs.check_source(self.path)
    if self.select_features < 0:
      raise ValueError(f"--select_features={self.select_features}: needs 0 (every input) or "
                       "more")
    if self.synthetic_seed < 0:
      raise ValueError(f"--synthetic_seed must be >= 0. Received: {self.synthetic_seed}")
    if not self.memory_budget_gb >= 0:
      raise ValueError(f"--memory_budget_gb={self.memory_budget_gb}: must be 0 or more")
    for name in ("val_fraction", "test_fraction"):
      value = getattr(self, name)
      if not 0.0 < value < 1.0:
        raise ValueError(f"Invalid value for `{name}`. Expected 0 < value < 1. Received: {value}")
    if self.composition_convention not in schema.COMPOSITION_CONVENTIONS:
      raise ValueError(f"Invalid value for `--composition_convention`: "
                       f"{self.composition_convention!r}. Expected one of "
                       f"{list(schema.COMPOSITION_CONVENTIONS)}.")
    if isinstance(self.feature_set, str) and self.feature_set not in schema.FEATURE_SETS:
      raise ValueError(f"Invalid value for `--features`: {self.feature_set!r}. Expected one "
                       f"of {list(schema.FEATURE_SETS)} or a comma-separated list of columns.")
    if self.val_fraction + self.test_fraction >= 1.0:
      raise ValueError("`val_fraction + test_fraction` must leave rows to train on. Received: "
                       f"{self.val_fraction} + {self.test_fraction}")
    if self.conditions and self.average_repeats:
      raise ValueError("--average_repeats would mix measurements under other --conditions")
    if self.cv and not (len(self.cv) in (2, 3) and self.cv[0] >= 2
                        and 0 <= self.cv[1] < self.cv[0] and (len(self.cv) == 2 or self.cv[2] >= 1)):
      raise ValueError(f"--cv needs 2 or more folds and --cv_fold one of them. Received: {self.cv}")
    if len(self.cv) == 3 and self.folds:
      raise ValueError("--folds: a fold file's folds are fixed; repeats reshuffle --cv's")
    if self.folds and not self.cv:
      raise ValueError("--folds: the fold file's folds set --cv")


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Per-row loss choices.

  Attributes:
    regression: "mse" or "huber" (on standardised targets).
    huber_delta: the Huber threshold, in standard deviations of the target.
    pos_weight: {binary task: weight of its positive rows}; absent tasks use 1.
  """
  regression: str = "mse"
  huber_delta: float = 1.0
  pos_weight: tuple = ()

  def __post_init__(self):
    if self.regression not in REGRESSION_LOSSES:
      raise ValueError(f"Invalid value for `regression`. Expected one of "
                       f"{list(REGRESSION_LOSSES)}. Received: {self.regression!r}")
    if self.huber_delta <= 0:
      raise ValueError(f"`huber_delta` must be > 0. Received: {self.huber_delta}")
    if any(w <= 0 for _, w in self.pos_weight):
      raise ValueError(f"Every `pos_weight` must be > 0. Received: {self.pos_weight}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train.

  Attributes:
    arch: one of `ARCHITECTURES`.
    surgery: a name in `kmtl.surgery.registry.METHODS`.
    surgery_kwargs: ((name, value), ...) hyper-parameters of the method.
    task_weights: "equal", "inverse_count" (from training label counts) or a tuple of numbers.
    epochs, learning_rate, batch_size: Adam's schedule.
    weight_decay: AdamW's decoupled weight decay on kernels (0: Adam).
    lr_schedule: `constant`; `cosine` decay to 0 over `epochs` epochs; or `plateau`: the
      learning rate times `lr_plateau_factor` after `lr_plateau_patience` epochs without an
      improvement of the early-stopping score (kmtl/optimizer.py).
    ema_momentum: keep an exponential moving average of the weights with this momentum and
      validate, stop early and keep the averaged weights (0: none).
    patience, min_delta: epochs without an improvement of min_delta before stopping.
    stopping: `mean_val_loss` or `relative_val_loss` (kmtl/early_stopping.py).
    model_selection: `joint` (the weights of the stopping score's best epoch for every task)
      or `per_task` (each task's metrics from its own best epoch; kmtl/task_selection.py).
    grad_mode: per-task gradients by one `jacobian` (pfor), a `loop` of T gradient calls, or
      one `batched` backward through the trunk (kmtl/grad_space.py).
    grad_space: `parameters` or `representation` (kmtl/grad_space.py).
    jit_compile: compile the training steps with XLA (logged fallback where XLA refuses).
    steps_per_call: training steps per graph call; 0 runs the whole epoch in one call.
    strategy: `default` (one device), `mirrored` (every local GPU, or the logical CPUs) or
      `multiworker` (TF_CONFIG's cluster): see kmtl/distribute.py.
    summaries: compute per-epoch training-split metrics and write TensorBoard summaries.
    grad_stats: gradient norms, cosines and conflict every `grad_stats_every`-th step, and
      after each epoch affinity on `affinity_batches` batches (kmtl/affinity.py).
  """
  arch: str = "shared"
  surgery: str = "none"
  surgery_kwargs: tuple = ()
  task_weights: object = "inverse_count"
  epochs: int = 200
  learning_rate: float = 1e-3
  batch_size: int = 32
  weight_decay: float = 0.0
  lr_schedule: str = "constant"
  lr_plateau_patience: int = 5
  lr_plateau_factor: float = 0.5
  ema_momentum: float = 0.0
  patience: int = 20
  min_delta: float = 0.0
  stopping: str = "mean_val_loss"
  model_selection: str = "joint"
  grad_mode: str = "loop"
  jit_compile: bool = True
  steps_per_call: int = 0
  strategy: str = "default"
  summaries: bool = True
  grad_stats: bool = True
  grad_stats_every: int = 64
  affinity_batches: int = 0
  grad_space: str = "parameters"

  def __post_init__(self):
    if min(self.epochs, self.batch_size, self.patience, self.grad_stats_every) < 1:
      raise ValueError("`epochs`, `batch_size`, `patience` and `grad_stats_every` must be >= 1. "
                       f"Received: {self.epochs}, {self.batch_size}, {self.patience}, "
                       f"{self.grad_stats_every}")
    if self.steps_per_call < 0:
      raise ValueError(f"`steps_per_call` must be >= 0 (0: a whole epoch per call). "
                       f"Received: {self.steps_per_call}")
    if self.affinity_batches < 0:
      raise ValueError(f"--affinity_batches must be >= 0 (0: no sampled affinity). "
                       f"Received: {self.affinity_batches}")
    if not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
      raise ValueError(f"Invalid value for `learning_rate`. Expected > 0. Received: "
                       f"{self.learning_rate}")
    if not 0.0 <= self.weight_decay < math.inf:
      raise ValueError(f"--weight_decay={self.weight_decay}: expected a number >= 0")
    if not 0.0 <= self.ema_momentum < 1.0:
      raise ValueError(f"--ema={self.ema_momentum}: expected a momentum with 0 <= momentum < 1 "
                       "(0: no moving average)")
    if not 0.0 < self.lr_plateau_factor < 1.0:
      raise ValueError(f"--lr_plateau_factor={self.lr_plateau_factor}: expected 0 < factor < 1")
    if self.lr_schedule == "plateau" and not 1 <= self.lr_plateau_patience < self.patience:
      raise ValueError(f"--lr_plateau_patience={self.lr_plateau_patience}: expected at least 1 "
                       f"and less than --patience={self.patience}, or early stopping ends the "
                       "run before the learning rate drops")
    for name, choices in (("strategy", STRATEGIES), ("grad_mode", GRAD_MODES),
                          ("lr_schedule", LR_SCHEDULES),
                          ("arch", ARCHITECTURES), ("stopping", STOPPING_CRITERIA),
                          ("model_selection", MODEL_SELECTIONS)):
      if getattr(self, name) not in choices:
        raise ValueError(f"Invalid value for `{name}`. Expected one of {list(choices)}. "
                         f"Received: {getattr(self, name)!r}")
    registry.check_name(self.surgery)
    if self.arch in SEPARATE_NETWORKS and self.surgery != "none":
      raise ValueError(f"--surgery={self.surgery} needs shared parameters; "
                       f"--arch={self.arch} has none (use --surgery=none).")


@dataclasses.dataclass(frozen=True)
class ImbalanceConfig:
  """Deep imbalanced regression (kmtl/imbalance), for regression tasks.

  Attributes:
    methods: any of "lds", "fds", "bmse" ("bmse" replaces reweighting, so not with "lds").
    tasks: the regression tasks they apply to; empty means every regression task.
    bins: equal-width label bins over each task's training labels (model units).
    kernel, kernel_size, sigma: the smoothing window (the paper's gaussian, 5, 2).
    kernel_form: `reference` (the paper's code: a Gaussian filter of a delta, zero padding for
      LDS, mirrored ends for FDS; the default, with which the study is reproduced) or `exact`
      (the exact Gaussian, end bins repeated); see kmtl/imbalance/smoothing.py.
    reweight: LDS "sqrt_inv" (the paper's default) or "inverse".
    fds_momentum, fds_start_epoch: FDS running-statistics momentum and first calibrated epoch.
    bmse_init_noise: Balanced MSE's initial noise sigma (model units).
  """
  methods: tuple = ()
  tasks: tuple = ()
  bins: int = 50
  kernel: str = "gaussian"
  kernel_size: int = 5
  sigma: float = 2.0
  kernel_form: str = "reference"
  reweight: str = "sqrt_inv"
  fds_momentum: float = 0.9
  fds_start_epoch: int = 2
  bmse_init_noise: float = 1.0

  def __post_init__(self):
    unknown = [m for m in self.methods if m not in IMBALANCE_METHODS]
    if unknown:
      raise ValueError(f"Invalid value for `--imbalance`: {unknown[0]!r}. Expected a "
                       f"comma-separated subset of {list(IMBALANCE_METHODS)}.")
    if len(set(self.methods)) != len(self.methods):
      raise ValueError(f"`--imbalance` lists a method twice: {list(self.methods)}")
    if "bmse" in self.methods and "lds" in self.methods:
      raise ValueError("`--imbalance=lds,bmse` is not a valid combination: Balanced MSE "
                       "already corrects for the label distribution (combine it with fds).")
    if self.kernel_form not in KERNEL_FORMS:
      raise ValueError(f"Invalid value for `--lds_kernel_form`: {self.kernel_form!r}. "
                       f"Expected one of {list(KERNEL_FORMS)}.")
    if self.bins < 2 or self.kernel_size < 1 or self.kernel_size % 2 == 0 or self.sigma <= 0:
      raise ValueError("Imbalance settings need bins >= 2, an odd kernel size and sigma > 0. "
                       f"Received: {self.bins}, {self.kernel_size}, {self.sigma}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One run: data, model, losses, training, uncertainty, seed, working directory, whether to
  resume, and whether to also fit the gradient-boosting baseline on the same split."""
  data: DataConfig = DataConfig()
  model: ModelConfig = ModelConfig()
  loss: LossConfig = LossConfig()
  train: TrainConfig = TrainConfig()
  imbalance: ImbalanceConfig = ImbalanceConfig()
  uncertainty: UncertaintyConfig = UncertaintyConfig()
  seed: int = 0
  workdir: str = None
  resume: bool = False
  baseline_gbm: bool = False

  def __post_init__(self):
    if self.seed < 0:
      raise ValueError(f"--seed must be >= 0. Received: {self.seed}")
    names = [t.name for t in self.data.tasks]
    unknown = [t for t in self.imbalance.tasks if t not in names]
    if unknown:
      raise ValueError(f"--imbalance_tasks: {unknown[0]!r} is not one of --tasks {names}")
    kinds = {t.name: t.kind for t in self.data.tasks if t.kind != schema.REGRESSION}
    classified = [t for t in self.imbalance.tasks if t in kinds]
    if classified:
      raise ValueError(f"--imbalance_tasks: task {classified[0]!r} is {kinds[classified[0]]}; "
                       "LDS, FDS and Balanced MSE apply to regression tasks")
    if self.imbalance.methods and len(kinds) == len(names):
      raise ValueError(f"--imbalance={','.join(self.imbalance.methods)} needs a regression "
                       "task; every task here is a classification")
    weights = self.train.task_weights
    if not isinstance(weights, str) and len(weights) != len(names):
      raise ValueError(f"--task_weights: expected {len(names)} numbers, one per task. "
                       f"Received: {','.join(map(str, weights))!r}")
    whole_batch = sorted(set(self.imbalance.methods) & {"fds", "bmse"})
    if self.train.strategy != "default" and whole_batch:
      raise ValueError(f"--strategy={self.train.strategy} cannot split "
                       f"--imbalance={','.join(whole_batch)} across replicas (they work on "
                       "whole batches); LDS can")
    if self.data.select_features and self.train.grad_mode == "batched":
      raise ValueError("--grad_mode=batched differentiates the trunk from the raw inputs; "
                       "--select_features picks columns first (use --grad_mode=loop)")
    self.model.check_arch(self.train.arch)
    self.model.check_groups_of(self.train.arch, self.train.surgery, names)
    grad_space.check(self.train, self.imbalance, self.model)
    self.uncertainty.check(self.data.tasks, self.model, self.loss, self.imbalance,
                           self.train)


def flatten(config):
  """{"section.field": JSON value} of a config, or of its JSON form as `to_json` writes it."""
  def walk(value, prefix):
    if isinstance(value, dict):
      out = {}
      for key, item in value.items():
        out.update(walk(item, f"{prefix}{key}."))
      return out
    return {prefix[:-1]: value}
  if dataclasses.is_dataclass(config):
    config = json.loads(to_json(config))
  return walk(config, "")


def differences(recorded, expected):
  """Sorted names of the settings whose values differ between two flattened configs. A setting
  that the recorded config predates counts as recorded at its default."""
  recorded = {**{k: v for k, v in flatten(RunConfig()).items() if k in expected},
              **(recorded or {})}
  return sorted(k for k in set(recorded) | set(expected) if recorded.get(k) != expected.get(k))


def to_json(config):
  """The config as indented JSON, for `workdir/config.json`."""
  return json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True, default=str)
