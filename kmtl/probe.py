"""The advisor's probe (kmtl/advisor.py): the shared model trained for a few epochs on the
run's split, with `kmtl/affinity.py`'s statistics measured on task-balanced batches after each
epoch."""

import dataclasses
import time

import numpy as np
import tensorflow as tf

from kmtl import advisor
from kmtl import affinity
from kmtl import experiment
from kmtl import models
from kmtl import predictive
from kmtl import trainer as trainer_lib
from kmtl.data import io
from kmtl.data import splits
from kmtl.surgery import registry


def _measure(probe, train, names, masks, rng, accumulator, batches):
  """Adds the statistics of `batches` task-balanced batches of `train` to `accumulator`."""
  for _ in range(batches):
    rows = advisor.balanced_batch(masks, rng)
    batch = train.take(rows)
    labels = np.stack([batch.labels[n] for n in names], axis=1)
    stats = probe.statistics(tf.constant(batch.features), tf.constant(labels),
                             tf.constant(masks[rows]))
    accumulator.add({k: v.numpy() for k, v in stats.items()})


def run(cfg, epochs=advisor.PROBE_EPOCHS, batches=advisor.PROBE_BATCHES, data=None):
  """(the advisor's report, the probe's seconds) for `cfg` (a `config.RunConfig`: its data,
  split, model, loss and training settings; its architecture and method are not used)."""
  start = time.perf_counter()
  experiment.set_seeds(cfg.seed)
  data = data if data is not None else io.load_from_config(cfg.data)
  prepared = splits.prepare(data, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed,
                            cfg.data.group_split, cfg.data.cv)
  names = [t.name for t in data.tasks]
  net = models.build_model("shared", names, len(prepared.input_names), cfg.model,
                           predictive.head_outputs(data.tasks))
  train_cfg = dataclasses.replace(cfg.train, arch="shared", surgery="none", epochs=epochs,
                                  summaries=False, grad_stats=False)
  trainer = trainer_lib.Trainer(train_cfg, net, data.tasks, prepared, registry.create("none"),
                                seed=cfg.seed, loss_config=cfg.loss)
  probe = affinity.AffinityProbe(net, data.tasks, cfg.loss, cfg.train.learning_rate,
                                 trainer.base_weights.numpy())
  masks = np.stack([prepared.train.masks[n] for n in names], axis=1)
  accumulator, rng = advisor.Accumulator(len(names)), np.random.default_rng(cfg.seed)
  trainer.fit(on_epoch_end=lambda _: _measure(probe, prepared.train, names, masks, rng,
                                              accumulator, batches))
  counts = (masks.T @ masks).astype(int).tolist()
  return advisor.advice(names, accumulator.means(), counts), time.perf_counter() - start
