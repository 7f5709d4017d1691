"""Keras functional multi-task architectures behind one builder.

Every model maps `features` [B, F] to `{task: prediction}`: [B] standardised target units for
regression, [B] a logit for binary tasks, [B, C] class logits for a multiclass task of C
classes. Reference sizes: trunk 128-128, heads 64-1 (64-C for C classes).

- `independent` (the single-task baseline, trained task by task: kmtl/single_task.py) and
  `independent_joint` (the same networks trained together on the multi-task batch stream, a
  control): one network per task, F -> 128 -> 128 -> 64 -> 1; nothing is shared.
- `shared` (hard parameter sharing): a ReLU trunk F -> 128 -> 128, then per task 128 -> 64 -> 1.
- `structured`: the shared trunk, per-task towers 128 -> 64 giving h_s, and a learned task graph
  A [T, T]: task t's head reads z_t = sum_s A[t, s] h_s, then 64 -> 1. A = softmax(W) row by row,
  so every row is a convex mixture; W starts at `graph_init` on the diagonal and 0 elsewhere
  (A[t, t] = e^g / (e^g + T - 1), 0.95 for T = 3, g = 4). An optional penalty
  `graph_sparsity * sum_{t != s} A[t, s]` is added to `model.losses`. The trunk and the graph
  are shared (the graph mixes every task's tower, so its gradient comes from every task);
  towers and heads are task-specific: a tower's parameters receive gradient from other tasks
  only through the graph, and surgery acts on the parameters all tasks pull on directly.
- `mmoe`, `ple`, `cross_stitch`, `task_attention`, `groups` (adaptive sharing): what each task's
  tower reads comes from kmtl/sharing.py, then the same towers and heads.
"""

import dataclasses
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # pylint: disable=g-import-not-at-top
import numpy as np

from kmtl import config as config_lib
from kmtl import mixing
from kmtl import model_config
from kmtl import sharing

ARCHITECTURES = config_lib.ARCHITECTURES


@keras.saving.register_keras_serializable(package="kmtl")
class InputColumns(keras.layers.Layer):
  """[B, F] -> [B, K]: the chosen input columns (feature selection, kmtl/data/selection.py)."""

  def __init__(self, columns, **kwargs):
    super().__init__(**kwargs)
    self.columns = tuple(int(c) for c in columns)

  def call(self, inputs):
    return keras.ops.take(inputs, list(self.columns), axis=1)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], len(self.columns))

  def get_config(self):
    return {**super().get_config(), "columns": list(self.columns)}


@keras.saving.register_keras_serializable(package="kmtl")
class SqueezeLast(keras.layers.Layer):
  """[B, 1] -> [B]."""

  def call(self, inputs):
    return keras.ops.squeeze(inputs, axis=-1)

  def compute_output_shape(self, input_shape):
    return input_shape[:-1]


@keras.saving.register_keras_serializable(package="kmtl")
class TaskGraph(keras.layers.Layer):
  """Mixes T task representations [B, H] with a learned row-stochastic A [T, T]."""

  def __init__(self, num_tasks, init=4.0, sparsity=0.0, **kwargs):
    super().__init__(**kwargs)
    self.num_tasks, self.init, self.sparsity = num_tasks, init, sparsity
    self.logits = self.add_weight(
        name="logits", shape=(num_tasks, num_tasks),
        initializer=keras.initializers.Constant(init * np.eye(num_tasks, dtype="float32")))

  def adjacency(self):
    """A [T, T]: A[t, s] is how much task t's head reads task s's tower."""
    # softmax over each row, written out so that T = 1 (a 1 x 1 graph) is plain arithmetic.
    return keras.ops.exp(self.logits - keras.ops.logsumexp(self.logits, axis=-1, keepdims=True))

  def call(self, inputs):
    a = self.adjacency()
    if self.sparsity > 0:
      off_diagonal = keras.ops.sum(a) - keras.ops.trace(a)
      self.add_loss(self.sparsity * off_diagonal)
    mixed = keras.ops.einsum("ts,bsh->bth", a, keras.ops.stack(inputs, axis=1))
    return [mixed[:, t] for t in range(self.num_tasks)]

  def compute_output_shape(self, input_shape):
    return list(input_shape)

  def get_config(self):
    return {**super().get_config(), "num_tasks": self.num_tasks, "init": self.init,
            "sparsity": self.sparsity}


