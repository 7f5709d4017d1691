"""The knobs of the synthetic generator for controlled experiments (kmtl/data/controlled.py).

Each knob changes one thing about the default's resistivity and hardness tasks:
- forms: the functional form of a task's noise-free target: `polynomial` in composition
  (pure-element terms plus pairwise excess terms, as Nordheim's rule), `power_law` in the
  descriptors, `exponential` in the descriptors, or `linear` in composition (a rule of mixtures).
  Defaults: resistivity polynomial, hardness power law. Each task has its own coefficients for
  each form, so matched forms are one family, never one function.
- latent: the correlation, exactly, of the two tasks' noise-free log targets: hardness's is
  replaced by latent * z_resistivity + sqrt(1 - latent^2) * (its own part orthogonal to it),
  in standard units, then put back on its own mean and spread.
- counts: labels per task; resistivity 52,388 and hardness 800 by default (the imbalance
  ratio).
- overlap: the share of hardness rows also labelled for resistivity (default 480 / 800).
- noise: the sd of a task's log-normal noise (defaults 0.062 and 0.195).
- conductivity: a thermal-conductivity task (W/(m K)) of `CONDUCTIVITY_LABELS` labels, either
  derived from the row's resistivity by Wiedemann-Franz, kappa = L0 T / rho + a phonon term,
  or measured independently (its own exponential form, unrelated to resistivity); its labels
  on rows labelled for resistivity (`same_rows`) or on rows of its own (`other_rows`).
"""

import dataclasses

import numpy as np

from kmtl.data import featurize

FORMS = ("polynomial", "power_law", "exponential", "linear")
SHAPED = ("resistivity", "hardness")  # the tasks whose form, counts and noise the knobs set
DEFAULT_FORMS = {"resistivity": "polynomial", "hardness": "power_law"}
DEFAULT_NOISE = {"resistivity": 0.062, "hardness": 0.195}
DEFAULT_COUNTS = {"resistivity": 52_388, "hardness": 800}
DEFAULT_OVERLAP = 480 / 800
CONDUCTIVITY = ("derived_same_rows", "derived_other_rows", "independent_same_rows",
                "independent_other_rows")
CONDUCTIVITY_LABELS = 800
LORENZ = 2.44e-8  # W Ohm K^-2, the Sommerfeld value of the Lorenz number L0
TEMPERATURE_K = 300.0
PHONON_W_MK = 3.0  # lattice conductivity of a concentrated alloy, W/(m K), the same for all
CONDUCTIVITY_NOISE = 0.05  # sd of its log-normal noise


@dataclasses.dataclass(frozen=True)
class Knobs:
  """Settings of the controlled generator; the defaults give the embedded default exactly.
  `forms`, `counts` and `noise` are ((task, value), ...) for resistivity and hardness."""
  forms: tuple = ()
  latent: float = None
  counts: tuple = ()
  overlap: float = None
  noise: tuple = ()
  conductivity: str = None

  def __post_init__(self):
    for name in ("forms", "counts", "noise"):
      unknown = [t for t, _ in getattr(self, name) if t not in SHAPED]
      if unknown:
        raise ValueError(f"--synthetic_{name}: {unknown[0]!r} is not one of {list(SHAPED)}")
    bad = [f for _, f in self.forms if f not in FORMS]
    if bad:
      raise ValueError(f"--synthetic_forms: unknown form {bad[0]!r}; expected one of "
                       f"{list(FORMS)}")
    if self.latent is not None and not 0.0 <= self.latent <= 1.0:
      raise ValueError(f"--synthetic_latent={self.latent}: must lie in [0, 1]")
    if self.overlap is not None and not 0.0 <= self.overlap <= 1.0:
      raise ValueError(f"--synthetic_overlap={self.overlap}: must lie in [0, 1]")
    if any(not c >= 2 for _, c in self.counts) or any(not s >= 0 for _, s in self.noise):
      raise ValueError("--synthetic_counts must be at least 2 and --synthetic_noise at least 0")
    if self.conductivity is not None and self.conductivity not in CONDUCTIVITY:
      raise ValueError(f"--synthetic_conductivity={self.conductivity!r}: expected one of "
                       f"{list(CONDUCTIVITY)}")
    if self.label_groups()[0] < 0:
      raise ValueError("--synthetic_counts: resistivity needs at least as many labels as its "
                       "rows shared with hardness and amorphous")

  def is_default(self):
    return self == Knobs()

  def check_source(self, path):
    """Knobs shape the embedded synthetic set only: a ValueError for data from a file."""
    if path is not None and not self.is_default():
      raise ValueError(f"--synthetic_* flags shape the embedded synthetic set; --data={path} "
                       "is a file")

  def form(self, task):
    return dict(self.forms).get(task, DEFAULT_FORMS[task])

  def noise_sd(self, task):
    return dict(self.noise).get(task, DEFAULT_NOISE[task])

  def label_groups(self):
    """Rows labelled for resistivity only, resistivity + hardness, resistivity + amorphous,
    hardness only, amorphous only (the default's 51,428 / 480 / 480 / 320 / 360)."""
    counts = {**DEFAULT_COUNTS, **dict(self.counts)}
    overlap = DEFAULT_OVERLAP if self.overlap is None else self.overlap
    both = int(round(overlap * counts["hardness"]))
    both = min(both, counts["resistivity"] - 480)
    return (counts["resistivity"] - both - 480, both, 480, counts["hardness"] - both, 360)


