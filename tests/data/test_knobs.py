"""The synthetic generator's knobs: the defaults give the embedded default exactly, and each
knob sets what it says, checked on the generated table."""

import numpy as np
import pytest

from kmtl import config as config_lib
from kmtl.data import controlled
from kmtl.data import io
from kmtl.data import knobs
from kmtl.data import synthetic


@pytest.fixture(scope="module")
def default():
  return synthetic.generate(0)


def test_knobs_at_their_default_values_give_the_embedded_default(default):
  explicit = knobs.Knobs(forms=(("resistivity", "polynomial"), ("hardness", "power_law")),
                         counts=(("resistivity", 52_388), ("hardness", 800)), overlap=0.6,
                         noise=(("resistivity", 0.062), ("hardness", 0.195)))
  assert not explicit.is_default()  # the general path runs, and draws as the default does
  assert controlled.generate(0, knobs=explicit).equals(default)
  assert controlled.generate(0).equals(default)


def test_counts_and_overlap_set_the_label_groups():
  frame = controlled.generate(1, knobs=knobs.Knobs(counts=(("hardness", 2000),), overlap=0.25))
  has = {t: frame[t].notna() for t in ("resistivity", "hardness", "amorphous")}
  assert has["hardness"].sum() == 2000 and has["resistivity"].sum() == 52_388
  assert (has["hardness"] & has["resistivity"]).sum() == 500
  assert (has["amorphous"]).sum() == 840


@pytest.mark.parametrize("strength", [0.0, 0.5, 0.9])
def test_latent_strength_is_the_correlation_of_noise_free_log_targets(strength):
  frame = controlled.generate(0, knobs=knobs.Knobs(
      latent=strength, noise=(("resistivity", 0.0), ("hardness", 0.0)),
      counts=(("hardness", 52_388),), overlap=1.0))
  both = frame["resistivity"].notna() & frame["hardness"].notna()
  log_rho, log_hv = np.log(frame["resistivity"][both]), np.log(frame["hardness"][both])
  # The mixing is exact over every row; 51,908 of the 53,228 carry both labels.
  assert both.sum() == 51_908
  assert np.corrcoef(log_rho, log_hv)[0, 1] == pytest.approx(strength, abs=0.02)


def test_forms_change_the_target_and_noise_sets_its_spread(default):
  matched = controlled.generate(0, knobs=knobs.Knobs(forms=(("hardness", "polynomial"),)))
  np.testing.assert_array_equal(matched["resistivity"], default["resistivity"])
  assert not np.allclose(matched["hardness"].dropna(), default["hardness"].dropna())
  quiet = controlled.generate(0, knobs=knobs.Knobs(noise=(("hardness", 0.0),)))
  # Same rows, same noise-free hardness: the log ratio is the default's noise, sd 0.195.
  log_noise = np.log(default["hardness"] / quiet["hardness"]).dropna()
  assert log_noise.std() == pytest.approx(0.195, rel=0.1)


def test_wiedemann_franz_conductivity_on_resistivity_rows(default):
  frame = controlled.generate(0, knobs=knobs.Knobs(conductivity="derived_same_rows"))
  kappa = frame[controlled.CONDUCTIVITY_TASK]
  rows = kappa.notna()
  assert rows.sum() == knobs.CONDUCTIVITY_LABELS and frame["resistivity"][rows].notna().all()
  # kappa = L0 T / rho + phonon term, within the 5% log-normal noise: rho 100 micro-ohm cm
  # gives 2.44e-8 * 300 / 1e-6 + 3 = 10.32 W/(m K).
  expected = 2.44e-8 * 300 / (frame["resistivity"][rows] * 1e-8) + 3.0
  assert np.std(np.log(kappa[rows] / expected)) == pytest.approx(0.05, rel=0.15)
  assert frame.drop(columns=controlled.CONDUCTIVITY_TASK).equals(default)


def test_conductivity_on_rows_of_its_own():
  frame = controlled.generate(0, knobs=knobs.Knobs(conductivity="independent_other_rows"))
  kappa = frame[controlled.CONDUCTIVITY_TASK].notna()
  assert len(frame) == synthetic.NUM_ROWS + knobs.CONDUCTIVITY_LABELS
  assert kappa.sum() == knobs.CONDUCTIVITY_LABELS
  assert frame.loc[kappa, ["resistivity", "hardness", "amorphous"]].isna().all().all()


def test_the_data_config_loads_a_knobbed_set_and_refuses_knobs_on_a_file():
  cfg = config_lib.DataConfig(
      tasks=config_lib.schema.parse_tasks("resistivity,thermal_conductivity"),
      synthetic_knobs=knobs.Knobs(conductivity="derived_other_rows"))
  data = io.load_from_config(cfg)
  assert int((~np.isnan(data.labels["thermal_conductivity"])).sum()) == 800
  with pytest.raises(ValueError, match="--synthetic_\\* flags shape the embedded"):
    config_lib.DataConfig(path="x.csv", synthetic_knobs=knobs.Knobs(latent=0.5))


@pytest.mark.parametrize("kwargs, message", [
    (dict(forms=(("hardness", "cubic"),)), "unknown form 'cubic'"),
    (dict(forms=(("amorphous", "linear"),)), "'amorphous' is not one of"),
    (dict(latent=1.5), "--synthetic_latent=1.5"),
    (dict(overlap=-0.1), "--synthetic_overlap=-0.1"),
    (dict(counts=(("hardness", 1),)), "at least 2"),
    (dict(conductivity="guessed"), "--synthetic_conductivity='guessed'"),
])
def test_bad_knobs_are_named(kwargs, message):
  with pytest.raises(ValueError, match=message):
    knobs.Knobs(**kwargs)
