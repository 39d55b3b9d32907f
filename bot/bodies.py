"""Checks on request bodies shared by channels and the web API: size, UTF-8, JSON, fields.

Each check raises ``BadInput`` (or ``PayloadTooLarge``) with a message fit to return to
the sender as is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.errors import BadInput, PayloadTooLarge

LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # half a UTF-16 pair: not encodable


def has_lone_surrogate(*texts: str) -> bool:
    """Half of a UTF-16 pair with no other half (JSON "\\ud800"): not encodable."""
    return any(LONE_SURROGATE.search(text) for text in texts)


def decode_json_object(body: bytes, *, max_bytes: int) -> dict[str, Any]:
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body larger than {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput("request body is not valid UTF-8") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInput("request body is not valid JSON") from exc
    except RecursionError as exc:
        raise BadInput("request body is nested too deeply") from exc
    if not isinstance(data, dict):
        raise BadInput("request body must be a JSON object")
    return data


def require_string(data: dict[str, Any], field: str, *, max_chars: int, allow_empty: bool) -> str:
    if field not in data:
        raise BadInput(f"missing field '{field}'")
    value = data[field]
    if not isinstance(value, str):
        raise BadInput(f"field '{field}' must be a string")
    value = value.replace("\x00", "")  # PostgreSQL text cannot hold a NUL; nobody means one
    if not allow_empty and not value.strip():
        raise BadInput(f"field '{field}' must not be empty")
    if len(value) > max_chars:
        raise BadInput(f"field '{field}' is longer than {max_chars} characters")
    if has_lone_surrogate(value):
        raise BadInput(f"field '{field}' contains invalid characters")
    return value


MAX_ROW_ID = 2**31 - 1  # PostgreSQL's INTEGER; SQLite's is wider


def is_row_id(value: int) -> bool:
    """Whether a number from a path or query could name a stored row at all; a larger
    one would fail in the database instead of simply matching nothing."""
    return 1 <= value <= MAX_ROW_ID
