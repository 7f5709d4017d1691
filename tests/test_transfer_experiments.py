"""Controlled experiments: presets, the experiment table with Holm's correction over every
headline comparison, the gradient cosine of the cells, and the figure."""

import json

import numpy as np
import pytest

from kmtl import gradients
from kmtl import transfer_experiments
from kmtl import verdicts
from kmtl.data import knobs


def test_every_preset_point_is_valid_and_keeps_the_base_knobs():
  base = knobs.Knobs(noise=(("hardness", 0.1),))
  for name, preset in transfer_experiments.PRESETS.items():
    points = transfer_experiments.points(name, base)
    assert len(points) == len(preset.points) >= 3
    assert len({folder for _, folder, _ in points}) == len(points)
    for _, folder, point in points:
      assert folder and "/" not in folder
      assert point.noise == base.noise  # the preset sets only its own knob
  overlap = dict((label, k) for label, _, k in transfer_experiments.points("overlap", base))
  assert overlap["0"].overlap == 0.0 and overlap["0.6 (default)"].overlap is None


def _row(config, task, diff, p, verdict="undecided"):
  return {"config": config, "task": task, "metric": "r2", "diff": diff, "diff_ci": 0.01,
          "p": p, "n": 5, "failed": [], "verdict": verdict, "p_better": 0.1,
          "p_equivalent": 0.2, "p_worse": 0.7}


def test_experiment_rows_are_holm_corrected_across_points_with_the_cells_cosine():
  rows = {"a": [_row("shared", "resistivity", -0.05, 0.01, "negative transfer"),
                _row("shared", "hardness", 0.02, 0.04),
                {"config": "independent", "task": "hardness", "metric": "r2"}],
          "b": [_row("shared", "resistivity", -0.01, 0.5, "equivalent"),
                _row("shared", "hardness", -0.1, 0.001, "negative transfer")]}
  grad = lambda c: {"grad": {"cosine": {"resistivity:hardness": c}}}
  cells = {"a": {("shared", 0): grad(0.1), ("shared", 1): grad(0.3), ("independent", 0): {}},
           "b": {("shared", 0): grad(-0.2)}}
  headline = {"resistivity": "r2", "hardness": "r2"}
  out = transfer_experiments.summarize(rows, cells, headline)
  assert [r["point"] for r in out] == ["a", "a", "b", "b"]
  # Holm over all four p-values (0.01, 0.04, 0.5, 0.001): 0.03, 0.08, 0.5, 0.004.
  np.testing.assert_allclose([r["p_holm"] for r in out], [0.03, 0.08, 0.5, 0.004])
  # The verdicts are each comparison's own posterior's, whatever the family.
  assert [r["verdict"] for r in out] == [
      "negative transfer", "undecided", "equivalent", "negative transfer"]
  assert out[0]["posterior"] == [0.1, 0.2, 0.7]
  assert out[0]["cosine"] == pytest.approx(0.2) and out[2]["cosine"] == pytest.approx(-0.2)
  assert verdicts.holm([0.01, 0.04, 0.5, 0.001]) == pytest.approx([0.03, 0.08, 0.5, 0.004])


def test_the_experiment_files_are_written(tmp_path):
  rows = transfer_experiments.summarize(
      {"0": [_row("shared", "resistivity", -0.05, 0.01), _row("shared", "hardness", 0.0, 0.9)],
       "1": [_row("shared", "resistivity", 0.01, 0.3), _row("shared", "hardness", 0.02, 0.2)]},
      {"0": {}, "1": {}}, {"resistivity": "r2", "hardness": "r2"})
  table = transfer_experiments.write(str(tmp_path), "overlap", rows, {"0": 0.1, "1": 0.2})
  assert ("| 0 | 0.10 | resistivity (r2) | shared | 5 | -0.0500 +- 0.0100 | 0.04 | "
          "0.10 / 0.20 / 0.70 | undecided |") in table
  saved = json.loads((tmp_path / "experiment.json").read_text())
  assert saved["experiment"] == "overlap" and len(saved["rows"]) == 4
  assert (tmp_path / "experiment.png").read_bytes()[:4] == b"\x89PNG"


def test_epoch_means_average_each_pair_over_the_epochs_that_saw_it():
  history = [{"grad": {"cosine": {"a:b": 0.2}, "conflict_fraction": {"a:b": 0.5}}},
             {"grad": {"cosine": {"a:b": 0.4, "a:c": -1.0}, "conflict_fraction": {}}},
             {"epoch": 3}]
  means = gradients.epoch_means(history)
  assert means["cosine"] == pytest.approx({"a:b": 0.3, "a:c": -1.0})
  assert means["conflict_fraction"] == {"a:b": 0.5}


def test_the_scarce_preset_puts_every_scarce_label_on_an_abundant_row():
  from kmtl.data import controlled  # pylint: disable=g-import-not-at-top
  label, _, point = transfer_experiments.points("scarce", knobs.Knobs())[0]
  assert label == "30"
  frame = controlled.generate(seed=0, knobs=point)
  hardness, resistivity = frame["hardness"].notna(), frame["resistivity"].notna()
  assert int(hardness.sum()) == 30 and int(resistivity.sum()) == 5000
  assert bool((hardness <= resistivity).all())  # every hardness row has a resistivity label
