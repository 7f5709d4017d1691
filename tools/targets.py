"""The benches' table of targets: each row a target, the measured value, its limit and pass or
miss."""


class Targets:
  """Collects (target, measured, limit, passed) rows and prints them as a table."""

  def __init__(self):
    self.rows = []

  def at_least(self, name, measured, limit):
    self.rows.append((name, measured, f">= {limit}", measured >= limit))

  def at_most(self, name, measured, limit):
    self.rows.append((name, measured, f"<= {limit}", measured <= limit))

  def print(self):
    print("\ntargets:")
    print(f"{'target':<44}{'measured':>10}{'limit':>9}  result")
    for name, measured, limit, passed in self.rows:
      print(f"{name:<44}{measured:>10.3f}{limit:>9}  {'pass' if passed else 'MISS'}")
