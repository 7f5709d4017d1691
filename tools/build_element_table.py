"""Build kmtl's shipped element tables from the element data that PyPI packages carry.

Writes `kmtl/data/elements.csv` (per-element facts for the descriptors and the synthetic
generator), `kmtl/data/mixing_enthalpy.csv` (Takeuchi-Inoue binary mixing enthalpies) and
`kmtl/data/magpie_elements.csv` (the 22 element properties of matminer's Magpie preset, for
kmtl/data/magpie_preset.py; `--tables=magpie` writes only this one, from the matminer wheel).
The source packages are read from their wheels and never become runtime dependencies:

    pip download --no-deps -d /tmp/wheels pymatgen-core matminer
    python tools/build_element_table.py --wheels=/tmp/wheels

Sources:
- pymatgen-core, `pymatgen/core/periodic_table.json.gz` (MIT licence): atomic mass, metallic
  radius, empirical atomic radius, Pauling electronegativity, melting point, elemental
  electrical resistivity.
- matminer, `matminer/utils/data_files/magpie_elementdata/{MiracleRadius,Column}.table`
  (Magpie element data, BSD-style LBNL licence): Miracle radii (D. B. Miracle et al., Int.
  Mater. Rev. 55 (2010) 218) and the periodic-table column used for the HEA valence convention.
- matminer, `matminer/utils/data_files/MiedemaLiquidDeltaHf.tsv`: the Takeuchi-Inoue table
  (A. Takeuchi, A. Inoue, Mater. Trans. 46 (2005) 2817), cited as such by matminer's
  `MixingEnthalpy`.
"""

import csv
import glob
import gzip
import io
import json
import os
import sys
import zipfile

from absl import app
from absl import flags

_WHEELS = flags.DEFINE_string("wheels", None, "Folder holding the pymatgen-core and matminer wheels.")
_TABLES = flags.DEFINE_list("tables", ["elements", "magpie"],
                            "Which tables to write: elements (elements.csv and "
                            "mixing_enthalpy.csv), magpie (magpie_elements.csv).")
_OUT_DIR = flags.DEFINE_string(
    "out_dir", os.path.join(os.path.dirname(__file__), "..", "kmtl", "data"),
    "Folder to write elements.csv and mixing_enthalpy.csv into.")

_MAGPIE = "matminer/utils/data_files/magpie_elementdata/"
_HEADER = """\
# Element facts for kmtl's descriptors, written by tools/build_element_table.py.
# pymatgen-core {pymatgen} periodic_table.json.gz (MIT): atomic mass, metallic radius (pm),
#   empirical atomic radius (pm), Pauling electronegativity, melting point (K), electrical
#   resistivity (ohm m, written here in micro-ohm cm).
# matminer {matminer} Magpie tables (BSD-style LBNL): Miracle radius (pm), Miracle et al. 2010;
#   valence electrons in the HEA convention, from the periodic-table column: the group number
#   for s and d blocks (Fe 8, Ni 10, Cu 11), group - 10 for the p block (Al 3, Si 4); Magpie
#   lists lanthanides and actinides as column 3.
"""


def _wheel(pattern):
  found = sorted(glob.glob(os.path.join(_WHEELS.value, pattern)))
  if not found:
    raise app.UsageError(f"No wheel matching {pattern} in --wheels={_WHEELS.value}.")
  return found[-1]


def _version(wheel_path):
  return os.path.basename(wheel_path).split("-")[1]


def _magpie_table(zf, name):
  lines = zf.read(_MAGPIE + name).decode().split()
  return [None if v == "NA" else float(v) for v in lines]


def _write_atomic(path, text):
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8", newline="") as f:
    f.write(text)
  os.replace(tmp, path)


