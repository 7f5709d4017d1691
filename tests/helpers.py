"""Small data for training tests."""

import numpy as np

from kmtl.data import synthetic


def tiny_frame(per_task=120, seed=0):
  """A few hundred synthetic alloys with every task labelled on `per_task`-odd rows."""
  frame = synthetic.generate(seed)
  chosen = np.concatenate([
      np.flatnonzero(frame["hardness"].notna())[:per_task],
      np.flatnonzero(frame["amorphous"].notna())[:per_task],
      np.flatnonzero(frame["resistivity"].notna() & frame["hardness"].isna()
                     & frame["amorphous"].isna())[:2 * per_task]])
  return frame.iloc[np.sort(chosen)].reset_index(drop=True)
