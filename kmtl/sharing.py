"""What each task's tower reads, per architecture: the layers before the towers and who shares
them. kmtl/models.py adds the towers and heads.

Every builder returns a `Sharing`: {task: [B, U] tower input}, the layers whose variables count
as shared (methods that need "the shared parameters" act on them), each task's own layers, and
the layers of the last shared level (where GradNorm and gradient scaling take their norms).

- `mmoe`: E experts (each a ReLU MLP of the trunk's widths) and one softmax gate per task over
  them, from the features. Experts and gates are shared; the last expert layer is the last
  shared level.
- `ple`: per level, shared experts and each task's own experts, mixed per task by a gate over
  the shared and its own; with 2 levels a shared gate over all experts feeds the second level's
  shared experts, and each level is one layer of the trunk (with 1 level, experts have the
  trunk's depth). All experts and gates are shared (a task's own experts still receive other
  tasks' gradients through the shared gate); the last level's experts are the last shared level.
- `cross_stitch`: one column per task of the trunk's widths; after each layer the columns are
  mixed by a learned [T, T] matrix. Columns and mixing matrices are shared (every loss reaches
  every column through the mixing); the last column layer is the last shared level.
- `task_attention`: the shared trunk, then per task a sigmoid mask over its units (the masks are
  task-specific); the trunk's last layer is the last shared level.
- `groups`: hard sharing within each group of tasks, nothing across groups. Every group's trunk
  is where the methods act, a one-task group's too (only its task's gradient reaches it, so a
  method that weights tasks by their gradients on the last shared level sees every task); the
  last layer of each trunk is the last shared level.
"""

import dataclasses
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # pylint: disable=g-import-not-at-top

from kmtl import adaptive

ADAPTIVE = ("mmoe", "ple", "cross_stitch", "task_attention", "groups")


@dataclasses.dataclass
class Sharing:
  inputs: dict
  shared_layers: list
  task_layers: dict
  last_shared_layers: list


@keras.saving.register_keras_serializable(package="kmtl")
class NormalizedDense(keras.layers.Layer):
  """[B, F] -> [B, U]: Dense, then layer normalisation over the U units, then ReLU (one
  hidden level under --layer_norm, so a level stays one layer with one output)."""

  def __init__(self, units, kernel_regularizer=None, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
    self.dense = keras.layers.Dense(units, kernel_regularizer=self.kernel_regularizer,
                                    name="dense", dtype=self.dtype_policy)
    # Normalisation statistics in float32 under bfloat16, as Keras does.
    self.norm = keras.layers.LayerNormalization(name="norm", dtype=self.dtype_policy)

  def build(self, input_shape):
    self.dense.build(input_shape)
    self.norm.build((*input_shape[:-1], self.units))

  def call(self, inputs):
    return keras.ops.relu(self.norm(self.dense(inputs)))

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], self.units)

  def get_config(self):
    return {**super().get_config(), "units": self.units,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}


def dense(units, name, config, activation="relu", dtype=None):
  """A hidden ReLU level (normalised under `config.layer_norm`) or, with another activation,
  a plain Dense layer."""
  regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
  if config.layer_norm and activation == "relu":
    return NormalizedDense(units, kernel_regularizer=regularizer, name=name, dtype=dtype)
  return keras.layers.Dense(units, activation=activation, name=name,
                            kernel_regularizer=regularizer, dtype=dtype)


def _dropout(x, config, level, name):
  rate = config.dropout_at(level)
  return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x


def stack(x, units, prefix, config, layers, first_level=0):
  """x through hidden levels of `units` named `prefix_1`, ... (hidden level `first_level` on
  for dropout); appends them to `layers`."""
  for i, size in enumerate(units):
    layer = dense(size, f"{prefix}_{i + 1}", config)
    layers.append(layer)
    x = _dropout(layer(x), config, first_level + i, f"{prefix}_dropout_{i + 1}")
  return x


@keras.saving.register_keras_serializable(package="kmtl")
class ExpertSlice(keras.layers.Layer):
  """[B, E, U] -> [B, stop - start, U], the experts start .. stop - 1."""

  def __init__(self, start, stop, **kwargs):
    super().__init__(**kwargs)
    self.start, self.stop = start, stop

  def call(self, inputs):
    return inputs[:, self.start:self.stop]

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.stop - self.start, input_shape[2])

  def get_config(self):
    return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="kmtl")
class StackRepeated(keras.layers.Layer):
  """A list of [B, U] -> [B, len * repeats, U], each input repeated `repeats` times."""

  def __init__(self, repeats, **kwargs):
    super().__init__(**kwargs)
    self.repeats = repeats

  def call(self, inputs):
    return keras.ops.repeat(keras.ops.stack(inputs, axis=1), self.repeats, axis=1)

  def compute_output_shape(self, input_shape):
    return (input_shape[0][0], len(input_shape) * self.repeats, input_shape[0][1])

  def get_config(self):
    return {**super().get_config(), "repeats": self.repeats}


