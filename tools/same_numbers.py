"""Test metrics of seven short runs, to check that a refactor changes no number.

    python tools/same_numbers.py --out=before.json       # on the old commit
    python tools/same_numbers.py --out=after.json --compare=before.json

Covers the single-task baseline, the joint-stream control, PCGrad, structured GradNorm, UW
with LDS, gradient scaling with FDS and Balanced MSE (seed 3, 2 epochs, batch 256, XLA on).
With --compare it prints each configuration's verdict and exits 1 if any number differs.
"""

import json
import sys

from absl import app
from absl import flags

from kmtl import config as config_lib
from kmtl import experiment
from kmtl import run_files

_OUT = flags.DEFINE_string("out", None, "Where to write the numbers (JSON).", required=True)
_COMPARE = flags.DEFINE_string("compare", None, "Earlier numbers to compare with.")

RUNS = (("independent", "none", ()), ("independent_joint", "none", ()),
        ("shared", "pcgrad", ()), ("structured", "gradnorm", ()), ("shared", "uw", ("lds",)),
        ("shared", "gradscale", ("fds",)), ("shared", "none", ("bmse",)))


def main(argv):
  del argv
  numbers = {}
  for arch, surgery, imbalance in RUNS:
    cfg = config_lib.RunConfig(
        train=config_lib.TrainConfig(arch=arch, surgery=surgery, epochs=2, batch_size=256,
                                     patience=2),
        imbalance=config_lib.ImbalanceConfig(methods=imbalance), seed=3)
    result = experiment.train_and_evaluate(cfg)
    numbers[f"{arch}:{surgery}:{'+'.join(imbalance)}"] = {"test": result["test"],
                                                          "training": result["training"]}
  with open(_OUT.value, "w", encoding="utf-8") as f:
    json.dump(run_files.json_safe(numbers), f, indent=1, sort_keys=True)  # NaN as null
  if _COMPARE.value:
    with open(_COMPARE.value, encoding="utf-8") as f:
      before = json.load(f)
    numbers = json.loads(json.dumps(run_files.json_safe(numbers)))
    same = {name: before.get(name) == value for name, value in numbers.items()}
    for name, ok in same.items():
      print(f"{name}: {'identical' if ok else 'DIFFERS'}")
    sys.exit(0 if all(same.values()) else 1)


if __name__ == "__main__":
  app.run(main)
