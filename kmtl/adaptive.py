"""Layers of the adaptive-sharing architectures (kmtl/models.py builds them).

- `Experts`: E small networks' Dense layers as one batched einsum, each expert with its own
  kernel [F, U]; the input is shared [B, F] or per expert [B, E, F]. Costs about E dense layers.
- `Gate`: a task's softmax over experts, from its input; mixes the experts' outputs.
- `CrossStitch` (Misra et al. 2016): T task columns' hidden units mixed by a learned [T, T]
  matrix, initialised near the identity.
- `TaskAttention` (after MTAN, Liu et al. 2019): a task's sigmoid mask over the shared units.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # pylint: disable=g-import-not-at-top
import numpy as np


@keras.saving.register_keras_serializable(package="kmtl")
class Experts(keras.layers.Layer):
  """[B, F] or [B, E, F] -> [B, E, U]: E ReLU Dense layers of U units in one einsum."""

  def __init__(self, num_experts, units, **kwargs):
    super().__init__(**kwargs)
    self.num_experts, self.units = num_experts, units

  def build(self, input_shape):
    width = int(input_shape[-1])
    self.kernel = self.add_weight(name="kernel", shape=(self.num_experts, width, self.units),
                                  initializer=keras.initializers.GlorotUniform())
    self.bias = self.add_weight(name="bias", shape=(self.num_experts, self.units),
                                initializer="zeros")

  def call(self, inputs):
    if len(inputs.shape) == 2:
      out = keras.ops.einsum("bf,efu->beu", inputs, self.kernel)
    else:
      out = keras.ops.einsum("bef,efu->beu", inputs, self.kernel)
    return keras.ops.relu(out + self.bias)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.num_experts, self.units)

  def get_config(self):
    return {**super().get_config(), "num_experts": self.num_experts, "units": self.units}


@keras.saving.register_keras_serializable(package="kmtl")
class Gate(keras.layers.Layer):
  """(gate input [B, F], expert outputs [B, E, U]) -> [B, U], the experts mixed by a softmax
  over E computed from the gate input; `weights(x)` gives the softmax [B, E]."""

  def __init__(self, num_experts, **kwargs):
    super().__init__(**kwargs)
    self.num_experts = num_experts
    self.dense = keras.layers.Dense(num_experts, name="logits")

  def build(self, input_shape):
    if not self.dense.built:
      self.dense.build(input_shape[0])

  def gate_weights(self, gate_input):
    return keras.ops.softmax(self.dense(gate_input), axis=-1)

  def call(self, inputs):
    gate_input, experts = inputs
    return keras.ops.einsum("be,beu->bu", self.gate_weights(gate_input), experts)

  def compute_output_shape(self, input_shape):
    return (input_shape[1][0], input_shape[1][2])

  def get_config(self):
    return {**super().get_config(), "num_experts": self.num_experts}


@keras.saving.register_keras_serializable(package="kmtl")
class CrossStitch(keras.layers.Layer):
  """[B, T, U] -> [B, T, U]: column t becomes sum_s alpha[t, s] column s. alpha starts at
  `self_weight` on the diagonal and (1 - self_weight) / (T - 1) elsewhere."""

  def __init__(self, num_tasks, self_weight=0.9, **kwargs):
    super().__init__(**kwargs)
    self.num_tasks, self.self_weight = num_tasks, self_weight
    t = num_tasks
    other = (1.0 - self_weight) / (t - 1) if t > 1 else 0.0
    start = np.full((t, t), other, np.float32)
    np.fill_diagonal(start, self_weight if t > 1 else 1.0)
    self.alpha = self.add_weight(name="alpha", shape=(t, t),
                                 initializer=keras.initializers.Constant(start))

  def call(self, inputs):
    return keras.ops.einsum("ts,bsu->btu", self.alpha, inputs)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "num_tasks": self.num_tasks, "self_weight": self.self_weight}


@keras.saving.register_keras_serializable(package="kmtl")
class TaskAttention(keras.layers.Layer):
  """[B, U] shared units -> [B, U], each unit scaled by the task's sigmoid gate computed from
  the shared units; `mask(x)` gives the gate [B, U]."""

  def __init__(self, units, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.dense = keras.layers.Dense(units, activation="sigmoid", name="mask")

  def build(self, input_shape):
    if not self.dense.built:
      self.dense.build(input_shape)

  def mask(self, shared):
    return self.dense(shared)

  def call(self, inputs):
    return inputs * self.mask(inputs)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "units": self.units}
