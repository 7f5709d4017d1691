"""Feature selection inside the training split (`--select_features=K`): the K inputs most
informative about the tasks, ranked by mutual information on the training rows only, as
MODNet ranks its features (De Breuck et al., npj Computational Materials 7, 83, 2021; here the
relevance term alone, without MODNet's redundancy penalty).

A feature's score is the mean over tasks of its mutual information with the task's label on
the task's labelled training rows, each task's divided by its most informative feature's, so
that every task counts alike whatever its units. Ties keep the inputs' order. The model keeps
every input and reads the chosen columns (kmtl/models.py), so an export serves the same
feature table as without selection.
"""

import numpy as np

from kmtl.data import schema


def ranked_inputs(train, tasks, seed=0):
  """Input column indices, most informative first, from `train` (a `splits.SplitArrays` of
  standardised features), and the scores [F]."""
  from sklearn import feature_selection  # pylint: disable=g-import-not-at-top
  scores = []
  for task in tasks:
    rows = train.masks[task.name] > 0
    if rows.sum() < 4:
      continue
    x, y = train.features[rows], train.labels[task.name][rows]
    if task.kind in schema.CLASSIFICATION:
      mi = feature_selection.mutual_info_classif(x, y.astype(int), random_state=seed)
    else:
      mi = feature_selection.mutual_info_regression(x, y, random_state=seed)
    if mi.max() > 0:
      scores.append(mi / mi.max())
  score = np.mean(scores, axis=0) if scores else np.zeros(train.num_features)
  return np.argsort(-score, kind="stable"), score


def selected_inputs(prepared, tasks, count, seed=0):
  """The `count` chosen input indices in their input order, or None for every input; a
  ValueError naming the flag when there are not that many."""
  if not count:
    return None
  num_inputs = prepared.train.num_features
  if count > num_inputs:
    raise ValueError(f"--select_features={count}: the data has {num_inputs} inputs "
                     f"({', '.join(prepared.input_names[:4])}, ...)")
  order, _ = ranked_inputs(prepared.train, tasks, seed)
  return tuple(sorted(int(i) for i in order[:count]))
