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


class Interrupted(Exception):
  """Raised by `stop_after` to interrupt a run as a kill would."""


def stop_after(epoch):
  """An `on_epoch_end` callback that interrupts the run once `epoch` is recorded."""
  def callback(record):
    if record["epoch"] == epoch:
      raise Interrupted()
  return callback
