"""The synthetic generator with its knobs turned (kmtl/data/knobs.py): the default's alloys,
descriptors and tasks, with the forms, correlation, label counts, overlap and noise of
resistivity and hardness set, and optionally a thermal-conductivity task.

The draws come in the default's order (compositions, resistivity noise, hardness noise,
amorphous labels, which rows carry which labels), so knobs at their default values give the
embedded default exactly; the conductivity task draws after all of them.
"""

import numpy as np
import pandas as pd

from kmtl.data import featurize
from kmtl.data import knobs as knobs_lib
from kmtl.data import schema
from kmtl.data import synthetic

CONDUCTIVITY_TASK = "thermal_conductivity"


def _alloys(rng, num_rows, elements):
  """([N, E] fractions, [N, 6] descriptors, {descriptor: [N]})."""
  fractions = synthetic._compositions(rng, num_rows, len(elements))  # pylint: disable=protected-access
  values = featurize.descriptors(fractions, elements)
  return fractions, values, {n: values[:, i] for i, n in enumerate(schema.DESCRIPTOR_NAMES)}


def _frame(fractions, values, elements, targets):
  """The table: composition strings, the 21 features, then the target columns."""
  symbols = np.array(elements)
  decimals = synthetic.FRACTION_DECIMALS
  frame = pd.DataFrame(np.concatenate([fractions, values], axis=1),
                       columns=list(schema.feature_names(elements)))
  frame.insert(0, "composition", [
      "".join(f"{el}{x:.{decimals}f}".rstrip("0").rstrip(".")
              for el, x in zip(symbols[row > 0], row[row > 0])) for row in fractions])
  for name, column in targets.items():
    frame[name] = column
  return frame


def _noise_free(rng, knobs, num_rows):
  """(fractions, descriptors, {descriptor: [N]}, {task: [N] noise-free target}) of `num_rows`
  new alloys."""
  elements = schema.DEFAULT_ELEMENTS
  fractions, values, d = _alloys(rng, num_rows, elements)
  clean = {task: knobs_lib.noise_free(knobs.form(task), task, fractions, d, elements)
           for task in knobs_lib.SHAPED}
  if knobs.latent is not None:
    clean["hardness"] = knobs_lib.correlated(clean["resistivity"], clean["hardness"],
                                             knobs.latent)
  return fractions, values, d, clean


def target_correlation(knobs, seed=0):
  """The correlation of noise-free log resistivity and log hardness over every alloy of the
  set of `knobs`, labelled or not: how alike the two targets are, whatever the forms."""
  clean = _noise_free(np.random.default_rng(seed), knobs, sum(knobs.label_groups()))[3]
  return float(np.corrcoef(np.log(clean["resistivity"]), np.log(clean["hardness"]))[0, 1])


def generate(seed=0, part=0, knobs=None):
  """The synthetic set with `knobs` (a `knobs.Knobs`) as a DataFrame; part k > 0 is another
  draw, as `synthetic.generate`'s."""
  knobs = knobs or knobs_lib.Knobs()
  rng = np.random.default_rng(seed if part == 0 else [seed, part])
  elements = schema.DEFAULT_ELEMENTS
  groups_sizes = knobs.label_groups()
  num_rows = sum(groups_sizes)
  fractions, values, d, clean = _noise_free(rng, knobs, num_rows)
  measured = {task: clean[task] * np.exp(rng.normal(0.0, knobs.noise_sd(task), num_rows))
              for task in knobs_lib.SHAPED}
  amorphous = (rng.random(num_rows) < synthetic.amorphous_probability(d)).astype(np.float64)
  groups = rng.permutation(np.repeat(np.arange(5), groups_sizes))
  labelled = {"resistivity": groups <= 2, "hardness": (groups == 1) | (groups == 3),
              "amorphous": (groups == 2) | (groups == 4)}
  targets = {"resistivity": measured["resistivity"], "hardness": measured["hardness"],
             "amorphous": amorphous}
  frame = _frame(fractions, values, elements,
                 {t: np.where(labelled[t], v, np.nan) for t, v in targets.items()})
  if knobs.conductivity is not None:
    frame = _with_conductivity(frame, rng, knobs, measured["resistivity"], d, labelled)
  return frame


def _with_conductivity(frame, rng, knobs, resistivity, d, labelled):
  """`frame` with the conductivity column: on `CONDUCTIVITY_LABELS` of its resistivity rows,
  or on as many new rows labelled for it alone (their resistivity drawn but unlabelled)."""
  kind, count = knobs.conductivity, knobs_lib.CONDUCTIVITY_LABELS
  if kind.endswith("same_rows"):
    rows = rng.choice(np.flatnonzero(labelled["resistivity"]), count, replace=False)
    column = np.full(len(frame), np.nan)
    column[rows] = knobs_lib.conductivity(kind, resistivity[rows],
                                          {k: v[rows] for k, v in d.items()}, rng)
    return frame.assign(**{CONDUCTIVITY_TASK: column})
  elements = schema.DEFAULT_ELEMENTS
  fractions, values, new_d = _alloys(rng, count, elements)
  clean = knobs_lib.noise_free(knobs.form("resistivity"), "resistivity", fractions, new_d,
                               elements)
  own_rho = clean * np.exp(rng.normal(0.0, knobs.noise_sd("resistivity"), count))
  extra = _frame(fractions, values, elements, {
      "resistivity": np.full(count, np.nan), "hardness": np.full(count, np.nan),
      "amorphous": np.full(count, np.nan),
      CONDUCTIVITY_TASK: knobs_lib.conductivity(kind, own_rho, new_d, rng)})
  return pd.concat([frame.assign(**{CONDUCTIVITY_TASK: np.nan}), extra], ignore_index=True)
