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
