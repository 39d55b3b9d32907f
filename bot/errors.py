"""The one exception hierarchy of the service.

Every error the service raises on purpose derives from ``DonghanhError``. Only the web
layer maps these to HTTP statuses; everything else raises and lets the caller decide.
"""

from __future__ import annotations

from pathlib import Path


class DonghanhError(Exception):
    """Base of every deliberate error in the service."""


class ConfigError(DonghanhError):
    """A setting is missing or invalid; the message names the variable."""


class BadInput(DonghanhError):
    """A user or platform sent something we cannot accept (maps to HTTP 400)."""


class PayloadTooLarge(BadInput):
    """The body is larger than the route accepts (maps to HTTP 413)."""


class NotFound(DonghanhError):
    """The thing asked for does not exist (maps to HTTP 404)."""


class Conflict(DonghanhError):
    """The request is valid but the thing is not in a state that allows it (HTTP 409):
    someone else took the conversation first, or it ended."""


class Unprocessable(DonghanhError):
    """Well-formed, but the content fails its checks (HTTP 422); ``problems`` says why."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class Unauthorized(DonghanhError):
    """No valid staff session, or wrong credentials (maps to HTTP 401)."""


class Forbidden(DonghanhError):
    """Logged in, but not allowed: wrong role, or a missing CSRF token (HTTP 403)."""


class TooManyRequests(DonghanhError):
    """Too many attempts from one place; try again later (maps to HTTP 429)."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(DonghanhError):
    """A dependency (the database, a model) is not reachable right now (HTTP 503)."""


class DataFormatError(DonghanhError):
    """A data file is malformed; carries the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.detail = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
