"""Small data for training tests, and the live child processes of a process (Linux /proc)."""

import os

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


def child_processes(pid, command_part=""):
  """PIDs of the live (not zombie) processes whose parent is `pid` and whose command line
  holds `command_part`, read from /proc."""
  found = []
  for entry in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
      with open(f"/proc/{entry}/cmdline", encoding="utf-8", errors="replace") as f:
        command = f.read()
    except OSError:  # the process ended while we looked
      continue
    if fields[0] != "Z" and int(fields[1]) == pid and command_part in command:
      found.append(int(entry))
  return found


def alive(pid):
  """Whether process `pid` exists and is not a zombie."""
  try:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False
