"""Starting a kmtl program: its flags parsed with one-line errors, the flags it takes from the
shared flag modules shown in its --help, help that exits 0, and plain log lines."""

import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging

HELP_FLAGS = ("--help", "-help", "-h", "--helpshort", "-helpshort", "-?", "--helpfull",
              "-helpfull", "--helpxml", "-helpxml")


class _PlainFormatter(std_logging.Formatter):
  """A log record as its message; a warning or error says so first."""

  def format(self, record):
    message = record.getMessage()
    if record.levelno >= std_logging.WARNING:
      return f"{record.levelname.lower()}: {message}"
    return message


def plain_log_lines():
  """kmtl's log lines (progress, warnings) without absl's date, thread and file prefix."""
  logging.get_absl_handler().setFormatter(_PlainFormatter())


SHIPPED_FLAGFILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags")


def flagfile_path(path):
  """`path`, or for `flags/NAME.cfg` that does not exist here the flagfile kmtl ships."""
  if os.path.exists(path):
    return path
  shipped = os.path.join(SHIPPED_FLAGFILES, os.path.basename(path))
  if os.path.basename(os.path.dirname(os.path.normpath(path))) == "flags" and \
      os.path.isfile(shipped):
    return shipped
  raise flags.Error(f"--flagfile={path}: no such file (kmtl ships "
                    f"{', '.join(sorted(os.listdir(SHIPPED_FLAGFILES)))} as flags/NAME.cfg)")


def expand_flagfiles(argv, depth=0):
  """`argv` with each `--flagfile=PATH` replaced by the flags in that file, nested ones too,
  read as absl reads them (a flag per line; `#` and `//` comments); `flags/NAME.cfg` finds
  the flagfiles kmtl ships wherever the command runs."""
  out = []
  args = iter(argv)
  for arg in args:
    path = None
    if arg.startswith(("--flagfile=", "-flagfile=")):
      path = arg.split("=", 1)[1]
    elif arg in ("--flagfile", "-flagfile"):
      path = next(args, "")
    if path is None:
      out.append(arg)
      continue
    if depth > 10:
      raise flags.Error(f"--flagfile={path}: flagfiles nest more than 10 deep")
    with open(flagfile_path(path), encoding="utf-8") as f:
      lines = [line.strip() for line in f]
    out += expand_flagfiles([line for line in lines
                             if line and not line.startswith(("#", "//"))], depth + 1)
  return out


def run(main, prog):
  """`app.run(main)` for the program `prog` ("kmtl.run", ...): a bad flag is one line
  `prog: error: ...` and exit 1; --help prints to stdout and exits 0. (A program lists the
  shared flags it takes in its --help with `flags.adopt_module_key_flags`, called in its own
  `__main__` block: absl files key flags under the calling module.)"""

  def parse(argv):
    try:
      return flags.FLAGS(argv[:1] + expand_flagfiles(argv[1:]))
    except flags.Error as e:
      sys.exit(f"{prog}: error: {e}")

  def started(argv):
    plain_log_lines()
    return main(argv)

  try:
    app.run(started, flags_parser=parse)
  except SystemExit as e:
    # absl ends a help request with status 1; asking for help is not an error.
    if e.code == 1 and any(a.split("=")[0] in HELP_FLAGS for a in sys.argv[1:]):
      sys.exit(0)
    raise
