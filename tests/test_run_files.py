"""A run's files: the history a resumed run keeps."""

import json

from kmtl import run_files


def test_keep_history_drops_unsaved_epochs_and_a_cut_line(tmp_path):
  records = [{"epoch": 1}, {"epoch": 2}, {"epoch": 1, "task": "a"}, {"epoch": 2, "task": "a"}]
  text = "".join(json.dumps(r) + "\n" for r in records) + '{"epoch": 3, "tr'
  (tmp_path / run_files.HISTORY).write_text(text)
  saved = {None: 1, "a": 2}
  run_files.keep_history(tmp_path, lambda r: r["epoch"] <= saved[r.get("task")])
  assert run_files.read_history(tmp_path) == [{"epoch": 1}, {"epoch": 1, "task": "a"},
                                              {"epoch": 2, "task": "a"}]
