"""TensorFlow loaded without its start-up lines, so an entry point's own output comes first.

Importing TensorFlow and finding its devices writes lines such as "Could not find cuda drivers"
and "failed call to cuInit" straight to file descriptor 2, before absl's logging is set up and
whatever TF_CPP_MIN_LOG_LEVEL says, and XLA's first compilation announces itself the same way.
They are captured while TensorFlow loads (with one tiny XLA compilation) and shown only if
loading fails.
"""

import logging
import os
import sys
import tempfile


def import_tensorflow(threads=None):
  """Imports TensorFlow and Keras, lists the devices, and returns the `tensorflow` module.
  `threads`: intra-op threads (and one inter-op thread), which must be set before TensorFlow
  starts its runtime; None leaves TensorFlow's defaults."""
  if "tensorflow" in sys.modules:
    return sys.modules["tensorflow"]
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("KERAS_BACKEND", "tensorflow")
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      import keras  # pylint: disable=g-import-not-at-top,unused-import
      if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
      tf.config.list_physical_devices()
      # XLA's first compilation logs "Compiled cluster using XLA!" once per process, through
      # C++ logging that no environment variable silences, after absl's "All log messages
      # before absl::InitializeLog()" notice: a tiny compilation here spends both.
      tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(0.0))
    except BaseException:
      os.dup2(saved, 2)
      captured.seek(0)
      sys.stderr.write(captured.read().decode("utf-8", "replace"))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
  _drop_library_info([tf, keras])
  return tf


def _drop_library_info(packages):
  """Hides INFO lines that TensorFlow and Keras log through absl (saver timings, signature
  renames), which would interleave with kmtl's own; their warnings and errors stay."""
  roots = tuple(os.path.dirname(p.__file__) + os.sep for p in packages)

  def keep(record):
    return record.levelno >= logging.WARNING or not record.pathname.startswith(roots)

  for name in ("absl", "tensorflow"):
    logging.getLogger(name).addFilter(keep)