def _write_magpie_preset(mm_wheel):
  """magpie_elements.csv: every property of the preset for Z = 1 .. 103, as matminer reads
  them (a value that is not a number, "Missing", is left empty)."""
  from kmtl.data import magpie_preset  # pylint: disable=g-import-not-at-top
  with zipfile.ZipFile(mm_wheel) as zf:
    columns = {}
    for name in magpie_preset.PROPERTIES:
      values = []
      for line in zf.read(_MAGPIE + name + ".table").decode().splitlines():
        try:
          values.append(float(line.strip()))
        except ValueError:
          values.append(None)
      columns[name] = values
  symbols = _symbols_by_number()
  out = io.StringIO()
  out.write(f"# The element properties of matminer's Magpie preset (ElementProperty.from_preset"
            f"(\"magpie\")),\n# matminer {_version(mm_wheel)} magpie_elementdata/*.table "
            "(Magpie element data, Ward et al.,\n# npj Comput. Mater. 2, 16028 (2016); matminer's "
            "BSD-style LBNL licence: LICENSE-matminer.txt).\n")
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["symbol", *magpie_preset.PROPERTIES])
  for z, symbol in enumerate(symbols, start=1):
    row = [columns[name][z - 1] if z - 1 < len(columns[name]) else None
           for name in magpie_preset.PROPERTIES]
    writer.writerow([symbol, *("" if v is None else repr(v) for v in row)])
  _write_atomic(os.path.join(_OUT_DIR.value, "magpie_elements.csv"), out.getvalue())
  print(f"wrote the Magpie preset's {len(magpie_preset.PROPERTIES)} properties of "
        f"{len(symbols)} elements", file=sys.stderr)


def _symbols_by_number():
  """Element symbols of Z = 1 .. 103, from the shipped elements.csv."""
  with open(os.path.join(_OUT_DIR.value, "elements.csv"), encoding="utf-8") as f:
    rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
  return [r["symbol"] for r in sorted(rows, key=lambda r: int(r["atomic_number"]))]


def main(argv):
  del argv
  if not _WHEELS.value:
    raise app.UsageError("--wheels is required.")
  if "magpie" in _TABLES.value:
    _write_magpie_preset(_wheel("matminer-*.whl"))
  if "elements" not in _TABLES.value:
    return
  pmg_wheel, mm_wheel = _wheel("pymatgen_core-*.whl"), _wheel("matminer-*.whl")
  with zipfile.ZipFile(pmg_wheel) as zf:
    periodic = json.loads(gzip.decompress(zf.read("pymatgen/core/periodic_table.json.gz")))
  with zipfile.ZipFile(mm_wheel) as zf:
    miracle = _magpie_table(zf, "MiracleRadius.table")
    column = _magpie_table(zf, "Column.table")
    enthalpy_tsv = zf.read("matminer/utils/data_files/MiedemaLiquidDeltaHf.tsv").decode()

  # Deuterium and tritium are listed as elements of their own; they are isotopes of H.
  symbols = sorted((s for s in periodic if not s.startswith("_") and s not in ("D", "T")),
                   key=lambda s: periodic[s]["Atomic no"])
  out = io.StringIO()
  out.write(_HEADER.format(pymatgen=_version(pmg_wheel), matminer=_version(mm_wheel)))
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["symbol", "atomic_number", "atomic_mass_u", "metallic_radius_pm",
                   "atomic_radius_empirical_pm", "miracle_radius_pm",
                   "electronegativity_pauling", "valence_electrons_vec", "melting_point_k",
                   "electrical_resistivity_uohm_cm"])

  def num(value, scale=1.0):
    return "" if value is None else f"{float(value) * scale:.6g}"

  for symbol in symbols:
    e = periodic[symbol]
    z = e["Atomic no"]
    if z > 103:
      continue
    col = column[z - 1] if z - 1 < len(column) else None
    vec = None if col is None else (col - 10 if col > 12 else col)
    writer.writerow([
        symbol, z, num(e.get("Atomic mass")), num(e.get("Metallic radius"), 100.0),
        num(e.get("Atomic radius"), 100.0),
        num(miracle[z - 1] if z - 1 < len(miracle) else None), num(e.get("X")),
        num(vec), num(e.get("Melting point")),
        num(e.get("Electrical resistivity"), 1e8)])
  _write_atomic(os.path.join(_OUT_DIR.value, "elements.csv"), out.getvalue())

  out = io.StringIO()
  out.write(f"# Takeuchi-Inoue binary mixing enthalpies (kJ/mol), matminer {_version(mm_wheel)}\n"
            "# MiedemaLiquidDeltaHf.tsv; Takeuchi & Inoue, Mater. Trans. 46 (2005) 2817.\n")
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["element_a", "element_b", "mixing_enthalpy_kj_mol"])
  rows = [line.split() for line in enthalpy_tsv.splitlines()[1:] if line.strip()]
  for a, b, h in rows:
    writer.writerow([a, b, f"{float(h):g}"])
  _write_atomic(os.path.join(_OUT_DIR.value, "mixing_enthalpy.csv"), out.getvalue())
  print(f"wrote the elements up to Z = 103 and {len(rows)} enthalpy pairs", file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
