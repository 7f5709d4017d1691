"""Train one configuration and report its test metrics.

    kmtl train --arch=structured --surgery=gradnorm --workdir=runs/sg [--data=FILE --tasks=...]

Trains on the embedded synthetic set unless --data names a CSV or Parquet file (or a shipped
set); --workdir keeps the model, checkpoints, history and metrics. Flags, data and method
settings are checked before training starts. Reusable flag sets: --flagfile=flags/quick.cfg.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import flags  # pylint: disable=g-import-not-at-top

from kmtl import atomic
from kmtl import config as config_lib
from kmtl import data_flags
from kmtl import entry
from kmtl import knob_flags
from kmtl import model_flags
from kmtl import parsing
from kmtl import quiet
from kmtl import training_flags
from kmtl import uncertainty_flags
from kmtl.data import io
from kmtl.data import splits
from kmtl.data import streaming
from kmtl.surgery import registry

_DATA_FLAGS = data_flags.define()
_MODEL_FLAGS = model_flags.define()
_TRAINING_FLAGS = training_flags.define()
_UNCERTAINTY_FLAGS = uncertainty_flags.define()

_ARCH = flags.DEFINE_enum("arch", "shared", list(config_lib.ARCHITECTURES), "Architecture.")
_SURGERY = flags.DEFINE_string(
    "surgery", "none", "The multi-task method: none (the weighted sum of the task losses), "
    f"or one of {', '.join(n for n in registry.METHODS if n != 'none')}.")
_SURGERY_ARGS = flags.DEFINE_string(
    "surgery_args", "", "Hyper-parameters of the method as name=value pairs, e.g. "
    "alpha=1.5,learning_rate=0.01 for gradnorm (see each method's docstring).")
_GRAD_MODE = flags.DEFINE_enum("grad_mode", "loop", list(config_lib.GRAD_MODES),
                               "How per-task gradients are computed.")
_GRAD_SPACE = flags.DEFINE_enum(
    "grad_space", "parameters", ["parameters", "representation"],
    "Per-task gradients of the shared parameters (exact) or of the shared representation (an "
    "approximation, one backward pass through the trunk; --arch=shared): kmtl/grad_space.py.")
_STRATEGY = flags.DEFINE_enum("strategy", "default", list(config_lib.STRATEGIES),
                              "tf.distribute strategy: default (one device), mirrored (local "
                              "GPUs or logical CPUs), multiworker (TF_CONFIG).")
_STEPS_PER_CALL = flags.DEFINE_integer("steps_per_call", 0,
                                       "Training steps per graph call; 0: a whole epoch.")
_SUMMARIES = flags.DEFINE_bool("summaries", True,
                               "Write TensorBoard summaries under --workdir/tb.")
_GRAD_STATS = flags.DEFINE_bool("grad_stats", True,
                                "Track gradient norms, cosines and conflict between tasks.")
_AFFINITY_BATCHES = flags.DEFINE_integer(
    "affinity_batches", 4, "With --grad_stats: task-balanced batches on which the co-labelled "
    "cosine and lookahead affinity of every task pair are sampled after each epoch "
    "(kmtl/affinity.py); 0: none.")
_GRAPH_SPARSITY = flags.DEFINE_float("graph_sparsity", 0.0,
                                     "Penalty on the structured task graph's off-diagonal.")
_IMBALANCE = flags.DEFINE_list(
    "imbalance", [], "Deep imbalanced regression methods: any of lds, fds, bmse "
    "(e.g. --imbalance=lds,fds).")
_IMBALANCE_TASKS = flags.DEFINE_list(
    "imbalance_tasks", [], "Regression tasks the imbalance methods apply to (default: all).")
_LDS_KERNEL = flags.DEFINE_enum("lds_kernel", "gaussian", ["gaussian", "triangular", "laplace"],
                                "LDS / FDS smoothing kernel.")
_LDS_KERNEL_FORM = flags.DEFINE_enum(
    "lds_kernel_form", "reference", list(config_lib.KERNEL_FORMS),
    "reference: the LDS/FDS paper code's kernel and padding; exact: the exact Gaussian with "
    "the end bins repeated.")
_IMBALANCE_BINS = flags.DEFINE_integer("imbalance_bins", 50, "Label bins for LDS / FDS.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split, initialisation and shuffling.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run writes checkpoints and results.")
_RESUME = flags.DEFINE_bool("resume", False, "Continue the run in --workdir from its checkpoint.")
_BASELINE_GBM = flags.DEFINE_bool(
    "baseline_gbm", False, "Also fit a gradient-boosting model per task on the same split and "
    "features, and report it beside the neural model.")
_ENSEMBLE_JOBS = flags.DEFINE_integer(
    "ensemble_jobs", 1, "With --ensemble: members trained at once, each in its own process "
    "(1: one after the other in this process).")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "After training, export a SavedModel for TF Serving under this "
    "directory (needs --workdir).")


def config_from_flags():
  """Builds the run's frozen config; raises ValueError with a message naming the flag."""
  data = _DATA_FLAGS.data_config()
  surgery_kwargs = parsing.parse_surgery_args(_SURGERY_ARGS.value)
  try:
    return config_lib.RunConfig(
        data=data,
        model=config_lib.ModelConfig(graph_sparsity=_GRAPH_SPARSITY.value,
                                     **_TRAINING_FLAGS.model_settings(),
                                     **_MODEL_FLAGS.settings()),
        loss=config_lib.LossConfig(**_TRAINING_FLAGS.loss_settings()),
        train=config_lib.TrainConfig(
            arch=_ARCH.value, surgery=_SURGERY.value, surgery_kwargs=surgery_kwargs,
            grad_mode=_GRAD_MODE.value, **_TRAINING_FLAGS.train_settings(),
            grad_space=_GRAD_SPACE.value,
            steps_per_call=_STEPS_PER_CALL.value, strategy=_STRATEGY.value,
            summaries=_SUMMARIES.value, grad_stats=_GRAD_STATS.value,
            affinity_batches=_AFFINITY_BATCHES.value),
        imbalance=config_lib.ImbalanceConfig(
            methods=tuple(_IMBALANCE.value), tasks=tuple(_IMBALANCE_TASKS.value),
            bins=_IMBALANCE_BINS.value, kernel=_LDS_KERNEL.value,
            kernel_form=_LDS_KERNEL_FORM.value),
        uncertainty=_UNCERTAINTY_FLAGS.config(),
        seed=_SEED.value, workdir=_WORKDIR.value, resume=_RESUME.value,
        baseline_gbm=_BASELINE_GBM.value)
  except ValueError as e:
    raise ValueError(f"invalid flags: {e}") from None


