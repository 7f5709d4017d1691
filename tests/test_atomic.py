"""Atomic writes: all or nothing, with the mode a plain open() would give."""

import os
import stat

import pytest

from kmtl import atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
  previous = os.umask(umask)
  try:
    atomic.write_text(tmp_path / "a.json", "{}\n")
  finally:
    os.umask(previous)
  assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == mode


def test_a_failed_write_leaves_nothing(tmp_path):
  with pytest.raises(RuntimeError):
    with atomic.atomic_path(tmp_path / "b.json") as tmp:
      with open(tmp, "w", encoding="utf-8") as f:
        f.write("half")
      raise RuntimeError("interrupted")
  assert os.listdir(tmp_path) == []


def test_leftovers_of_interrupted_writes_are_removed_and_nothing_else(tmp_path):
  leftovers = [".config.json.k2j3.tmp", ".partial.model.keras", "checkpoint.tmp9f8e",
               "ckpt-3.index.tempstate123"]
  kept = ["config.json", "model.keras", "checkpoint", "ckpt-3.index", ".hidden"]
  for name in leftovers + kept:
    (tmp_path / name).write_text("x")
  (tmp_path / "ckpt-4_temp").mkdir()
  assert atomic.remove_leftovers(tmp_path) == sorted(leftovers + ["ckpt-4_temp"])
  assert sorted(os.listdir(tmp_path)) == sorted(kept)
