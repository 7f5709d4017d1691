"""Label distribution smoothing (Yang et al., ICML 2021, arXiv:2102.09554, section 3.1).

Per regression task, over its training labels (in model units, after the target transform and
standardisation): count the labels in equal-width bins; with `sqrt_inv` take the square root of
the counts (with `inverse` keep them); convolve with a max-normalised symmetric kernel; weight
each row by 1 / its bin's smoothed count; rescale so that the weights average 1 over the
labelled rows. Rows without a label get weight 0 (they are masked anyway).

The `reference` form (the default) is the paper's code: its Gaussian kernel is a Gaussian
filter of a delta (flatter than the exact Gaussian) and the convolution pads with zeros. The
`exact` form uses the exact Gaussian and repeats the end bins (see `smoothing`).
"""

import numpy as np

from kmtl.imbalance import smoothing

REWEIGHTS = ("sqrt_inv", "inverse")


def smoothed_density(labels, edges, reweight="sqrt_inv", kernel="gaussian", size=5,
                     sigma=2.0, form="reference"):
  """[bins] smoothed (square-rooted) label counts."""
  if reweight not in REWEIGHTS:
    raise ValueError(f"Invalid LDS reweighting {reweight!r}. Expected one of {list(REWEIGHTS)}.")
  counts = np.bincount(smoothing.bin_index(labels, edges), minlength=len(edges) - 1)
  counts = np.sqrt(counts) if reweight == "sqrt_inv" else counts.astype(np.float64)
  padding = "constant" if form == "reference" else "edge"
  return smoothing.smooth(counts, smoothing.kernel_window(kernel, size, sigma, form), padding)


def lds_weights(labels, mask, num_bins=50, reweight="sqrt_inv", kernel="gaussian", size=5,
                sigma=2.0, form="reference"):
  """[n] per-row weights for one task's training rows (`mask` 1 where labelled)."""
  mask = np.asarray(mask) > 0
  labels = np.asarray(labels, np.float64)
  weights = np.zeros(len(labels))
  if not mask.any():
    return weights
  edges = smoothing.bin_edges(labels[mask], num_bins)
  density = smoothed_density(labels[mask], edges, reweight, kernel, size, sigma, form)
  raw = 1.0 / density[smoothing.bin_index(labels[mask], edges)]
  weights[mask] = raw / raw.mean()
  return weights
