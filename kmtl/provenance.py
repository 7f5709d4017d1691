"""Where a result came from: the command that made it and the code it ran, for the head of
every report, so that a table can be made again from what it says."""

import os
import shlex
import subprocess
import sys

import kmtl


def command(prog, argv=None):
  """The command line as one would type it: `python -m PROG` and its arguments, quoted."""
  args = sys.argv[1:] if argv is None else argv
  return " ".join(["python", "-m", prog] + [shlex.quote(a) for a in args])


def code_version():
  """kmtl's version, with the git commit of its checkout (and `+changes` when the checkout
  differs from it) where it runs from one."""
  here = os.path.dirname(os.path.dirname(os.path.abspath(kmtl.__file__)))

  def git(*args):
    return subprocess.run(["git", "-C", here, *args], capture_output=True, text=True,
                          check=True, timeout=10).stdout.strip()
  try:
    # An installed copy may sit inside some other repository: only kmtl's own counts.
    if os.path.realpath(git("rev-parse", "--show-toplevel")) != os.path.realpath(here):
      return f"kmtl {kmtl.__version__}"
    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
  except (OSError, subprocess.SubprocessError):
    return f"kmtl {kmtl.__version__}"
  return f"kmtl {kmtl.__version__}, commit {commit}{' +changes' if dirty else ''}"


def line(prog, argv=None):
  """The report's provenance line."""
  return f"Made by `{command(prog, argv)}` ({code_version()})."