def ensemble_jobs():
  """--ensemble_jobs: members trained at once."""
  return _ENSEMBLE_JOBS.value


def export_dir():
  """--export_dir, or None."""
  return _EXPORT_DIR.value


def checked_inputs():
  """(config, data) after every check that needs no training: flags, output paths, the data
  and its split, the method's hyper-parameters."""
  cfg = config_from_flags()
  if _ENSEMBLE_JOBS.value < 1:
    raise ValueError(f"--ensemble_jobs={_ENSEMBLE_JOBS.value}: needs 1 or more")
  if _EXPORT_DIR.value and not cfg.workdir:
    raise ValueError("--export_dir needs --workdir (the export reads the finished run)")
  if _EXPORT_DIR.value and cfg.train.model_selection == "per_task":
    raise ValueError("--export_dir exports one set of weights; --model_selection=per_task "
                     "reports each task from its own (train with --model_selection=joint to "
                     "export)")
  for path, flag in ((cfg.workdir, "--workdir"), (_EXPORT_DIR.value, "--export_dir")):
    if path:
      atomic.check_output_dir(path, flag)
  # Data errors come before TensorFlow is imported, so they print nothing but their line.
  if streaming.streams(cfg.data):
    streaming.check_supported(cfg)
    data = None  # read chunk by chunk when training starts
  else:
    data = io.load_from_config(cfg.data)
    splits.row_splits(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                      cfg.data.group_split, cfg.data.cv)  # degenerate tasks, empty splits
  if cfg.train.surgery_kwargs:  # names and types without TensorFlow, then the method's own
    registry.check_arguments(cfg.train.surgery, dict(cfg.train.surgery_kwargs))
    quiet.import_tensorflow()
    registry.create(cfg.train.surgery, **dict(cfg.train.surgery_kwargs))
  return cfg, data


def main(argv):
  if len(argv) > 1:
    sys.exit(f"kmtl.run: error: unexpected arguments {argv[1:]}")
  try:
    cfg, data = checked_inputs()
  except (ValueError, io.DataError) as e:
    sys.exit(f"kmtl.run: error: {e}")

  quiet.import_tensorflow()
  import keras  # pylint: disable=g-import-not-at-top
  if keras.backend.backend() != "tensorflow":
    sys.exit(f"kmtl.run: error: kmtl needs the TensorFlow Keras backend; KERAS_BACKEND is "
             f"{keras.backend.backend()!r}")
  from kmtl import ensemble  # pylint: disable=g-import-not-at-top
  from kmtl import experiment  # pylint: disable=g-import-not-at-top
  from kmtl import metrics  # pylint: disable=g-import-not-at-top
  from kmtl import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  try:
    if cfg.uncertainty.trains_ensemble:
      result = ensemble.train_and_evaluate(cfg, data, _ENSEMBLE_JOBS.value)
    else:
      result = experiment.train_and_evaluate(cfg, data=data)
  except (experiment.ExperimentError, trainer_lib.TrainingError, io.DataError, ValueError) as e:
    sys.exit(f"kmtl.run: error: {e}")
  print(f"test metrics ({cfg.train.arch}, surgery={cfg.train.surgery}, seed={cfg.seed}, "
        f"{result['epochs_run']} epochs):")
  print(metrics.format_table(result["test"], cfg.data.tasks))
  if "gbm_test" in result:
    print("gradient-boosting baseline, same split and features:")
    print(metrics.format_table(result["gbm_test"], cfg.data.tasks))
  if cfg.workdir:
    print(f"wrote {os.path.join(cfg.workdir, 'metrics.json')}")
  else:
    print("nothing was written: give --workdir=DIR to keep the model, checkpoints, history "
          "and metrics")
  if _EXPORT_DIR.value:
    from kmtl import export  # pylint: disable=g-import-not-at-top
    try:
      print(f"exported {export.export_run(cfg.workdir, _EXPORT_DIR.value)}")
    except export.ExportError as e:
      sys.exit(f"kmtl.run: error: {e}")


if __name__ == "__main__":
  for flag_module in (data_flags, model_flags, training_flags, uncertainty_flags, knob_flags):
    flags.adopt_module_key_flags(flag_module)
  entry.run(main, "kmtl.run")
