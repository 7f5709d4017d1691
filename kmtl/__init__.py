"""kmtl: multi-task learning on tabular alloy data, measured against single-task baselines."""

__version__ = "0.1.0"
