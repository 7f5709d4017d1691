"""`python -m kmtl.datasets` (or `kmtl datasets`): the real data sets shipped with kmtl, each
with its rows, its flagfile's tasks and their label counts, its licence and its citation.
Any of them is `--data=NAME` in every command, e.g. `kmtl train --flagfile=flags/mpea.cfg`."""

import sys

from kmtl import entry
from kmtl.data import schema
from kmtl.data import shipped
from kmtl.data import tables


def describe(shipped_set):
  """Lines describing one shipped set, with label counts read from its file."""
  frame = tables.read_table(shipped_set.path)
  tasks = schema.parse_tasks(shipped_set.tasks)
  counts = ", ".join(f"{t.name} {int(frame[t.name].notna().sum()):,}" for t in tasks)
  return [f"{shipped_set.name}  ({len(frame):,} rows, licence {shipped_set.licence})",
          f"  {shipped_set.title}",
          f"  tasks ({shipped_set.flagfile}): {counts}",
          f"  cite: {shipped_set.citation}"]


def main(argv):
  if len(argv) > 1:
    sys.exit(f"kmtl.datasets: error: unexpected arguments {argv[1:]}")
  lines = []
  for shipped_set in shipped.SETS.values():
    lines += describe(shipped_set) + [""]
  print("\n".join(lines).rstrip())


if __name__ == "__main__":
  entry.run(main, "kmtl.datasets")
