"""Published Matbench v0.1 leaderboard rows that `kmtl.benchmark` prints beside its own.

Source: github.com/materialsproject/matbench (MIT licence), commit 936176db18ca4cd7b38cbd957c017a5bac770c6b
(2024-01-20), the first table of `docs_src/Leaderboards Per-Task/matbench_v0.1_<task>.md`.
Every score is the mean and population spread (ddof 0) over the 5 official folds of the
per-fold score. Matbench's glass "ROC-AUC" is computed on hard labels, so it equals the
balanced accuracy at threshold 0.5; it is listed here as `balanced_accuracy`.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Entry:
  """One leaderboard row: the algorithm and {score: (mean, std)} over the folds."""
  algorithm: str
  scores: dict


MATBENCH_STEELS = (  # yield strength, MAE in MPa, lower is better
    Entry("TPOT-Mat", {"mae": (79.9468, 13.5883)}),
    Entry("AutoML-Mat", {"mae": (82.3043, 8.8565)}),
    Entry("MODNet v0.1.12", {"mae": (87.7627, 12.2188)}),
    Entry("RF-Regex Steels", {"mae": (90.5896, 6.7138)}),
    Entry("MODNet v0.1.10", {"mae": (96.2139, 9.8352)}),
    Entry("AMMExpress v2020", {"mae": (97.4929, 13.7919)}),
    Entry("RF-SCM/Magpie", {"mae": (103.5125, 11.0368)}),
    Entry("CrabNet", {"mae": (107.3160, 18.9057)}),
    Entry("Darwin", {"mae": (123.2932, 13.9542)}),
    Entry("gptchem", {"mae": (143.0028, 16.9642)}),
    Entry("Dummy (mean)", {"mae": (229.7445, 9.6958)}),
)

MATBENCH_GLASS = (  # glass formation; Matbench "ROC-AUC" (= balanced accuracy) and F1
    Entry("MODNet v0.1.12", {"balanced_accuracy": (0.9603, 0.0075), "f1": (0.9784, None)}),
    Entry("AMMExpress v2020", {"balanced_accuracy": (0.8607, 0.0199), "f1": (0.9043, None)}),
    Entry("RF-SCM/Magpie", {"balanced_accuracy": (0.8587, 0.0158), "f1": (0.9278, None)}),
    Entry("MODNet v0.1.10", {"balanced_accuracy": (0.8107, 0.0212), "f1": (0.9104, None)}),
    Entry("gptchem", {"balanced_accuracy": (0.7762, 0.0122), "f1": (0.8782, None)}),
    Entry("Darwin", {"balanced_accuracy": (0.7668, 0.0133), "f1": (0.8722, None)}),
    Entry("Dummy (stratified)", {"balanced_accuracy": (0.5005, 0.0178), "f1": (0.7127, None)}),
)

BY_BENCHMARK = {"matbench_steels": MATBENCH_STEELS, "matbench_glass": MATBENCH_GLASS}
