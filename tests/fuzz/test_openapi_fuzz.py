"""Schemathesis against the API's own OpenAPI document (``/api/v1/openapi.json``, the
one the server serves) on a real server, logged in: every operation gets bodies, path
and query values generated from the document, valid ones and ones that break it, with a
real session cookie and ``X-CSRF-Token`` on every request. No answer may be a server
error, and every answer must fit the schema the document gives for its status.

Routes for counsellors (the queue, conversations, the audit log) are called as a
supervisor, everything else as an admin with the reviewer right: an admin is refused
the counselling routes, which would leave their handlers unfuzzed. Logging out is left
out (it would end the session the rest runs on), and so is the events WebSocket.
People waiting for a counsellor and a missed message are seeded so that small ids find
something.

Only two checks: the document's 2xx schemas are mostly ``{"type": "object"}`` and it
leaves out some statuses the routes rightly answer (400 on validating GETs, 413), so
status-code and positive-data conformance would only report the document's gaps. The
500s found (ids and page numbers beyond the database's integers) are fixed and kept so
by the tests at the end. ``DONGHANH_FUZZ_EXAMPLES`` (60 in the suite, a sixth per
operation) goes deeper.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fuzz_support
import httpx
import pytest
import schemathesis
from conftest import LiveServer
from fuzz_support import (  # noqa: F401 (platform, server: fixtures)
    ADMIN,
    PASSWORD,
    SUPERVISOR,
    WEBHOOKS,
    assert_alive,
    log_errors,
    log_size,
    running_fuzz_server,
)
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from bot.web.openapi import DOCUMENT

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("DONGHANH_FUZZ_EXAMPLES", "60")) // 6  # per operation
COUNSELLING_PREFIXES = (
    "/api/v1/queue",
    "/api/v1/conversations",
    "/api/v1/console",
    "/api/v1/audit",
    "/api/v1/me/availability",
)
LEFT_OUT = ("/api/v1/auth/logout", "/api/v1/events")
FULL = '/handoff_consent{"consent": "full"}'

platform = fuzz_support.platform  # the shared fixtures
server = fuzz_support.server


@dataclass(frozen=True)
class Login:
    cookie: str
    csrf: str


def log_in(server: LiveServer, username: str) -> Login:
    """A session of its own (a login with another session's cookie would end that one)."""
    response = httpx.post(
        f"{server.base_url}/api/v1/auth/login",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return Login(response.cookies["dh_session"], response.json()["csrf_token"])


def seed(http: httpx.Client) -> None:
    """Something for the generated ids to find: people waiting for a counsellor (cases
    1, 2, ...), a message the bot did not understand, a canned reply."""
    for index in range(3):
        for said in ("/request_counsellor", FULL):
            body = {"sender": f"fuzz-waiting-{index}", "message": said}
            assert http.post(WEBHOOKS["rest"], json=body).status_code == 200
    body = {"sender": "fuzz-missed", "message": "qwrtzp blorf xyzzy"}
    assert http.post(WEBHOOKS["rest"], json=body).status_code == 200


@pytest.fixture(scope="module")
def logins(server: LiveServer) -> dict[str, Login]:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        seed(http)
    return {ADMIN: log_in(server, ADMIN), SUPERVISOR: log_in(server, SUPERVISOR)}


@pytest.fixture(scope="module")
def log_start(server: LiveServer, logins: dict[str, Login]) -> int:
    return log_size(server)


def load_schema() -> schemathesis.BaseSchema:
    """The document the server serves (a test checks it is this one), fuzzed with valid
    and invalid data."""
    loaded: schemathesis.BaseSchema = schemathesis.openapi.from_dict(DOCUMENT)
    loaded.config.update(request_timeout=60)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
    )
    for path in LEFT_OUT:
        loaded = loaded.exclude(path=path)
    return loaded


schema = load_schema()


def login_for(path: str, logins: dict[str, Login]) -> Login:
    counselling = path.startswith(COUNSELLING_PREFIXES)
    return logins[SUPERVISOR if counselling else ADMIN]


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_fails_on_the_server(
    case: schemathesis.Case[Any], server: LiveServer, logins: dict[str, Login], log_start: int
) -> None:
    login = login_for(case.path, logins)
    response = case.call(
        base_url=server.base_url,
        headers={"X-CSRF-Token": login.csrf},
        cookies={"dh_session": login.cookie},
    )
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])


def test_the_fuzzed_document_is_the_served_one(server: LiveServer) -> None:
    response = httpx.get(f"{server.base_url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.json() == DOCUMENT


def test_the_server_is_alive_and_logged_no_unexpected_error(
    server: LiveServer, log_start: int
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert_alive(http)
    assert log_errors(server, log_start) == []


# -- what the fuzz found ---------------------------------------------------------------------


def _logged_in(server: LiveServer, login: Login) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        timeout=30,
        headers={"X-CSRF-Token": login.csrf},
        cookies={"dh_session": login.cookie},
    )


@pytest.fixture
def http(server: LiveServer, logins: dict[str, Login]) -> Iterator[httpx.Client]:
    """A client logged in as the supervisor (any role: these fail before the role)."""
    with _logged_in(server, logins[SUPERVISOR]) as client:
        yield client


@pytest.fixture
def admin_http(server: LiveServer, logins: dict[str, Login]) -> Iterator[httpx.Client]:
    with _logged_in(server, logins[ADMIN]) as client:
        yield client


def test_ids_beyond_the_database_range_are_not_found(
    server: LiveServer, http: httpx.Client, admin_http: httpx.Client
) -> None:
    on_postgresql = server.settings.database_url.startswith("postgresql")
    for huge in (2**63, 10**40, *((2**31,) if on_postgresql else ())):
        answers = {
            "conversation": http.get(f"/api/v1/conversations/{huge}").status_code,
            "accept": http.post(f"/api/v1/conversations/{huge}/accept").status_code,
            "notes": http.get(f"/api/v1/conversations/{huge}/notes").status_code,
            "canned": admin_http.delete(f"/api/v1/canned-replies/{huge}").status_code,
            "missed": admin_http.post(f"/api/v1/missed/{huge}/dismiss").status_code,
        }
        assert answers == dict.fromkeys(answers, 404), (huge, answers)


def test_query_numbers_beyond_the_database_range_are_refused(
    http: httpx.Client, admin_http: httpx.Client
) -> None:
    answers = {
        "after": http.get(
            "/api/v1/conversations/1/messages", params={"from": "handoff", "after": 10**11}
        ).status_code,
        "page": admin_http.get("/api/v1/missed", params={"page": 10**18}).status_code,
    }
    assert all(status < 500 for status in answers.values()), answers


def test_a_nul_in_a_text_field_is_bad_input(
    server: LiveServer, http: httpx.Client, admin_http: httpx.Client
) -> None:
    nul = "a\x00b"
    login = {"username": nul, "password": "không phải mật khẩu"}
    answers = {
        "login": httpx.post(f"{server.base_url}/api/v1/auth/login", json=login).status_code,
        "canned": admin_http.post(
            "/api/v1/canned-replies", json={"title": nul, "text": "Cảm ơn bạn."}
        ).status_code,
        "transfer": http.post("/api/v1/conversations/1/transfer", json={"to": nul}).status_code,
    }
    assert all(status < 500 for status in answers.values()), answers
