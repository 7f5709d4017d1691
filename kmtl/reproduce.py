"""`python -m kmtl.reproduce`: the study's command under its first name (kmtl/study.py)."""

from absl import app

from kmtl import study

if __name__ == "__main__":
  study.PROG = "kmtl.reproduce"
  app.run(study.main)
