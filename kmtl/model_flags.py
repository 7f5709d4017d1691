"""The flags of the adaptive-sharing architectures that every entry point which trains takes
(`kmtl.run`, the study): an entry point calls `define()` at import and `settings()` once its
flags are parsed."""

from absl import flags


def parse_groups(text):
  """`--groups`: groups separated by '|', tasks within a group by ','; () for none."""
  if not text:
    return ()
  groups = tuple(tuple(t.strip() for t in part.split(",") if t.strip())
                 for part in text.split("|"))
  if any(not group for group in groups):
    raise ValueError(f"--groups: empty group in {text!r}; write e.g. "
                     "'resistivity|hardness,amorphous'")
  return groups


class ModelFlags:
  """The flag holders of the architecture flags."""

  def __init__(self):
    self.experts = flags.DEFINE_integer(
        "experts", 4, "Experts of --arch=mmoe, and shared experts per level of --arch=ple.")
    self.task_experts = flags.DEFINE_integer(
        "task_experts", 1, "Task-specific experts per task and level of --arch=ple.")
    self.ple_levels = flags.DEFINE_integer("ple_levels", 2, "Extraction levels of --arch=ple "
                                           "(1 or 2).")
    self.precision = flags.DEFINE_string(
        "precision", "float32", "float32, or bfloat16: matmuls and activations in bfloat16, "
        "variables, heads, losses and gradients in float32.")
    self.groups = flags.DEFINE_string(
        "groups", None, "Task groups of --arch=groups: groups separated by '|', tasks by ',', "
        "e.g. 'resistivity|hardness,amorphous' (hard sharing within a group only).")

  def settings(self):
    """{ModelConfig field: value} of the flags; ValueError naming the flag otherwise."""
    return {"experts": self.experts.value, "task_experts": self.task_experts.value,
            "ple_levels": self.ple_levels.value, "groups": parse_groups(self.groups.value),
            "precision": self.precision.value}


def define():
  """Defines the architecture flags (once per program); returns their holders."""
  return ModelFlags()
