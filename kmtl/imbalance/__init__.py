"""Deep imbalanced regression: LDS (label reweighting), FDS (feature smoothing), Balanced MSE."""
