"""The training domain of a run, for flagging predictions outside it.

A row is out of domain when it holds an element no training row holds, or when its nearest
training composition is farther (Euclidean distance between element-fraction vectors) than the
test split's farthest test row ever was. Feature sets without element fractions measure the
distance between standardised feature vectors instead. What a run's domain is goes to
`WORKDIR/domain.npz`; the export checks it inside the serving graph (kmtl/export.py).
"""

import os

import numpy as np
from sklearn import neighbors

from kmtl import atomic
from kmtl.data import splits

DOMAIN = "domain.npz"
COMPOSITION, FEATURES = "composition", "features"


def fit(data, prepared):
  """{columns, names, seen, training, threshold, space}: the columns compared, whether each
  element column is nonzero in some training row, the distinct training vectors, and the test
  split's largest distance to its nearest training vector."""
  columns = [i for i, n in enumerate(data.feature_names) if n in set(data.elements)]
  space = COMPOSITION if columns else FEATURES
  if not columns:
    columns = list(range(len(data.feature_names)))
  vectors = data.features[:, columns].astype(np.float64)
  if space == FEATURES:
    scaler = prepared.feature_scaler
    vectors = (vectors - scaler.mean_[columns]) / scaler.scale_[columns]
  training = np.unique(vectors[prepared.row_split == splits.TRAIN], axis=0)
  test = vectors[prepared.row_split == splits.TEST]
  threshold = float(nearest_distance(training, test).max()) if len(test) else 0.0
  seen = (training > 0).any(axis=0) if space == COMPOSITION else np.ones(len(columns), bool)
  return {"columns": np.array(columns),
          "names": np.array([data.feature_names[i] for i in columns]), "seen": seen,
          "training": training.astype(np.float32), "threshold": threshold, "space": space}


def nearest_distance(training, rows):
  """[n] Euclidean distance of each row to its nearest training vector."""
  if not len(rows):
    return np.zeros(0)
  index = neighbors.NearestNeighbors(n_neighbors=1).fit(training)
  return index.kneighbors(rows)[0][:, 0]


def write(workdir, domain):
  with atomic.atomic_path(os.path.join(workdir, DOMAIN)) as tmp:
    with open(tmp, "wb") as f:
      np.savez(f, **domain)


def read(workdir):
  """The domain written by `write`, or None for a run from before domains were recorded."""
  path = os.path.join(workdir, DOMAIN)
  if not os.path.exists(path):
    return None
  with np.load(path) as stored:
    domain = {k: stored[k] for k in stored.files}
  domain["threshold"], domain["space"] = float(domain["threshold"]), str(domain["space"])
  return domain
