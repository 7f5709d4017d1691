"""The solver methods' largest error against the exact updates, per method and precision.

    python tools/solver_accuracy.py

Runs the table of tests/surgery/test_exact_solutions.py (every kind of stack, T = 2, 3, 5, 10
and 16) and prints, per method, the largest relative error of the update in float64 (graph
mode) and in float32 under XLA, as training runs: the figures the README's method section
quotes.
"""

import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, ".")
from tests.surgery import test_exact_solutions as table  # pylint: disable=wrong-import-position


def largest_error(name, num_tasks, dtype, jit):
  """The largest error over the table's well-posed stacks for T = num_tasks."""
  combine, _ = table.compiled(name, num_tasks, jit)
  worst = 0.0
  for kind in table.KINDS:
    if num_tasks > 1 and kind in table.ILL_POSED.get(name, ()):
      continue
    j, present = table.stack_of(kind, num_tasks)
    j = j.astype(dtype).astype(np.float64)
    expected = table.reference(name, j[present > 0])
    shared, _ = combine(tf.constant(j, dtype), tf.ones([num_tasks], dtype),
                        tf.constant(present, dtype))
    worst = max(worst, table.relative_error(shared.numpy().astype(np.float64), expected, j))
  return worst


def main():
  print(f"{'method':10s} {'float64':>10s} {'float32 XLA':>12s}")
  for name in table.METHODS:
    f64 = max(largest_error(name, t, np.float64, False) for t in table.TASK_COUNTS)
    f32 = max(largest_error(name, t, np.float32, True) for t in table.TASK_COUNTS)
    print(f"{name:10s} {f64:10.1e} {f32:12.1e}")


if __name__ == "__main__":
  main()
