"""The embedded default: exact reference counts, determinism, physics in range."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kmtl.data import featurize
from kmtl.data import io
from kmtl.data import schema
from kmtl.data import synthetic


@pytest.fixture(scope="module")
def frame():
  return synthetic.generate(seed=0)


def test_reference_counts(frame):
  assert len(frame) == 53_068
  labelled = frame[["resistivity", "hardness", "amorphous"]].notna()
  assert labelled.sum().to_dict() == {"resistivity": 52_388, "hardness": 800, "amorphous": 840}
  assert labelled.any(axis=1).all()
  assert int((labelled["resistivity"] & labelled["hardness"]).sum()) == 480
  assert int((labelled["resistivity"] & labelled["amorphous"]).sum()) == 480
  assert int((labelled["hardness"] & labelled["amorphous"]).sum()) == 0


def test_same_seed_same_set_other_seed_other_set(frame):
  pd.testing.assert_frame_equal(frame, synthetic.generate(seed=0))
  other = synthetic.generate(seed=1)
  assert not np.allclose(frame["Fe"], other["Fe"])


def test_compositions_and_features_follow_the_featurizer(frame):
  fractions = frame[list(schema.DEFAULT_ELEMENTS)].to_numpy()
  sizes = (fractions > 0).sum(axis=1)
  assert sizes.min() == 2 and sizes.max() == 6
  np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-9)
  sample = frame.iloc[:200]
  again = featurize.featurize(list(sample["composition"]))
  np.testing.assert_allclose(again, sample[list(schema.feature_names())].to_numpy(),
                             rtol=1e-5, atol=1e-5)


def test_targets_in_physical_ranges(frame):
  rho, hv, afa = frame["resistivity"].dropna(), frame["hardness"].dropna(), frame["amorphous"]
  assert rho.min() > 0 and 20 < rho.median() < 300
  assert hv.min() > 0 and 200 < hv.median() < 900
  assert set(afa.dropna().unique()) == {0.0, 1.0}
  # Inoue-like rule: the amorphous rate rises with size mismatch.
  labelled = frame[afa.notna()]
  large = labelled["atomic_size_mismatch_pct"] > labelled["atomic_size_mismatch_pct"].median()
  assert labelled.loc[large, "amorphous"].mean() > labelled.loc[~large, "amorphous"].mean() + 0.2


def test_loads_through_validation(frame):
  data = io.load(frame)
  assert data.num_rows == 53_068 and data.features.shape == (53_068, 21)


def test_cli_writes_parquet(tmp_path):
  out = tmp_path / "alloys.parquet"
  subprocess.run([sys.executable, "-m", "kmtl.data.synthetic", f"--out={out}", "--seed=3"],
                 check=True, capture_output=True)
  written = pd.read_parquet(out)
  pd.testing.assert_frame_equal(written, synthetic.generate(seed=3))
  assert [p.name for p in tmp_path.iterdir()] == ["alloys.parquet"]


def test_writer_command_refuses_an_unknown_file_type_in_one_line(tmp_path):
  out = tmp_path / "alloys.txt"
  result = subprocess.run([sys.executable, "-m", "kmtl.data.synthetic", f"--out={out}"],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"kmtl.data.synthetic: error: {out}: unknown file type '.txt'; expected .csv or .parquet")
  assert not out.exists()
