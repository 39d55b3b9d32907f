"""Reading the project's YAML data files with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.errors import DataFormatError

# libyaml's safe loader builds the same values as PyYAML's, about ten times faster: the
# training data, cue rules and content are read at every start
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """YAML text to plain values (``yaml.safe_load``, with libyaml when present)."""
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)


def read_yaml(path: Path) -> Any:
    """The file's YAML; ``DataFormatError`` with the file (and line) when it is not."""
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFormatError(
            path, f"invalid YAML: {exc}", mark.line + 1 if mark else None
        ) from exc
    except ValueError as exc:  # a value YAML cannot build, such as 2026-02-30
        raise DataFormatError(path, f"invalid value: {exc}") from exc
