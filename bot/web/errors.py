"""Maps the service's exceptions to HTTP: clear JSON errors, never a stack trace.

Bad input is the sender's to fix (4xx); a database that is down is retryable (503, so
platforms redeliver); anything unexpected is a 500 with no detail, logged by type only.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.errors import (
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Unprocessable,
)

logger = logging.getLogger("donghanh.web")


def _error(status: int, message: str) -> HTTPResponse:
    return json({"error": message, "status": status}, status=status, ensure_ascii=False)


# What the sender has to fix, and the status that says so; the message is the error's own.
CLIENT_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (PayloadTooLarge, 413),
    (BadInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
)


def _client_error_handler(status: int) -> Any:
    async def handle(_request: Request, exc: Exception) -> HTTPResponse:
        return _error(status, str(exc))

    return handle


def register_error_handlers(app: Sanic[Any, Any]) -> None:
    for error_type, status in CLIENT_ERRORS:
        app.exception(error_type)(_client_error_handler(status))

    @app.exception(Unprocessable)
    async def unprocessable(_request: Request, exc: Unprocessable) -> HTTPResponse:
        return json(
            {"error": str(exc), "status": 422, "problems": exc.problems},
            status=422,
            ensure_ascii=False,
        )

    @app.exception(TooManyRequests)
    async def too_many(_request: Request, exc: TooManyRequests) -> HTTPResponse:
        response = _error(429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response

    @app.exception(Unavailable, OperationalError, DBAPIError, ConnectionError, OSError)
    async def unavailable(request: Request, exc: Exception) -> HTTPResponse:
        logger.warning(
            "dependency unavailable",
            extra={"event": "unavailable", "route": request.path, "error_type": type(exc).__name__},
        )
        response = _error(503, "service temporarily unavailable, please retry")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception(SanicException)
    async def sanic_error(_request: Request, exc: SanicException) -> HTTPResponse:
        status = int(getattr(exc, "status_code", 500) or 500)
        message = str(exc) if status < 500 else "internal error"
        return _error(status, message)

    @app.exception(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTTPResponse:
        logger.error(
            "unexpected error",
            extra={
                "event": "unexpected_error",
                "route": request.path,
                "error_type": type(exc).__name__,
            },
        )
        return _error(500, "internal error")
