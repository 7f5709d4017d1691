"""The real data sets that travel inside the package, under short names: `--data=mpea` works
wherever a data file does. Only sets whose licence allows redistribution are shipped; each
keeps its citation and licence (kmtl/data/sets/README.md holds the full texts' sources)."""

import dataclasses
import os

SETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sets")


@dataclasses.dataclass(frozen=True)
class ShippedSet:
  """One shipped set: its file under kmtl/data/sets, what it is, where it is from, its
  licence, and the task list its flagfile trains."""
  name: str
  filename: str
  title: str
  citation: str
  licence: str
  tasks: str
  flagfile: str

  @property
  def path(self):
    return os.path.join(SETS_DIR, self.filename)


SETS = {s.name: s for s in (
    ShippedSet(
        name="mpea", filename="mpea_properties.csv.gz",
        title="MPEA database: mechanical properties of multi-principal-element alloys "
              "(CitrineInformatics/MPEA_dataset, commit d31e251)",
        citation="C. K. H. Borg et al., Expanded dataset of mechanical properties and observed "
                 "phases of multi-principal element alloys, Scientific Data 7, 430 (2020), "
                 "doi:10.1038/s41597-020-00768-9",
        licence="Apache-2.0",
        tasks="hardness_hv:regression:log:HV,yield_strength_mpa:regression:log:MPa,"
              "ultimate_tensile_strength_mpa:regression:log:MPa,"
              "elongation_pct:regression:none:pct,phase_class:multiclass:BCC|FCC|other",
        flagfile="flags/mpea.cfg"),
    ShippedSet(
        name="glass_cerebral", filename="glass_properties_cerebral.csv.gz",
        title="Metallic glasses: glass-forming class, Dmax, Tg, Tx, Tl "
              "(Robert-Forrest/cerebral, commit 680f3d5)",
        citation="R. M. Forrest, A. L. Greer, Machine-learning improves understanding of glass "
                 "formation in metallic systems, Digital Discovery 1 (2022), "
                 "doi:10.1039/D2DD00026A",
        licence="BSD-3-Clause",
        tasks="gfa_class:multiclass:Crystal|Ribbon|BMG,dmax_bmg_mm:regression:log:mm,"
              "tg_k:regression:none:K,tx_k:regression:none:K,tl_k:regression:none:K",
        flagfile="flags/glass_cerebral.cfg"),
)}


# Official benchmark folds (kmtl/data/folds.py), by benchmark name: `--folds=matbench_steels`.
# Matbench v0.1's assignment (its published recipe, MIT licence): the `mbid` of each row of the
# benchmark's data in Matbench's order, and its test fold.
FOLD_FILES = {name: os.path.join(SETS_DIR, f"{name}_folds.csv.gz")
              for name in ("matbench_steels", "matbench_glass")}


def locate(data):
  """The file behind `data`: a shipped set's (or fold file's) file for its short name (unless
  a file of that name exists), else `data` itself."""
  data = os.fspath(data)
  if os.path.exists(data):
    return data
  if data in SETS:
    return SETS[data].path
  return FOLD_FILES.get(data, data)
