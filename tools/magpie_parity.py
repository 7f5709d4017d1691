"""kmtl's native Magpie preset (kmtl/data/magpie_preset.py) against matminer itself, on the
compositions of the shipped sets:

    pip install matminer
    python -m tools.magpie_parity [--sets=mpea,glass_cerebral] [--rows=0]

For each composition, matminer's `ElementProperty.from_preset("magpie")`, `Stoichiometry()`
and `ValenceOrbital()` on pymatgen's `Composition`; prints the largest absolute and relative
difference per feature group and fails when any exceeds 1e-6 (relative to max(1, |value|)).
Compositions with an element matminer's tables lack a value for are skipped by both (counted).
"""

import sys

from absl import app
from absl import flags
import numpy as np

from kmtl.data import magpie_preset
from kmtl.data import shipped
from kmtl.data import tables
from kmtl.data import validation

_SETS = flags.DEFINE_list("sets", ["mpea", "glass_cerebral"], "Shipped sets to compare on.")
_ROWS = flags.DEFINE_integer("rows", 0, "Compositions per set (0: all).")
TOLERANCE = 1e-6


def _matminer_features(texts):
  from matminer.featurizers import composition as mm  # pylint: disable=g-import-not-at-top
  from pymatgen.core import Composition  # pylint: disable=g-import-not-at-top
  featurizers = [mm.ElementProperty.from_preset("magpie", impute_nan=False),
                 mm.Stoichiometry(), mm.ValenceOrbital(impute_nan=False)]
  names = [n for f in featurizers for n in f.feature_labels()]
  rows = [[v for f in featurizers for v in f.featurize(Composition(t))] for t in texts]
  return names, np.asarray(rows, np.float64)


def main(argv):
  del argv
  try:
    import matminer  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    sys.exit("magpie_parity: error: needs matminer (pip install matminer)")
  worst, compared, skipped = 0.0, 0, 0
  for name in _SETS.value:
    frame = tables.read_table(shipped.locate(name))
    column = next(c for c in validation.COMPOSITION_COLUMNS if c in frame.columns)
    texts = list(dict.fromkeys(frame[column].dropna().astype(str)))
    if _ROWS.value:
      texts = texts[:_ROWS.value]
    ours, kept = [], []
    for text in texts:
      single = frame[[column]].iloc[:1].copy()
      single[column] = [text]
      try:
        values, _, _, names = validation.feature_matrix(single, "magpie_preset", "auto", name)
      except tables.DataError:
        skipped += 1
        continue
      ours.append(values[0])
      kept.append(text)
    mm_names, theirs = _matminer_features(kept)
    assert tuple(mm_names) == magpie_preset.feature_names(), "feature names differ"
    ours = np.asarray(ours)
    error = np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))
    finite = np.isfinite(theirs)
    worst_here = float(np.max(np.where(finite, error, 0.0)))
    worst = max(worst, worst_here)
    compared += len(kept)
    print(f"{name}: {len(kept)} compositions, largest difference {worst_here:.2e} "
          f"(feature {mm_names[int(np.argmax(np.max(np.where(finite, error, 0), axis=0)))]}); "
          f"matminer NaN in {int((~finite).sum())} values")
  print(f"{compared} compositions, {skipped} skipped (an element without a value); largest "
        f"difference {worst:.2e}, tolerance {TOLERANCE:g}")
  if worst > TOLERANCE:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
