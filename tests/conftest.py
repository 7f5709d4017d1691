"""Shared test set-up: the Keras backend, and where ../shared/data lies."""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
  """../shared/data, which CI and every developer checkout have beside the repository."""
  if not SHARED_DATA.is_dir():
    raise FileNotFoundError(f"{SHARED_DATA} is missing: tests read real data sets from there")
  return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _parsed_flags():
  """Entry points' flags keep their defaults in tests; `flagsaver` overrides them per test."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()
