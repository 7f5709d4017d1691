"""TensorFlow's and XLA's start-up lines never reach the user of a kmtl program."""

import subprocess
import sys

PROGRAM = """
from kmtl import quiet
tf = quiet.import_tensorflow()
print(float(tf.function(lambda x: 2.0 * x, jit_compile=True)(tf.constant(1.5))))
"""


def test_xla_compilation_after_a_quiet_import_prints_nothing():
  """The first XLA compilation of a process logs "Compiled cluster using XLA!" after absl's
  "All log messages before absl::InitializeLog()" notice, whatever TF_CPP_MIN_LOG_LEVEL says;
  the quiet import spends both while it captures the start-up output."""
  done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                        check=False)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip() == "3.0"
  assert "Compiled cluster" not in done.stderr and "InitializeLog" not in done.stderr, \
      done.stderr