def _experts(x, count, units, name, config, layers, level):
  layer = adaptive.Experts(count, units, name=name)
  layers.append(layer)
  return _dropout(layer(x), config, level, f"{name}_dropout")


def _mmoe(features, names, config):
  shared, h = [], features
  for i, units in enumerate(config.trunk_units):
    h = _experts(h, config.experts, units, f"experts_{i + 1}", config, shared, i)
  last = shared[-1]
  inputs = {}
  for t in names:
    gate = adaptive.Gate(config.experts, name=f"{t}_gate")
    shared.append(gate)
    inputs[t] = gate([features, h])
  return Sharing(inputs, shared, {t: [] for t in names}, [last])


def _ple_level(level, shared_in, task_in, config, names, widths, shared, final):
  """One extraction level: (shared output or None, {task: output}, its last expert layers)."""
  es, et = config.experts, config.task_experts
  task_experts_in = shared_in if level == 1 else StackRepeated(
      et, name=f"level{level}_task_inputs")([task_in[t] for t in names])
  first = 0 if len(widths) > 1 else level - 1  # one level with the trunk's depth, or one layer
  s_out = _experts_stack(shared_in, es, widths, f"level{level}_shared_experts", config, shared,
                         first)
  last_shared = shared[-1]
  f_out = _experts_stack(task_experts_in, len(names) * et, widths, f"level{level}_task_experts",
                         config, shared, first)
  lasts = [last_shared, shared[-1]]
  outputs = {}
  for i, t in enumerate(names):
    mine = ExpertSlice(i * et, (i + 1) * et, name=f"level{level}_{t}_experts")(f_out)
    pool = keras.layers.Concatenate(axis=1, name=f"level{level}_{t}_pool")([s_out, mine])
    gate = adaptive.Gate(es + et, name=f"level{level}_{t}_gate")
    shared.append(gate)
    outputs[t] = gate([task_in[t], pool])
  shared_out = None
  if not final:
    pool = keras.layers.Concatenate(axis=1, name=f"level{level}_pool")([s_out, f_out])
    gate = adaptive.Gate(es + len(names) * et, name=f"level{level}_shared_gate")
    shared.append(gate)
    shared_out = gate([shared_in, pool])
  return shared_out, outputs, lasts


def _experts_stack(x, count, widths, name, config, layers, first_level):
  for i, units in enumerate(widths):
    x = _experts(x, count, units, f"{name}_{i + 1}" if len(widths) > 1 else name, config, layers,
                 first_level + i)
  return x


def _ple(features, names, config):
  shared = []
  levels = config.ple_levels
  widths = [config.trunk_units] if levels == 1 else [(u,) for u in config.trunk_units]
  shared_in, task_in, lasts = features, {t: features for t in names}, []
  for level in range(1, levels + 1):
    shared_in, task_in, lasts = _ple_level(level, shared_in, task_in, config, names,
                                           widths[level - 1], shared, level == levels)
  return Sharing(task_in, shared, {t: [] for t in names}, lasts)


def _cross_stitch(features, names, config):
  shared, h = [], features
  for i, units in enumerate(config.trunk_units):
    h = _experts(h, len(names), units, f"columns_{i + 1}", config, shared, i)
    last = shared[-1]
    stitch = adaptive.CrossStitch(len(names), name=f"cross_stitch_{i + 1}")
    shared.append(stitch)
    h = stitch(h)
  inputs = {t: keras.layers.Reshape((config.trunk_units[-1],), name=f"{t}_column")(
      ExpertSlice(i, i + 1, name=f"{t}_column_slice")(h)) for i, t in enumerate(names)}
  return Sharing(inputs, shared, {t: [] for t in names}, [last])


def _task_attention(features, names, config):
  shared = []
  trunk = stack(features, config.trunk_units, "trunk", config, shared)
  task_layers, inputs = {}, {}
  for t in names:
    attention = adaptive.TaskAttention(config.trunk_units[-1], name=f"{t}_attention")
    task_layers[t] = [attention]
    inputs[t] = attention(trunk)
  return Sharing(inputs, shared, task_layers, shared[-1:])


def _groups(features, names, config):
  shared, inputs, lasts = [], {}, []
  for g, group in enumerate(config.groups):
    layers = []
    trunk = stack(features, config.trunk_units, f"group{g + 1}_trunk", config, layers)
    shared += layers
    lasts.append(layers[-1])
    inputs.update({t: trunk for t in group})
  return Sharing(inputs, shared, {t: [] for t in names}, lasts)


BUILDERS = {"mmoe": _mmoe, "ple": _ple, "cross_stitch": _cross_stitch,
            "task_attention": _task_attention, "groups": _groups}


def build(arch, features, names, config):
  """The `Sharing` of an adaptive architecture over the `features` input."""
  return BUILDERS[arch](features, names, config)
