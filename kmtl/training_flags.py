"""The flags of how a network trains, taken by every command that trains one (`kmtl train`,
`kmtl tune`, the study; the advisor's probe takes the batch flags): the optimisation schedule,
early stopping, layer sizes, the regression loss and the regularisers.
An entry point calls `define()` at import and reads the settings once its flags are parsed."""

from absl import flags

from kmtl import config as config_lib
from kmtl import parsing


def parse_dropout(text):
  """`--dropout`: one rate for every hidden level (a float) or one per level (a tuple)."""
  parts = [p.strip() for p in str(text).split(",")]
  try:
    rates = tuple(float(p) for p in parts)
  except ValueError:
    raise ValueError(f"--dropout={text}: expected a rate or comma-separated rates, one per "
                     "hidden level") from None
  return rates[0] if len(rates) == 1 else rates


def format_dropout(dropout):
  """`--dropout`'s text of a ModelConfig's dropout (a rate or a tuple of rates)."""
  return ",".join(map(repr, dropout)) if isinstance(dropout, tuple) else repr(dropout)


def parse_units(text, flag):
  """`--trunk_units` / `--head_units`: comma-separated positive layer widths."""
  try:
    units = tuple(int(p) for p in str(text).split(","))
  except ValueError:
    raise ValueError(f"--{flag}={text}: expected comma-separated layer widths") from None
  if not units or min(units) < 1:
    raise ValueError(f"--{flag}={text}: every width must be >= 1")
  return units


class BatchFlags:
  """The flags of every command that takes optimizer steps, the advisor's probe included: the
  task weights, the batch size and the learning rate."""

  def __init__(self):
    self.task_weights = flags.DEFINE_string(
        "task_weights", "inverse_count",
        "equal | inverse_count (max label count / task's count) | comma-separated numbers.")
    self.batch_size = flags.DEFINE_integer("batch_size", 32, "Training batch size.")
    self.lr = flags.DEFINE_float("lr", 1e-3, "Adam's (or AdamW's) learning rate.")

  def settings(self):
    """{TrainConfig field: value}."""
    return {"task_weights": parsing.parse_task_weights(self.task_weights.value),
            "batch_size": self.batch_size.value, "learning_rate": self.lr.value}


class TrainingFlags(BatchFlags):
  """The flag holders of the training flags."""

  def __init__(self):
    super().__init__()
    self.epochs = flags.DEFINE_integer("epochs", 200, "Maximum number of epochs.")
    self.patience = flags.DEFINE_integer("patience", 20, "Early-stopping patience, in epochs.")
    self.stopping = flags.DEFINE_enum(
        "stopping", "mean_val_loss", list(config_lib.STOPPING_CRITERIA),
        "Early stopping of a multi-task model: mean of the per-task validation losses, or mean "
        "of each divided by its first-epoch value.")
    self.model_selection = flags.DEFINE_enum(
        "model_selection", "joint", list(config_lib.MODEL_SELECTIONS),
        "A multi-task model's weights for each task: those of the stopping score's best epoch "
        "(joint), or each task's own best validation epoch (per_task: T copies of the model "
        "kept; the joint selection's test metrics are reported beside).")
    self.jit_compile = flags.DEFINE_bool("jit_compile", True,
                                         "Compile the training steps with XLA.")
    self.regression_loss = flags.DEFINE_enum(
        "regression_loss", "mse", list(config_lib.REGRESSION_LOSSES), "Regression loss.")
    self.trunk_units = flags.DEFINE_string(
        "trunk_units", "128,128", "Widths of the trunk's hidden layers (of each expert or "
        "column of the adaptive architectures; of each separate network's first layers).")
    self.head_units = flags.DEFINE_string(
        "head_units", "64", "Widths of each task tower's hidden layers before its output.")
    self.dropout = flags.DEFINE_string(
        "dropout", "0", "Dropout rate after every hidden layer, or one rate per hidden level, "
        "trunk first, then the towers (e.g. 0.1,0.1,0 for the reference sizes).")
    self.l2 = flags.DEFINE_float("l2", 0.0, "Coupled L2 penalty on kernels, added to the loss.")
    self.input_noise = flags.DEFINE_float(
        "input_noise", 0.0, "Standard deviation of Gaussian noise added to the standardised "
        "features while training (0: none).")
    self.layer_norm = flags.DEFINE_bool(
        "layer_norm", False, "Layer normalisation in every hidden Dense layer "
        "(Dense -> LayerNorm -> ReLU).")
    self.weight_decay = flags.DEFINE_float(
        "weight_decay", 0.0, "AdamW's decoupled weight decay on kernels (0: Adam).")
    self.lr_schedule = flags.DEFINE_enum(
        "lr_schedule", "constant", list(config_lib.LR_SCHEDULES),
        "constant; cosine: decay to 0 over --epochs; plateau: times --lr_plateau_factor after "
        "--lr_plateau_patience epochs without a better early-stopping score.")
    self.lr_plateau_patience = flags.DEFINE_integer(
        "lr_plateau_patience", 5, "With --lr_schedule=plateau: epochs without improvement "
        "before the learning rate drops.")
    self.lr_plateau_factor = flags.DEFINE_float(
        "lr_plateau_factor", 0.5, "With --lr_schedule=plateau: what the learning rate is "
        "multiplied by.")
    self.ema = flags.DEFINE_float(
        "ema", 0.0, "Momentum of an exponential moving average of the weights (e.g. 0.99), "
        "which validation, early stopping and the kept model use; 0: none.")

  def model_settings(self):
    """{ModelConfig field: value} of the regularisation flags."""
    return {"trunk_units": parse_units(self.trunk_units.value, "trunk_units"),
            "head_units": parse_units(self.head_units.value, "head_units"),
            "dropout": parse_dropout(self.dropout.value), "l2": self.l2.value,
            "input_noise": self.input_noise.value, "layer_norm": self.layer_norm.value}

  def train_settings(self):
    """{TrainConfig field: value} of the optimisation flags."""
    return {**self.settings(), "epochs": self.epochs.value, "patience": self.patience.value,
            "stopping": self.stopping.value, "model_selection": self.model_selection.value,
            "jit_compile": self.jit_compile.value,
            "weight_decay": self.weight_decay.value, "lr_schedule": self.lr_schedule.value,
            "lr_plateau_patience": self.lr_plateau_patience.value,
            "lr_plateau_factor": self.lr_plateau_factor.value,
            "ema_momentum": self.ema.value}

  def loss_settings(self):
    """{LossConfig field: value}."""
    return {"regression": self.regression_loss.value}


def define():
  """Defines the training flags (once per program); returns their holders."""
  return TrainingFlags()


def define_batch():
  """Defines only the task weights, batch size and learning rate (the advisor's probe)."""
  return BatchFlags()
