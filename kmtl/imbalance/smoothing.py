"""Label bins and the symmetric kernels LDS and FDS smooth over (Yang et al., "Delving into
Deep Imbalanced Regression", ICML 2021, arXiv:2102.09554)."""

import numpy as np
from scipy import ndimage

KERNELS = ("gaussian", "triangular", "laplace")
# `reference`: the kernels and padding of the paper's published code, with which its results
# were reported; `exact`: the exact Gaussian and edge padding.
FORMS = ("reference", "exact")
PADDINGS = ("edge", "constant", "reflect")


def kernel_window(kind="gaussian", size=5, sigma=2.0, form="exact"):
  """[size] symmetric window with peak 1 (the paper's max-normalised LDS kernels).

  gaussian, `exact`: exp(-x^2 / (2 sigma^2)); gaussian, `reference`: a Gaussian filter
  (scipy.ndimage.gaussian_filter1d, reflecting at the ends) applied to a delta of `size` taps,
  which is flatter: [0.858, 0.946, 1, 0.946, 0.858] at size 5, sigma 2 against the exact
  [0.607, 0.883, 1, 0.883, 0.607]. triangular: 1 - |x| / ((size + 1) / 2); laplace:
  exp(-|x| / sigma) (both forms alike); x = -(size - 1)/2 ... (size - 1)/2.
  """
  if form not in FORMS:
    raise ValueError(f"Invalid kernel form {form!r}. Expected one of {list(FORMS)}.")
  if kind not in KERNELS:
    raise ValueError(f"Invalid kernel {kind!r}. Expected one of {list(KERNELS)}.")
  if size < 1 or size % 2 == 0:
    raise ValueError(f"Kernel size must be a positive odd number. Received: {size}")
  if sigma <= 0:
    raise ValueError(f"Kernel sigma must be > 0. Received: {sigma}")
  x = np.arange(size) - (size - 1) / 2
  if kind == "gaussian" and form == "reference":
    delta = np.zeros(size)
    delta[size // 2] = 1.0
    window = ndimage.gaussian_filter1d(delta, sigma)
  elif kind == "gaussian":
    window = np.exp(-x**2 / (2 * sigma**2))
  elif kind == "triangular":
    window = 1.0 - np.abs(x) / ((size + 1) / 2)
  else:
    window = np.exp(-np.abs(x) / sigma)
  return window / window.max()


def smooth(values, window, padding="edge"):
  """Convolves `values` [B, ...] along axis 0 with `window`.

  `padding` says what lies beyond the ends: `edge` repeats the first and last bins, so a flat
  histogram stays flat; `constant` is zeros (the reference LDS code: the end bins look rarer
  and the extreme labels weigh more); `reflect` mirrors the bins (the reference FDS code).
  """
  if padding not in PADDINGS:
    raise ValueError(f"Invalid padding {padding!r}. Expected one of {list(PADDINGS)}.")
  values = np.asarray(values, np.float64)
  half = len(window) // 2
  padded = np.pad(values, [(half, half)] + [(0, 0)] * (values.ndim - 1), mode=padding)
  return sum(w * padded[k:k + len(values)] for k, w in enumerate(window))


def bin_edges(labels, num_bins):
  """`num_bins` equal-width bins spanning the labels: [num_bins + 1] edges."""
  labels = np.asarray(labels, np.float64)
  low, high = float(labels.min()), float(labels.max())
  if high <= low:
    high = low + 1.0
  return np.linspace(low, high, num_bins + 1)


def bin_index(labels, edges):
  """[n] bin of each label; values beyond the edges fall in the first or last bin."""
  return np.clip(np.searchsorted(edges, labels, side="right") - 1, 0, len(edges) - 2)
