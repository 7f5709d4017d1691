"""Assemble a real multi-task table from the public sets in ../shared/data.

    python tools/make_real_table.py --out=real.parquet [--shared_data=../shared/data]

Columns: `composition` (the normalised formula), `source` (file it came from), and targets:
  hardness          Vickers hardness, HV, of multi-principal-element alloys (mpea_hardness.csv;
                    room temperature only unless --noroom_temperature_only)
  glass             1 if an amorphous phase forms, mostly melt-spun ternaries (matbench_glass.csv)
  resistivity_te    electrical resistivity, micro-ohm cm, of thermoelectric compounds at 300 K
                    (ucsb_thermoelectrics_resistivity.csv, rows whose rho and sigma agree): not
                    metal alloys, and spanning decades, so train it with a log transform.
No alloy carries two labels, so the tasks' label sets are disjoint. Rows the featurizer cannot
describe (a pair missing from the Takeuchi-Inoue table, an element without a radius) are
dropped and counted. Use it with `--flagfile=flags/real.cfg --data=real.parquet`.
"""

import os

from absl import app
from absl import flags
import numpy as np
import pandas as pd

from kmtl.data import featurize
from kmtl.data import tables

_OUT = flags.DEFINE_string("out", None, "Where to write the table (.parquet or .csv).")
_SHARED = flags.DEFINE_string(
    "shared_data", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"),
    "The folder with the public data sets.")
_ROOM_TEMPERATURE = flags.DEFINE_bool("room_temperature_only", True,
                                      "Keep hardness measured at 25 C or unstated only.")
flags.mark_flag_as_required("out")


def describable(formula):
  """True if the featurizer can compute every descriptor of `formula`."""
  try:
    parsed = featurize.parse_composition(formula)
    elements = tuple(parsed)
    featurize.descriptors(featurize.fractions_matrix([parsed], elements), elements)
    return True
  except featurize.CompositionError:
    return False


def build(shared, room_temperature_only=True):
  """The table as a DataFrame, and {source: (rows read, rows kept)}."""
  hard = pd.read_csv(os.path.join(shared, "mpea_hardness.csv"))
  if room_temperature_only:
    temperature = hard["test_temperature_c"]
    hard = hard[temperature.isna() | (temperature == 25)]
  glass = pd.read_csv(os.path.join(shared, "matbench_glass.csv"))
  te = pd.read_csv(os.path.join(shared, "ucsb_thermoelectrics_resistivity.csv"))
  te = te[(te["temperature_k"] == 300) & (te["rho_sigma_consistent"] == 1)]
  parts = [
      pd.DataFrame({"composition": hard["formula"], "source": "mpea_hardness",
                    "hardness": hard["hardness_hv"]}),
      pd.DataFrame({"composition": glass["formula"], "source": "matbench_glass",
                    "glass": glass["gfa"].astype(float)}),
      pd.DataFrame({"composition": te["formula"], "source": "ucsb_thermoelectrics",
                    "resistivity_te": te["resistivity_uohm_cm"]}),
  ]
  counts = {}
  kept = []
  for part in parts:
    ok = part["composition"].map(describable)
    counts[part["source"].iloc[0]] = (len(part), int(ok.sum()))
    kept.append(part[ok])
  table = pd.concat(kept, ignore_index=True)
  for column in ("hardness", "glass", "resistivity_te"):
    table[column] = table[column].astype(np.float64)
  return table, counts


def main(argv):
  del argv
  table, counts = build(_SHARED.value, _ROOM_TEMPERATURE.value)
  tables.write_table(table, _OUT.value)
  for source, (read, kept) in counts.items():
    print(f"{source}: {read} rows read, {kept} kept ({read - kept} not describable)")
  print(f"wrote {len(table)} rows to {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
