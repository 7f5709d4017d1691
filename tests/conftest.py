"""Shared test set-up: the Keras backend and parsed flags. Tests never read ../shared: the
real data they need ships in the package (kmtl/data/sets)."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top


@pytest.fixture(autouse=True, scope="session")
def _parsed_flags():
  """Entry points' flags keep their defaults in tests; `flagsaver` overrides them per test."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()
