"""The text forms of settings (task weights, element lists, method hyper-parameters), parsed
here once for every entry point; errors name the flag."""

from kmtl.config import TASK_WEIGHTINGS
from kmtl.data import schema


def _scalar(text):
  """A hyper-parameter value: int, float, bool or string, as written."""
  for convert in (int, float):
    try:
      return convert(text)
    except ValueError:
      pass
  return {"true": True, "false": False}.get(text.lower(), text)


def parse_surgery_args(text):
  """`--surgery_args` text, e.g. "alpha=1.5,learning_rate=0.01" (";" also separates, as in a
  study grid entry), -> ((name, value), ...)."""
  pairs = []
  for item in (text or "").replace(";", ",").split(","):
    if not item.strip():
      continue
    name, sep, value = (part.strip() for part in item.partition("="))
    if not sep or not name.isidentifier() or not value:
      raise ValueError(f"--surgery_args: expected name=value pairs such as alpha=1.5. "
                       f"Received: {text!r}")
    pairs.append((name, _scalar(value)))
  names = [n for n, _ in pairs]
  if len(set(names)) != len(names):
    raise ValueError(f"--surgery_args: a hyper-parameter is given twice. Received: {text!r}")
  return tuple(pairs)


def parse_elements(text):
  """`--elements` text -> "auto" or a tuple of distinct element symbols."""
  text = text.strip()
  if text == "auto":
    return text
  elements = tuple(e.strip() for e in text.split(",") if e.strip())
  if not elements or len(set(elements)) != len(elements):
    raise ValueError(f"--elements: expected distinct symbols or 'auto'. Received: {text!r}")
  from kmtl.data import featurize  # pylint: disable=g-import-not-at-top
  unknown = [e for e in elements if e not in featurize.element_table().index]
  if unknown:
    raise ValueError(f"--elements: unknown element symbol {unknown[0]!r} (symbols are written "
                     f"like 'Ni': a capital, then a lower-case letter if any)")
  return elements


def parse_task_weights(text):
  """`--task_weights` text -> "equal", "inverse_count" or a tuple of numbers."""
  text = text.strip()
  if text in TASK_WEIGHTINGS:
    return text
  try:
    return tuple(float(v) for v in text.split(","))
  except ValueError:
    raise ValueError(f"--task_weights: expected one of {list(TASK_WEIGHTINGS)} or "
                     f"comma-separated numbers. Received: {text!r}") from None


def parse_feature_set(text):
  """`--features` text -> a name in `schema.FEATURE_SETS` or a tuple of column names."""
  text = text.strip()
  if text in schema.FEATURE_SETS:
    return text
  columns = tuple(c.strip() for c in text.split(",") if c.strip())
  if not columns:
    raise ValueError(f"--features: expected composition, descriptors or columns. "
                     f"Received: {text!r}")
  return columns
