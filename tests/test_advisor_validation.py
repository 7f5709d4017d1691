"""The advisor's validation: a finished study and its advice read into a scenario, refused when
they ran on different settings, and the confusion tables counted by hand."""

import json

import pytest

from kmtl import advisor_validation

SETTINGS = {"data.fingerprint": "f00d", "data.group_split": True, "train.batch_size": 32,
            "train.learning_rate": 0.001, "train.task_weights": "inverse_count",
            "model.hidden": 128}


def _write(path, value):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(value))


def _study(folder, advice_settings=None):
  """A finished two-task study: `shared` hurts a and leaves b alone; the advice predicts a hurt
  and b helped, with a negative cosine."""
  for config, seconds in (("independent", 30.0), ("shared", 50.0)):
    _write(folder / "cells" / f"{config}__seed0.json",
           {"config": config, "seed": 0, "seconds": seconds, "settings": SETTINGS})
  _write(folder / "summary.json", [
      {"config": "independent", "task": "a", "metric": "r2"},
      {"config": "shared", "task": "a", "metric": "r2", "verdict": "negative transfer"},
      {"config": "shared", "task": "a", "metric": "mae"},
      {"config": "shared", "task": "b", "metric": "r2", "verdict": "no significant difference"}])
  _write(folder / "advice" / "advice.json", {
      "pairs": [{"pair": "a:b", "cosine_all_rows": -0.2}],
      "tasks": [{"task": "a", "verdict": "hurts"}, {"task": "b", "verdict": "helps"}],
      "probe_seconds": 2.0,
      "settings": {**SETTINGS, "model.hidden": 64, **(advice_settings or {})}})
  return str(folder)


def test_a_study_and_its_advice_make_a_scenario(tmp_path):
  scenario = advisor_validation.study_scenario(_study(tmp_path / "pair"), "shared")
  assert scenario.name == "pair"
  assert scenario.measured == {"a": "hurts", "b": "no effect"}
  assert scenario.study_seconds == 80.0 and scenario.probe_seconds == 2.0


@pytest.mark.parametrize("changed", [{"train.batch_size": 64}, {"data.fingerprint": "beef"}])
def test_advice_on_other_settings_is_refused_naming_them(tmp_path, changed):
  folder = _study(tmp_path / "pair", changed)
  with pytest.raises(ValueError, match=f"other settings than the study's \\({list(changed)[0]}"):
    advisor_validation.study_scenario(folder, "shared")


def test_a_study_without_advice_is_refused_naming_the_file(tmp_path):
  folder = _study(tmp_path / "pair")
  (tmp_path / "pair" / "advice" / "advice.json").unlink()
  with pytest.raises(ValueError, match="pair/advice/advice.json: not found"):
    advisor_validation.study_scenario(folder, "shared")
  (tmp_path / "pair" / "advice" / "advice.json").write_text("{}")
  with pytest.raises(ValueError, match="advice.json: not an advice.json"):
    advisor_validation.study_scenario(folder, "shared")
  _study(tmp_path / "pair")
  with pytest.raises(ValueError, match="no `gradnorm` cells"):
    advisor_validation.study_scenario(folder, "gradnorm")


def test_the_tally_counts_every_predictor_by_hand(tmp_path):
  tally = advisor_validation.Tally("shared")
  tally.add(advisor_validation.study_scenario(_study(tmp_path / "pair"), "shared"))
  # measured (a, b) = (hurts, no effect); predicted: advisor (hurts, helps), always no effect
  # (no effect, no effect), always hurts (hurts, hurts), cosine -0.2 < 0 (hurts, hurts).
  assert tally.outcomes["advisor"] == [("hurts", "hurts"), ("helps", "no effect")]
  assert tally.outcomes["cosine < 0 hurts"] == [("hurts", "hurts"), ("hurts", "no effect")]
  text = tally.markdown()
  assert "1 scenarios, 2 task verdicts of `shared` against STL" in text
  assert "median 0.0250, max 0.0250" in text
  assert "advisor: accuracy 0.50 (1 / 2)" in text
  assert "| helps | 0 | 1 | 0 |" in text  # the advisor's row "helps": b, measured no effect
  assert "- pair, b: predicted helps, measured no effect" in text
  assert text.count("accuracy 0.50") == 4


def test_confusion_counts_and_accuracy():
  table, accuracy = advisor_validation.confusion(
      [("hurts", "hurts"), ("no effect", "hurts"), ("no effect", "no effect"),
       ("helps", "helps")])
  assert accuracy == 0.75
  assert table.splitlines()[2:] == ["| hurts | 1 | 0 | 0 |", "| no effect | 1 | 1 | 0 |",
                                    "| helps | 0 | 0 | 1 |"]


def test_posterior_verdicts_map_to_the_advisor_classes_and_undecided_measures_nothing():
  rows = [{"config": "shared", "task": t, "metric": "r2", "verdict": v}
          for t, v in (("a", "equivalent"), ("b", "undecided"), ("c", "positive transfer"),
                       ("d", "no significant difference"))]
  assert advisor_validation.measured_verdicts(rows, "shared") == {
      "a": "no effect", "c": "helps", "d": "no effect"}