def _element(name, elements):
  return featurize.element_table().loc[list(elements)][name].to_numpy()


def _pairwise(fractions, pure, spread, base, slope):
  """sum_i x_i a_i + sum_{i<j} C_ij x_i x_j with C_ij = base + slope (q_i - q_j)^2."""
  excess = base + slope * (spread[:, None] - spread[None, :]) ** 2
  np.fill_diagonal(excess, 0.0)
  return fractions @ pure + 0.5 * np.einsum("ni,ij,nj->n", fractions, excess, fractions)


def noise_free(form, task, fractions, d, elements):
  """[N] noise-free target of `task` under `form`; the default forms are the default's
  physics (kmtl/data/synthetic.py)."""
  s_r = d["mixing_entropy_j_mol_k"] / featurize.GAS_CONSTANT
  delta, vec, t_melt = d["atomic_size_mismatch_pct"], d["vec"], d["melting_point_k"]
  h_mix = d["mixing_enthalpy_kj_mol"]
  rho, t_m = (_element(n, elements) for n in ("electrical_resistivity_uohm_cm",
                                               "melting_point_k"))
  if task == "resistivity":
    if form == "polynomial":
      return _pairwise(fractions, rho, _element("valence_electrons_vec", elements), 100.0, 8.0)
    if form == "power_law":
      return 59.0 * (1 + delta / 6.3) ** 0.8 * (vec / 6.0) ** -1.0 * (s_r / 1.23) ** 0.5
    if form == "exponential":
      return 100.0 * np.exp(0.08 * (delta - 6.3) + 0.25 * (vec - 6.0) + 0.03 * (h_mix + 8.6))
    return 5.6 * (fractions @ rho)
  if form == "power_law":
    return (70.0 * (1.0 + delta) ** 0.5 * (t_melt / 1000.0) * (vec / 8.0) ** -0.8
            * s_r ** 0.3)
  if form == "polynomial":
    return _pairwise(fractions, 0.15 * t_m, _element("metallic_radius_pm", elements), 300.0, 0.5)
  if form == "exponential":
    return 500.0 * np.exp(0.05 * (delta - 6.3) + 0.6 * (t_melt - 2150.0) / 1000.0
                          - 0.15 * (vec - 6.0))
  return 0.23 * (fractions @ t_m)


def correlated(reference, target, strength):
  """`target` (positive) remade so that corr(log reference, log result) is `strength`,
  keeping the log target's mean and sd."""
  standard = lambda v: (v - v.mean()) / v.std()
  z_ref, z = standard(np.log(reference)), standard(np.log(target))
  own = standard(z - np.mean(z * z_ref) * z_ref)
  log_target = np.log(target)
  mixed = strength * z_ref + np.sqrt(1.0 - strength ** 2) * own
  return np.exp(log_target.mean() + log_target.std() * mixed)


def conductivity(kind, resistivity, d, rng):
  """[n] thermal conductivity, W/(m K): Wiedemann-Franz from `resistivity` (micro-ohm cm) plus
  the phonon term, or an independent exponential form in the descriptors; log-normal noise."""
  if kind.startswith("derived"):
    clean = LORENZ * TEMPERATURE_K / (resistivity * 1e-8) + PHONON_W_MK
  else:
    clean = 10.0 * np.exp(-0.06 * (d["atomic_size_mismatch_pct"] - 6.3)
                          + 0.5 * (d["electronegativity_difference"] - 0.2)
                          - 0.4 * (d["melting_point_k"] - 2150.0) / 1000.0)
  return clean * np.exp(rng.normal(0.0, CONDUCTIVITY_NOISE, len(clean)))
