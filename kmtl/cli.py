"""`kmtl`: one command whose subcommands are kmtl's programs.

`kmtl train ...` is `python -m kmtl.run ...`, `kmtl study ...` is `python -m kmtl.study ...`,
and so on: each subcommand runs its module as the same absl program, with the same flags.
Only the chosen module is imported, so the programs' flags never meet.
"""

import runpy
import sys

SUBCOMMANDS = {
    "train": ("kmtl.run", "train one configuration and report its test metrics"),
    "study": ("kmtl.study", "compare configurations with the single-task baseline over "
                                "seeds"),
    "tune": ("kmtl.tune", "tune one configuration's hyper-parameters, then train it"),
    "advise": ("kmtl.advise", "which tasks to train together, from a short probe"),
    "predict": ("kmtl.predict", "predict a CSV or Parquet file of alloys with an exported "
                                "model"),
    "export": ("kmtl.export", "export a finished run as a SavedModel for TF Serving"),
    "datasets": ("kmtl.datasets", "list the real data sets shipped with kmtl"),
    "benchmark": ("kmtl.benchmark", "a Matbench task on its official folds, beside the "
                                    "leaderboard"),
}


def usage():
  width = max(map(len, SUBCOMMANDS))
  lines = ["usage: kmtl SUBCOMMAND [--flags]   (kmtl SUBCOMMAND --help for its flags)", "",
           "subcommands:"]
  lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
  return "\n".join(lines)


def main(argv=None):
  """Runs the subcommand named by argv[0]; returns an exit status for a usage error."""
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(usage())
    return 0 if argv else 2
  name, rest = argv[0], argv[1:]
  if name not in SUBCOMMANDS:
    print(f"kmtl: error: unknown subcommand {name!r}; expected one of {list(SUBCOMMANDS)}",
          file=sys.stderr)
    return 2
  sys.argv = [f"kmtl {name}", *rest]
  runpy.run_module(SUBCOMMANDS[name][0], run_name="__main__", alter_sys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
