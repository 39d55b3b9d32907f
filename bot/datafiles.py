"""Reading the project's YAML data files with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.errors import DataFormatError


def read_yaml(path: Path) -> Any:
    """The file's YAML; ``DataFormatError`` with the file (and line) when it is not."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFormatError(
            path, f"invalid YAML: {exc}", mark.line + 1 if mark else None
        ) from exc
    except ValueError as exc:  # a value YAML cannot build, such as 2026-02-30
        raise DataFormatError(path, f"invalid value: {exc}") from exc
