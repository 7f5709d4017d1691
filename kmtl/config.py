"""Frozen configuration objects, built once (from flags in `kmtl/run.py`, or in tests) and passed down."""

import dataclasses
import json

from kmtl.data import schema


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
    batch_size: training batch size.
    balanced_sampling: draw training rows so that every task is equally represented.
  """
  path: str = None
  synthetic_seed: int = 0
  tasks: tuple = schema.DEFAULT_TASKS
  elements: object = schema.DEFAULT_ELEMENTS
  duplicates: str = "keep"
  val_fraction: float = 0.1
  test_fraction: float = 0.2
  batch_size: int = 32
  balanced_sampling: bool = False

  def __post_init__(self):
    for name in ("val_fraction", "test_fraction"):
      value = getattr(self, name)
      if not 0.0 < value < 1.0:
        raise ValueError(f"Invalid value for `{name}`. Expected 0 < value < 1. Received: {value}")
    if self.val_fraction + self.test_fraction >= 1.0:
      raise ValueError("`val_fraction + test_fraction` must leave rows to train on. Received: "
                       f"{self.val_fraction} + {self.test_fraction}")
    if self.batch_size < 1:
      raise ValueError(f"Invalid value for `batch_size`. Expected >= 1. Received: "
                       f"{self.batch_size}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One run: its data, seed and working directory."""
  data: DataConfig = DataConfig()
  seed: int = 0
  workdir: str = None


def to_json(config):
  """The config as indented JSON, for `workdir/config.json`."""
  return json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True, default=str)