@dataclasses.dataclass(frozen=True)
class MultiTaskNet:
  """A built model and what the training loop needs to know about it.

  Attributes:
    model: features [B, F] -> {task: prediction [B]}.
    representations: features -> {task: [B, H]}, what each task's final regressor reads (FDS,
      analysis).
    shared_variables: trainable variables more than one task's loss depends on.
    task_variables: {task: trainable variables only that task's loss depends on}.
    last_shared_variables: the last shared Dense layer's kernel and bias, where gradient-norm
      methods (GradNorm, gradient scaling) take their norms; empty for `independent`.
    task_graph: the structured model's TaskGraph layer (its `adjacency()`), else None.
    heads: {task: (Dense(1), SqueezeLast) or (Dense(C), Identity)}, the final regressors or
      classifiers; see `head`.
    mixing: scaled features [n, F] -> {name: matrix}, what the architecture learned about
      sharing (kmtl/mixing.py), or None.
    trunk_activations: features -> [[each trunk layer's output [B, H_l]], the model's
      outputs], for the one architecture whose every task reads one trunk (`shared`), else
      None (kmtl/grad_space.py).
  """
  model: keras.Model
  representations: keras.Model
  shared_variables: tuple
  task_variables: dict
  last_shared_variables: tuple = ()
  task_graph: TaskGraph = None
  heads: dict = None
  mixing: object = None
  trunk_activations: keras.Model = None

  def head(self, task, representation):
    """Task's final layer on its representation [B, H] -> prediction [B] or [B, C] (the
    model's own layers, so `model(x)` equals `head(t, representations(x)[t])`)."""
    dense, squeeze = self.heads[task]
    return squeeze(dense(representation))


_dense, _stack = sharing.dense, sharing.stack


def build_model(arch, task_names, num_features, config=config_lib.ModelConfig(),
                output_sizes=None, input_columns=None):
  """Builds `arch` for `task_names` over `num_features` inputs; returns a `MultiTaskNet`.

  `output_sizes` {task: C} gives a task C class logits [B, C]; others get one output [B].
  `input_columns`, when given, are the inputs the network reads (the model still takes all
  `num_features`).

  Raises:
    ValueError: an unknown architecture or an empty task list.
  """
  if arch not in ARCHITECTURES:
    raise ValueError(f"Invalid value for `arch`. Expected one of {list(ARCHITECTURES)}. "
                     f"Received: {arch!r}")
  task_names = tuple(task_names)
  if not task_names:
    raise ValueError("build_model needs at least one task.")
  features = keras.Input(shape=(num_features,), name="features")
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(model_config.PRECISIONS[config.precision])
  try:
    inputs = features
    if input_columns is not None:
      inputs = InputColumns(input_columns, name="input_columns", dtype="float32")(inputs)
    if config.input_noise > 0:  # training only; identity at inference and in export
      inputs = keras.layers.GaussianNoise(config.input_noise, name="input_noise")(features)
    reps, graph, sharing_of = _representations(arch, inputs, task_names, config)
  finally:
    keras.config.set_dtype_policy(previous)
  shared_layers, task_layers = sharing_of.shared_layers, sharing_of.task_layers
  outputs, heads, output_sizes = {}, {}, output_sizes or {}
  for task in task_names:
    units = output_sizes.get(task, 1)
    head = _dense(units, f"{task}_head", config, activation=None, dtype="float32")
    task_layers[task].append(head)
    heads[task] = (head, SqueezeLast(name=task, dtype="float32") if units == 1 else
                   keras.layers.Identity(name=task, dtype="float32"))
    outputs[task] = heads[task][1](head(reps[task]))
  model = keras.Model(features, outputs, name=f"kmtl_{arch}")
  trunk = (keras.Model(features, [[layer.output for layer in sharing_of.shared_layers],
                                   outputs], name=f"kmtl_{arch}_with_trunk")
           if arch == "shared" else None)
  representations = keras.Model(features, reps, name=f"kmtl_{arch}_representations")
  variables = lambda layers: tuple(v for layer in layers for v in layer.trainable_variables)
  return MultiTaskNet(model, representations, variables(shared_layers),
                      {t: variables(task_layers[t]) for t in task_names},
                      variables(sharing_of.last_shared_layers), graph, heads,
                      mixing.reader(model, task_names, graph), trunk)


def _representations(arch, features, task_names, config):
  """({task: [B, H] head input}, the TaskGraph or None, the `sharing.Sharing` of the layers)."""
  if arch in config_lib.SEPARATE_NETWORKS:
    task_layers = {t: [] for t in task_names}
    reps = {t: _stack(features, config.trunk_units + config.head_units, f"{t}_net", config,
                      task_layers[t]) for t in task_names}
    return reps, None, sharing.Sharing({}, [], task_layers, [])
  if arch in sharing.ADAPTIVE:
    shared_by = sharing.build(arch, features, task_names, config)
  else:
    layers = []
    trunk = _stack(features, config.trunk_units, "trunk", config, layers)
    shared_by = sharing.Sharing({t: trunk for t in task_names}, layers,
                                {t: [] for t in task_names}, layers[-1:])
  reps = {t: _stack(shared_by.inputs[t], config.head_units, f"{t}_tower", config,
                    shared_by.task_layers[t], first_level=len(config.trunk_units))
          for t in task_names}
  graph = None
  if arch == "structured":
    graph = TaskGraph(len(task_names), config.graph_init, config.graph_sparsity,
                      name="task_graph")
    shared_by.shared_layers.append(graph)
    reps = dict(zip(task_names, graph([reps[t] for t in task_names])))
  return reps, graph, shared_by
