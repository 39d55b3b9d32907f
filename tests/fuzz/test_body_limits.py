"""Request body limits, route by route, on a real server: every POST and PUT of the API
document, every webhook and ``POST /model/parse`` takes a body of exactly its limit
(not refused as too large) and refuses one byte more with 413 and a JSON error —
never a 5xx, and nothing stored (messages, notes, canned replies, content, audit log).

A route's limit is the smaller of its own (``max_bytes`` in its handler: the login's
4 KiB, the console's 16 KiB, the content editor's 256 KiB) and the server's
``request_max_bytes`` (Sanic's ``REQUEST_MAX_SIZE``), set here to 64 KiB; routes that
read no body have only the server's.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import fuzz_support
import httpx
import pytest
from conftest import LiveServer
from fuzz_support import (  # noqa: F401 (platform, server: fixtures)
    ADMIN,
    PARSE,
    PASSWORD,
    REQUEST_MAX_BYTES,
    SUPERVISOR,
    WEBHOOKS,
    ZALO_APP_ID,
    check_answer,
    count_rows,
    facebook_headers,
    now_ms,
    running_fuzz_server,
    telegram_headers,
    zalo_headers,
)
from sqlalchemy import text

from bot.storage.db import create_engine
from bot.web.auth import LOGIN_BODY_BYTES
from bot.web.console import BODY_BYTES as CONSOLE_BODY_BYTES
from bot.web.content import BODY_BYTES as CONTENT_BODY_BYTES
from bot.web.openapi import DOCUMENT

pytestmark = pytest.mark.slow

FULL = '/handoff_consent{"consent": "full"}'
WATCHED_TABLES = (
    "messages",
    "outbox",
    "case_notes",
    "canned_replies",
    "content_versions",
    "missed_messages",
    "audit_log",
    "staff_sessions",
)
SERVER_LIMIT = REQUEST_MAX_BYTES
# The limit each route's handler sets for itself; None: it reads no body.
OWN_LIMITS: dict[tuple[str, str], int | None] = {
    ("post", "/api/v1/auth/login"): LOGIN_BODY_BYTES,
    ("post", "/api/v1/auth/logout"): None,
    ("post", "/api/v1/me/availability"): CONSOLE_BODY_BYTES,
    ("post", "/api/v1/conversations/{case_id}/accept"): None,
    ("post", "/api/v1/conversations/{case_id}/messages"): CONSOLE_BODY_BYTES,
    ("post", "/api/v1/conversations/{case_id}/notes"): CONSOLE_BODY_BYTES,
    ("post", "/api/v1/conversations/{case_id}/transfer"): CONSOLE_BODY_BYTES,
    ("post", "/api/v1/conversations/{case_id}/refer"): CONSOLE_BODY_BYTES,
    ("post", "/api/v1/conversations/{case_id}/close"): CONSOLE_BODY_BYTES,
    ("post", "/api/v1/canned-replies"): CONSOLE_BODY_BYTES,
    ("post", "/api/v1/training"): None,
    ("post", "/api/v1/missed/{missed_id}/{action}"): CONTENT_BODY_BYTES,
    **{
        (method, f"/api/v1/{kind}{suffix}"): limit
        for kind in ("faq", "services")
        for method, suffix, limit in (
            ("post", "", CONTENT_BODY_BYTES),
            ("put", "/{raw_key}", CONTENT_BODY_BYTES),
            ("post", "/{raw_key}/publish", CONTENT_BODY_BYTES),
            ("post", "/{raw_key}/rollback", CONTENT_BODY_BYTES),
            ("post", "/{raw_key}/retire", None),
        )
    },
}
# What a body at the limit carries besides its padding: refused or harmless when read.
FIELDS: dict[str, dict[str, Any]] = {
    "/api/v1/auth/login": {"username": "nobody-here", "password": "not this one"},
    "/api/v1/me/availability": {"available": False},
    "/api/v1/conversations/{case_id}/messages": {"text": "Chào bạn, mình ở đây."},
    "/api/v1/conversations/{case_id}/notes": {"text": "ghi chú ở giới hạn"},
    "/api/v1/conversations/{case_id}/transfer": {"to": "nobody-here"},
    "/api/v1/conversations/{case_id}/refer": {"to": "nowhere"},
    "/api/v1/conversations/{case_id}/close": {"outcome": "not-an-outcome"},
    "/api/v1/canned-replies": {"title": "mẫu ở giới hạn", "text": "Cảm ơn bạn."},
    "/api/v1/missed/{missed_id}/{action}": {"intent": "not-an-intent"},
    "/api/v1/faq/{raw_key}/rollback": {"version": 0},
    "/api/v1/services/{raw_key}/rollback": {"version": 0},
}

platform = fuzz_support.platform  # the shared fixtures
server = fuzz_support.server


def effective_limit(method: str, path: str) -> int:
    own = OWN_LIMITS[(method, path)]
    return SERVER_LIMIT if own is None else min(own, SERVER_LIMIT)


def padded(fields: dict[str, Any], size: int) -> bytes:
    """A JSON object with ``fields`` and ASCII padding, exactly ``size`` bytes long."""
    bare = json.dumps({**fields, "pad": ""}).encode()
    assert len(bare) <= size, "the fields alone are over the size"
    return json.dumps({**fields, "pad": "a" * (size - len(bare))}).encode()


# -- the server and what the routes need to exist ----------------------------------------


def logged_in(server: LiveServer, username: str) -> httpx.Client:
    """A client with a session of its own; the caller closes it."""
    client = httpx.Client(base_url=server.base_url, timeout=30)
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


async def _first_id(database_url: str, table: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text(f"SELECT min(id) FROM {table}"))
    finally:
        await engine.dispose()
    assert found is not None, f"nothing in {table}"
    return int(found)


@pytest.fixture(scope="module")
def path_values(server: LiveServer) -> dict[str, str]:
    """A conversation the supervisor holds, an open missed message, existing keys."""
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for said in ("/request_counsellor", FULL):
            body = {"sender": "limits-person", "message": said}
            assert http.post(WEBHOOKS["rest"], json=body).status_code == 200
        body = {"sender": "limits-missed", "message": "qwrtzp blorf xyzzy"}
        assert http.post(WEBHOOKS["rest"], json=body).status_code == 200
    case_id = asyncio.run(_first_id(server.settings.database_url, "conversations"))
    supervisor = logged_in(server, SUPERVISOR)
    try:
        accepted = supervisor.post(f"/api/v1/conversations/{case_id}/accept")
        assert accepted.status_code == 200, accepted.text
    finally:
        supervisor.close()
    return {
        "case_id": str(case_id),
        "missed_id": str(asyncio.run(_first_id(server.settings.database_url, "missed_messages"))),
        "action": "assign",
        "raw_key": "no-such-key-here",
    }


@pytest.fixture(scope="module")
def clients(server: LiveServer, path_values: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    admin, supervisor = logged_in(server, ADMIN), logged_in(server, SUPERVISOR)
    yield {ADMIN: admin, SUPERVISOR: supervisor}
    admin.close()
    supervisor.close()


def stored(server: LiveServer) -> dict[str, int]:
    return count_rows(server, *WATCHED_TABLES)


# -- the API's routes ------------------------------------------------------------------------

API_ROUTES = sorted(
    (method, path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in ("post", "put")
)
COUNSELLING = re.compile(r"^/api/v1/(conversations|me/availability)")


def test_every_write_route_has_a_known_limit() -> None:
    assert set(API_ROUTES) == set(OWN_LIMITS)


def _client_for(path: str, clients: dict[str, httpx.Client]) -> httpx.Client:
    return clients[SUPERVISOR if COUNSELLING.match(path) else ADMIN]


def _concrete(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


@pytest.mark.parametrize(("method", "path"), API_ROUTES, ids=[f"{m} {p}" for m, p in API_ROUTES])
def test_an_api_body_one_byte_over_the_limit_is_refused_unread(
    server: LiveServer,
    clients: dict[str, httpx.Client],
    path_values: dict[str, str],
    method: str,
    path: str,
) -> None:
    limit = effective_limit(method, path)
    client = _client_for(path, clients)
    url = _concrete(path, path_values)
    before = stored(server)
    over = client.request(
        method.upper(),
        url,
        content=padded(FIELDS.get(path, {}), limit + 1),
        headers={"Content-Type": "application/json"},
    )
    check_answer(over, {413}, f"{method} {path} at {limit + 1} bytes")
    assert stored(server) == before, "a refused body changed what is stored"


@pytest.mark.parametrize(
    ("method", "path"),
    [r for r in API_ROUTES if r != ("post", "/api/v1/auth/logout")],
    ids=[f"{m} {p}" for m, p in API_ROUTES if (m, p) != ("post", "/api/v1/auth/logout")],
)
def test_an_api_body_of_exactly_the_limit_is_read(
    clients: dict[str, httpx.Client], path_values: dict[str, str], method: str, path: str
) -> None:
    limit = effective_limit(method, path)
    response = _client_for(path, clients).request(
        method.upper(),
        _concrete(path, path_values),
        content=padded(FIELDS.get(path, {}), limit),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code != 413, f"{method} {path}: {limit} bytes refused"
    assert response.status_code < 500, response.text


def test_logging_out_with_a_body_at_the_limit_works(server: LiveServer) -> None:
    throwaway = logged_in(server, ADMIN)
    try:
        response = throwaway.post("/api/v1/auth/logout", content=padded({}, SERVER_LIMIT))
        assert response.status_code == 200, response.text
        assert throwaway.get("/api/v1/me").status_code == 401
    finally:
        throwaway.close()


def test_the_login_limit_holds_for_a_chunked_body(server: LiveServer) -> None:
    """Without Content-Length the body is counted as it comes."""

    def chunks() -> Iterator[bytes]:
        body = padded({"username": ADMIN, "password": PASSWORD}, LOGIN_BODY_BYTES + 1)
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    before = stored(server)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.post("/api/v1/auth/login", content=chunks())
    check_answer(response, {413}, "a chunked login body over the limit")
    assert stored(server) == before


# -- the webhooks and the parse endpoint -------------------------------------------------------


def _webhook_body(name: str, size: int) -> tuple[bytes, dict[str, str]]:
    all_fields: dict[str, dict[str, Any]] = {
        "rest": {"sender": f"limits-{size}", "message": "xin chào"},
        "callback": {"sender": f"limits-{size}", "message": "xin chào"},
        "telegram": {"update_id": size},
        "facebook": {"object": "page", "entry": []},
        "zalo": {"app_id": ZALO_APP_ID, "event_name": "unknown", "timestamp": now_ms()},
        "parse": {"text": "tôi bị giữ hộ chiếu"},
    }
    body = padded(all_fields[name], size)
    signers: dict[str, Callable[[bytes], dict[str, str]]] = {
        "telegram": telegram_headers,
        "facebook": facebook_headers,
        "zalo": zalo_headers,
    }
    sign = signers.get(name)
    return body, {"Content-Type": "application/json", **(sign(body) if sign else {})}


ENTRY_POINTS = {**WEBHOOKS, "parse": PARSE}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_a_webhook_body_one_byte_over_the_limit_is_refused_unread(
    server: LiveServer, name: str
) -> None:
    body, headers = _webhook_body(name, SERVER_LIMIT + 1)
    before = stored(server)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.post(ENTRY_POINTS[name], content=body, headers=headers)
    check_answer(response, {413}, f"{name} at {SERVER_LIMIT + 1} bytes")
    assert stored(server) == before


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_a_webhook_body_of_exactly_the_limit_is_answered(server: LiveServer, name: str) -> None:
    body, headers = _webhook_body(name, SERVER_LIMIT)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.post(ENTRY_POINTS[name], content=body, headers=headers)
    assert response.status_code == 200, response.text[:300]


def test_a_chunked_webhook_body_over_the_limit_is_refused(server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        body = padded({"sender": "limits-chunked", "message": "xin chào"}, SERVER_LIMIT + 1)
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = stored(server)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.post(WEBHOOKS["rest"], content=chunks())
    check_answer(response, {413}, "a chunked REST body over the limit")
    assert stored(server) == before
