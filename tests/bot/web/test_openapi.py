"""The OpenAPI document lists exactly the API the app serves, and every route but the
login is closed to anyone without a session."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from conftest import LiveServer

from bot.app import create_app
from bot.config import Settings
from bot.web.openapi import CSRF, DOCUMENT


def _openapi_path(sanic_path: str) -> str:
    """``api/v1/conversations/<case_id:int>`` is ``/api/v1/conversations/{case_id}``."""
    return "/" + re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", sanic_path)


def served_api_routes(settings: Settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    app.router.finalize()
    return {
        (_openapi_path(route.path), method.lower())
        for route in app.router.routes
        if route.path.startswith("api/v1/") and route.path != "api/v1/openapi.json"
        for method in route.methods
        if method not in ("HEAD", "OPTIONS")
    }


EVENTS = "/api/v1/events"  # a WebSocket; tests/bot/web/test_console_api.py checks its login


def documented_routes() -> set[tuple[str, str]]:
    return {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}


def test_the_document_matches_the_routes(settings: Settings) -> None:
    assert documented_routes() == served_api_routes(settings)


def test_the_document_is_well_formed() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (path, method)
            assert {"200", "201", "202"} & set(operation["responses"]), (path, method)
            assert "security" in operation, (path, method)
            if method != "get" and operation["security"]:  # writes need the CSRF header
                assert CSRF in operation.get("parameters", []), (path, method)


def test_every_operation_with_a_body_documents_bad_input_and_the_size_limit() -> None:
    """tests/fuzz/test_body_limits.py holds each route to its limit; the document says
    so to the clients (a 413 was missing from some operations)."""
    with_body = [
        (path, method, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(with_body) >= 15
    for path, method, operation in with_body:
        assert {"400", "413"} <= set(operation["responses"]), (path, method)


@pytest.fixture(scope="module")
def http(module_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=module_server.base_url, timeout=30) as client:
        yield client


@pytest.mark.slow
def test_the_document_is_served(http: httpx.Client) -> None:
    response = http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "method"),
    sorted(r for r in documented_routes() if r[0] not in ("/api/v1/auth/login", EVENTS)),
)
def test_no_route_works_without_a_session(http: httpx.Client, path: str, method: str) -> None:
    response = http.request(method.upper(), re.sub(r"\{\w+\}", "1", path), json={})
    assert response.status_code == 401, (path, method, response.text)
