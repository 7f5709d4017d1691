"""Label bins and the symmetric kernels LDS and FDS smooth over (Yang et al., "Delving into
Deep Imbalanced Regression", ICML 2021, arXiv:2102.09554)."""

import numpy as np

KERNELS = ("gaussian", "triangular", "laplace")


def kernel_window(kind="gaussian", size=5, sigma=2.0):
  """[size] symmetric window with peak 1 (the paper's max-normalised LDS kernels).

  gaussian: exp(-x^2 / (2 sigma^2)); triangular: 1 - |x| / ((size + 1) / 2);
  laplace: exp(-|x| / sigma); x = -(size - 1)/2 ... (size - 1)/2.
  """
  if kind not in KERNELS:
    raise ValueError(f"Invalid kernel {kind!r}. Expected one of {list(KERNELS)}.")
  if size < 1 or size % 2 == 0:
    raise ValueError(f"Kernel size must be a positive odd number. Received: {size}")
  if sigma <= 0:
    raise ValueError(f"Kernel sigma must be > 0. Received: {sigma}")
  x = np.arange(size) - (size - 1) / 2
  if kind == "gaussian":
    window = np.exp(-x**2 / (2 * sigma**2))
  elif kind == "triangular":
    window = 1.0 - np.abs(x) / ((size + 1) / 2)
  else:
    window = np.exp(-np.abs(x) / sigma)
  return window / window.max()


def smooth(values, window):
  """Convolves `values` [B, ...] along axis 0 with `window`.

  Beyond the ends the first and last bins repeat, so a flat histogram stays flat (zero padding
  would make the end bins look rare and over-weight the extreme labels).
  """
  values = np.asarray(values, np.float64)
  half = len(window) // 2
  padded = np.pad(values, [(half, half)] + [(0, 0)] * (values.ndim - 1), mode="edge")
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
