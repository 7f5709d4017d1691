"""What scores a tuning trial: the mean validation loss over the scored tasks (all, or those
of `--tune_tasks`), on the split's validation rows or, with `--tune_folds=K`, averaged over K
composition-grouped folds of the training and validation rows, each task first over the folds
that validate it."""

import dataclasses

import numpy as np


def validation_losses(trainer, prepared, names):
  """{task: validation loss (model units)} of the trainer's current weights, for the tasks in
  `names` that have validation rows."""
  losses, _ = trainer.evaluate(prepared.val)
  return {t.name: float(loss) for t, loss in zip(trainer.tasks, losses)
          if t.name in names and prepared.val.masks[t.name].sum() > 0}


def scored_names(data, plan):
  """The names of the tasks whose validation loss scores a trial."""
  return tuple(plan.tasks) or tuple(t.name for t in data.tasks)


def objective_splits(data, seen, plan, seed):
  """The PreparedData a trial trains and validates on: `seen` itself (the split without its
  test rows), or with `plan.folds` = K, K copies whose training and validation rows are the
  seen rows dealt into K folds by composition (shuffled with `seed`), fold k validating."""
  if plan.folds == 1:
    return [seen]
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  from kmtl.data import splits  # pylint: disable=g-import-not-at-top
  groups = data.groups()
  groups = np.concatenate([groups[seen.row_split == splits.TRAIN],
                           groups[seen.row_split == splits.VAL]])
  pool = splits.SplitArrays(
      np.concatenate([seen.train.features, seen.val.features]),
      {n: np.concatenate([seen.train.labels[n], seen.val.labels[n]]) for n in seen.train.labels},
      {n: np.concatenate([seen.train.masks[n], seen.val.masks[n]]) for n in seen.train.masks})
  unique = np.unique(groups)
  if len(unique) < plan.folds:
    raise ValueError(f"--tune_folds={plan.folds}: the training and validation rows hold "
                      f"only {len(unique)} compositions")
  fold_of_group = {}
  splitter = model_selection.KFold(plan.folds, shuffle=True, random_state=seed)
  for k, (_, held_out) in enumerate(splitter.split(unique)):
    fold_of_group.update((g, k) for g in unique[held_out])
  fold = np.array([fold_of_group[g] for g in groups])
  out = []
  for k in range(plan.folds):
    train = pool.take(np.flatnonzero(fold != k))
    for name in scored_names(data, plan):
      if not train.masks[name].any():
        raise ValueError(f"--tune_folds={plan.folds}: task {name!r} has labels in too few "
                          "compositions of the training and validation rows to train in "
                          f"every fold (fold {k + 1} has none)")
    out.append(dataclasses.replace(seen, train=train, val=pool.take(np.flatnonzero(fold == k))))
  return out


def trial_score(losses_per_fold):
  """A trial's score from its {task: validation loss} of each fold: the mean over tasks of
  each task's mean over the folds that validate it."""
  per_task = {}
  for losses in losses_per_fold:
    for name, loss in losses.items():
      per_task.setdefault(name, []).append(loss)
  if not per_task:
    raise ValueError("no scored task has validation rows")
  return float(np.mean([np.mean(v) for v in per_task.values()]))
