"""``GET /health`` (200 when the database answers, 503 otherwise) and ``GET /version``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot import __version__


def create_blueprint(
    check_database: Callable[[Request], Awaitable[None]],
    model_info: Callable[[Request], dict[str, str]],
) -> Blueprint:
    bp = Blueprint("health")

    @bp.get("/health")
    async def health(request: Request) -> HTTPResponse:
        try:
            await check_database(request)
        except Exception as exc:
            return json(
                {"status": "unavailable", "database": type(exc).__name__},
                status=503,
                ensure_ascii=False,
            )
        return json({"status": "ok", "database": "ok"}, ensure_ascii=False)

    @bp.get("/version")
    async def version(request: Request) -> HTTPResponse:
        return json(
            {"name": "donghanh", "version": __version__, "model": model_info(request)},
            ensure_ascii=False,
        )

    return bp
