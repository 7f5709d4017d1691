"""`python -m kmtl.reproduce`: the study's command under its first name (kmtl/study.py)."""

from kmtl import entry
from kmtl import study

if __name__ == "__main__":
  study.PROG = "kmtl.reproduce"
  entry.run(study.main, study.PROG)
