"""The synthetic generator's knob flags (kmtl/data/knobs.py), defined once: `kmtl.run` and the
study take them through kmtl/data_flags.py, `python -m kmtl.data.synthetic` directly."""

from absl import flags

from kmtl.data import knobs as knobs_lib


def _pairs(text, flag, convert):
  """"task:value,task:value" -> ((task, value), ...); ValueError naming `flag`."""
  pairs = []
  for item in (text or "").split(","):
    if not item.strip():
      continue
    task, _, value = item.partition(":")
    try:
      pairs.append((task.strip(), convert(value.strip())))
    except ValueError:
      raise ValueError(f"{flag}: {item.strip()!r} is not task:value") from None
  return tuple(pairs)


class KnobFlags:
  """The flag holders of the knobs, defined in the calling entry point's flag set."""

  def __init__(self):
    self.forms = flags.DEFINE_string(
        "synthetic_forms", None, "Synthetic set: functional forms, e.g. "
        f"'hardness:polynomial' (forms: {', '.join(knobs_lib.FORMS)}; default resistivity "
        "polynomial, hardness power_law).")
    self.latent = flags.DEFINE_float(
        "synthetic_latent", None, "Synthetic set: correlation in [0, 1] of the noise-free "
        "log resistivity and log hardness (a shared latent factor).")
    self.counts = flags.DEFINE_string(
        "synthetic_counts", None, "Synthetic set: labels per task, e.g. 'hardness:8000' "
        "(default resistivity 52388, hardness 800).")
    self.overlap = flags.DEFINE_float(
        "synthetic_overlap", None, "Synthetic set: share of hardness rows also labelled for "
        "resistivity (default 0.6).")
    self.noise = flags.DEFINE_string(
        "synthetic_noise", None, "Synthetic set: sd of log-normal noise per task, e.g. "
        "'hardness:0.1' (default resistivity 0.062, hardness 0.195).")
    self.conductivity = flags.DEFINE_enum(
        "synthetic_conductivity", None, list(knobs_lib.CONDUCTIVITY),
        "Synthetic set: add a thermal_conductivity task, derived from resistivity by "
        "Wiedemann-Franz or measured independently, on resistivity's rows or its own.")

  def knobs(self):
    """The flags as `knobs.Knobs`; ValueError naming the flag otherwise."""
    return knobs_lib.Knobs(
        forms=_pairs(self.forms.value, "--synthetic_forms", str),
        latent=self.latent.value,
        counts=_pairs(self.counts.value, "--synthetic_counts", int),
        overlap=self.overlap.value,
        noise=_pairs(self.noise.value, "--synthetic_noise", float),
        conductivity=self.conductivity.value)


def define():
  """Defines the knob flags (once per program); returns their holders."""
  return KnobFlags()
