"""Write files so that a reader never sees a half-written one: temporary path, then rename."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside `path`; renames it onto `path` only if the block succeeds."""
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                             suffix=".tmp")
  os.close(fd)
  try:
    yield tmp
    # mkstemp creates 0600; the file gets the mode a plain open() would give it.
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _umask():
  """The process's umask (reading it means setting it, so it is set straight back)."""
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_text(path, text):
  """Writes `text` to `path` atomically."""
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)


def check_output_dir(path, flag):
  """A one-line error, before any work is done, when `path` cannot hold a run's output: it is
  a file, or the folder it would be created in is a file or is not writable. Creates nothing."""
  path = os.path.abspath(os.fspath(path))
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"{flag}: {path} is a file, not a folder")
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ValueError(f"{flag}: cannot create {path}: {existing} is a file")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ValueError(f"{flag}: cannot create folders in {existing} (permission denied)")
  try:  # permissions are not the whole story (/proc, a read-only mount): try, and take it back
    os.rmdir(tempfile.mkdtemp(prefix=".kmtl-check-", dir=existing))
  except OSError as e:
    raise ValueError(f"{flag}: cannot create folders in {existing} ({e.strerror})") from None


def check_output_file(path, flag):
  """A one-line error, before any work is done, when `path` cannot be written as a file: it is
  a folder, or its folder cannot be created or written in. Creates nothing."""
  path = os.path.abspath(os.fspath(path))
  if os.path.isdir(path):
    raise ValueError(f"{flag}: {path} is a folder, not a file")
  check_output_dir(os.path.dirname(path), flag)


def _is_leftover(name):
  """A temporary file of an interrupted write: ours (`.name.XXXX.tmp`, `.partial.name`) or
  TensorFlow's checkpoint writer's (`checkpoint.tmpXXXX`, `*.tempstateXXXX`, `*_temp`)."""
  return ((name.startswith(".") and name.endswith(".tmp")) or name.startswith(".partial.") or
          name.startswith("checkpoint.tmp") or ".tempstate" in name or name.endswith("_temp"))


def remove_leftovers(directory):
  """Removes what interrupted writes left in `directory` (not below it); returns their names.
  Call it only where no other process is writing."""
  if not os.path.isdir(directory):
    return []
  removed = []
  for name in sorted(os.listdir(directory)):
    if _is_leftover(name):
      path = os.path.join(directory, name)
      shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
      removed.append(name)
  return removed
