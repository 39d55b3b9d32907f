"""Who may call which staff API route, proven against one real server (SQLite).

- The role matrix: every route and method of the OpenAPI document, asked by nobody and
  by each role (counsellor, supervisor, editor, reviewer — an editor with the right to
  publish — and admin), against ``EXPECTED``, an explicit table: a documented route
  without a row, or a status that moved, fails. Path parameters name things that exist
  (a conversation the counsellor holds, a draft topic, a handled missed message), and an
  allowed write is asked so that it stops just past the gate without changing anything
  (a body that is not an object: 400; a conversation already taken: 409 ...).
- A conversation's privacy: a counsellor reaches only what they hold, never the history
  a person did not share; editors and admins read no conversation; a supervisor's
  reading is audited.
- CSRF: every documented write, without the token, with an empty or wrong one, or with
  another session's, is a 403 that changes nothing in the database; the same request
  with the token then works, so the check is not vacuous.
- Sessions: an id chosen before login is replaced and worthless, logging out ends the
  session on the server, a deactivated member or a changed role takes effect at once.
- Logins: failures lock the account (even the right password is refused meanwhile),
  too many attempts from one address are a 429, and the log holds nothing personal.

Every client speaks from its own loopback address (127.77.x.y), so the per-address
login limit can be small here and still count only one test's attempts. Passwords are
argon2 hashes (most of a second each on a busy machine): members log in once.
SQLite only: the gate does not depend on the database engine, and test_auth.py and
test_console_api.py already run sessions and the console on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
import yaml
from conftest import REPO, LiveServer, make_settings, sqlite_only
from sqlalchemy import Engine, inspect, text, update
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bot.config import Settings
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import StaffUser
from bot.storage.passwords import hash_password
from bot.storage.repository import Store
from bot.web.auth import BAD_LOGIN
from bot.web.openapi import DOCUMENT

pytestmark = pytest.mark.slow

Route = tuple[str, str]  # (method, OpenAPI path), as the document spells them

PASSWORD = "mật khẩu phân quyền 2026 đủ dài"
WRONG_PASSWORD = "đoán mò mật khẩu 4321"
SESSION_COOKIE = "dh_session"
CSRF_HEADER = "X-CSRF-Token"
LOGIN = "/api/v1/auth/login"
WEBHOOK = "/webhooks/rest/webhook"
LIMIT_PER_ADDRESS = 3  # login attempts per address and 5 minutes
LOCK_AFTER = 3  # failures in a row that lock an account

ROLES = ("anonymous", "counsellor", "supervisor", "editor", "reviewer", "admin")
ROLE_MEMBER = {
    "counsellor": "tuvan_a",
    "supervisor": "giamsat",
    "editor": "bientap",
    "reviewer": "duyet",
    "admin": "quantri",
}
COLLEAGUE = "tuvan_b"  # a second counsellor, who holds nothing
STAFF = (  # (username, role, may publish content)
    ("tuvan_a", "counsellor", False),
    (COLLEAGUE, "counsellor", False),
    ("giamsat", "supervisor", False),
    ("bientap", "editor", False),
    ("duyet", "editor", True),
    ("quantri", "admin", False),
    ("codinh", "counsellor", False),  # session fixation
    ("ngung_viec", "counsellor", False),  # deactivated
    ("khoa_thu", "counsellor", False),  # locked by failures
    ("han_muc", "counsellor", False),  # logs in past another address's limit
)
UNKNOWN_USER = "khong_co_ai_ten_nay"
SPOOFED_ADDRESS = "10.11.12.13"
CHOSEN_SESSION = "phien-do-ke-gian-chon-truoc-" + "x" * 20

RESPONSES = {
    name: variants[0]["text"]
    for name, variants in yaml.safe_load(
        (REPO / "data" / "responses.yml").read_text(encoding="utf-8")
    )["responses"].items()
}
ASK_COUNSELLOR = "tôi muốn nói chuyện với tư vấn viên"
FULL = '/handoff_consent{"consent": "full"}'
FROM_NOW = '/handoff_consent{"consent": "from_now"}'
# what the person of the private case says before the handoff, refusing to share it;
# the screening's "Có" to "are you in danger now" gives the result danger_now
PRIVATE_WORDS = "công ty giữ hộ chiếu của tôi"
SCREENING_IN_DANGER = ("kiểm tra giúp tôi", "Bắt đầu", "Có")
COUNSELLOR_WORDS = "Chào bạn, mình là tư vấn viên của Đồng Hành."
NOTE_WORDS = "Ghi chú riêng: hẹn gọi lại sáng mai"
GIBBERISH = "qwfp zxkv brrk plork"

# content the tests name: topics made here, and seeded ones each test may change
DRAFT_ONLY = {"faq": "thu_quyen", "service": "thu-quyen"}  # never published
DISCARD_TOPIC = {"faq": "legal_aid", "service": "ha-noi-so-y-te"}
PUBLISH_TOPIC = {"faq": "deposit", "service": "ha-noi-ubnd-xa"}
RETIRE_TOPIC = {"faq": "surrogacy_organs", "service": "an-giang-tro-giup-phap-ly"}
KIND_OF_PREFIX = {"/api/v1/faq": "faq", "/api/v1/services": "service"}
FAQ_FIELDS = ("title", "answer", "more", "sources", "reviewed", "buttons", "examples")

EVENTS = "/api/v1/events"
LOGOUT: Route = ("post", "/api/v1/auth/logout")
DELETE_CANNED: Route = ("delete", "/api/v1/canned-replies/{reply_id}")
DISCARDS: dict[Route, str] = {
    ("delete", "/api/v1/faq/{raw_key}/draft"): "faq",
    ("delete", "/api/v1/services/{raw_key}/draft"): "service",
}
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


# -- the expectation table -------------------------------------------------------------------

OUT = 401  # not logged in
NO = 403  # logged in, but the role (or the reviewer right) may not
OK = 200
BAD = 400  # through the gate: the probe's body is not a JSON object
GONE = 404  # through the gate: the probe names a version that was never published
TAKEN = 409  # through the gate: taken, not published, already handled, model current
LINT = 422  # through the gate and the reviewer check: the draft fails the linter
OPEN = 101  # the events socket said hello
WS_OUT, WS_NO = 4401, 4403  # the events socket closed: no session, role refused

#        anonymous, counsellor, supervisor, editor, reviewer, admin
EXPECTED: dict[Route, tuple[int, int, int, int, int, int]] = {
    ("post", "/api/v1/auth/login"): (BAD, BAD, BAD, BAD, BAD, BAD),  # public
    ("post", "/api/v1/auth/logout"): (OUT, OK, OK, OK, OK, OK),
    ("get", "/api/v1/me"): (OUT, OK, OK, OK, OK, OK),
    ("get", "/api/v1/auth/csrf"): (OUT, OK, OK, OK, OK, OK),
    # the console: counsellors (what they hold) and supervisors (everything)
    ("post", "/api/v1/me/availability"): (OUT, BAD, BAD, NO, NO, NO),
    ("get", "/api/v1/console/options"): (OUT, OK, OK, NO, NO, NO),
    ("get", "/api/v1/queue"): (OUT, OK, OK, NO, NO, NO),
    ("get", "/api/v1/conversations/{case_id}"): (OUT, OK, OK, NO, NO, NO),
    ("post", "/api/v1/conversations/{case_id}/accept"): (OUT, TAKEN, TAKEN, NO, NO, NO),
    ("get", "/api/v1/conversations/{case_id}/messages"): (OUT, OK, OK, NO, NO, NO),
    ("post", "/api/v1/conversations/{case_id}/messages"): (OUT, BAD, BAD, NO, NO, NO),
    ("get", "/api/v1/conversations/{case_id}/notes"): (OUT, OK, OK, NO, NO, NO),
    ("post", "/api/v1/conversations/{case_id}/notes"): (OUT, BAD, BAD, NO, NO, NO),
    ("post", "/api/v1/conversations/{case_id}/transfer"): (OUT, BAD, BAD, NO, NO, NO),
    ("post", "/api/v1/conversations/{case_id}/refer"): (OUT, BAD, BAD, NO, NO, NO),
    ("post", "/api/v1/conversations/{case_id}/close"): (OUT, BAD, BAD, NO, NO, NO),
    ("get", EVENTS): (WS_OUT, OPEN, OPEN, WS_NO, WS_NO, WS_NO),
    ("get", "/api/v1/audit"): (OUT, NO, OK, NO, NO, NO),
    ("get", "/api/v1/admin/alerts"): (OUT, NO, OK, NO, NO, OK),
    ("get", "/api/v1/canned-replies"): (OUT, OK, OK, NO, NO, OK),
    ("post", "/api/v1/canned-replies"): (OUT, NO, NO, NO, NO, BAD),
    ("delete", "/api/v1/canned-replies/{reply_id}"): (OUT, NO, NO, NO, NO, OK),
    # aggregate numbers (no cell under 5 people): not for counsellors
    ("get", "/api/v1/stats"): (OUT, NO, OK, OK, OK, OK),
    ("get", "/api/v1/stats.csv"): (OUT, NO, OK, OK, OK, OK),
    # content: editors and admins; publishing, rollback and retirement need the right
    ("get", "/api/v1/faq"): (OUT, NO, NO, OK, OK, OK),
    ("post", "/api/v1/faq"): (OUT, NO, NO, TAKEN, TAKEN, TAKEN),
    ("get", "/api/v1/faq/{raw_key}"): (OUT, NO, NO, OK, OK, OK),
    ("put", "/api/v1/faq/{raw_key}"): (OUT, NO, NO, BAD, BAD, BAD),
    ("get", "/api/v1/faq/{raw_key}/versions"): (OUT, NO, NO, OK, OK, OK),
    ("delete", "/api/v1/faq/{raw_key}/draft"): (OUT, NO, NO, OK, OK, OK),
    ("post", "/api/v1/faq/{raw_key}/publish"): (OUT, NO, NO, NO, LINT, LINT),
    ("post", "/api/v1/faq/{raw_key}/rollback"): (OUT, NO, NO, NO, GONE, GONE),
    ("post", "/api/v1/faq/{raw_key}/retire"): (OUT, NO, NO, NO, TAKEN, TAKEN),
    ("get", "/api/v1/services"): (OUT, NO, NO, OK, OK, OK),
    ("post", "/api/v1/services"): (OUT, NO, NO, TAKEN, TAKEN, TAKEN),
    ("get", "/api/v1/services/{raw_key}"): (OUT, NO, NO, OK, OK, OK),
    ("put", "/api/v1/services/{raw_key}"): (OUT, NO, NO, BAD, BAD, BAD),
    ("get", "/api/v1/services/{raw_key}/versions"): (OUT, NO, NO, OK, OK, OK),
    ("delete", "/api/v1/services/{raw_key}/draft"): (OUT, NO, NO, OK, OK, OK),
    ("post", "/api/v1/services/{raw_key}/publish"): (OUT, NO, NO, NO, LINT, LINT),
    ("post", "/api/v1/services/{raw_key}/rollback"): (OUT, NO, NO, NO, GONE, GONE),
    ("post", "/api/v1/services/{raw_key}/retire"): (OUT, NO, NO, NO, TAKEN, TAKEN),
    ("get", "/api/v1/intents"): (OUT, NO, NO, OK, OK, OK),
    ("get", "/api/v1/training/status"): (OUT, NO, NO, OK, OK, OK),
    ("post", "/api/v1/training"): (OUT, NO, NO, NO, NO, TAKEN),
    ("get", "/api/v1/missed"): (OUT, NO, NO, OK, OK, OK),
    ("post", "/api/v1/missed/{missed_id}/{action}"): (OUT, NO, NO, TAKEN, TAKEN, TAKEN),
}

NOT_AN_OBJECT: Any = []  # sent as the body of an allowed write: 400 and nothing changes
NO_BODY = None
MATRIX_BODIES: dict[Route, Any] = {  # writes whose probe is not NOT_AN_OBJECT
    ("post", "/api/v1/auth/login"): NOT_AN_OBJECT,
    ("post", "/api/v1/conversations/{case_id}/accept"): NO_BODY,  # held already
    ("post", "/api/v1/faq"): {  # the key is taken
        "key": DRAFT_ONLY["faq"],
        "title": "Trùng mã",
        "answer": "Trùng mã.",
        "reviewed": "2026-01-05",
    },
    ("post", "/api/v1/services"): {"key": DRAFT_ONLY["service"], "name": "Trùng mã"},
    ("post", "/api/v1/faq/{raw_key}/publish"): NO_BODY,  # the draft fails the linter
    ("post", "/api/v1/services/{raw_key}/publish"): NO_BODY,
    ("post", "/api/v1/faq/{raw_key}/rollback"): {"version": 1},  # only a draft
    ("post", "/api/v1/services/{raw_key}/rollback"): {"version": 1},
    ("post", "/api/v1/faq/{raw_key}/retire"): NO_BODY,  # never published
    ("post", "/api/v1/services/{raw_key}/retire"): NO_BODY,
    ("post", "/api/v1/training"): NO_BODY,  # the model follows the content
    ("post", "/api/v1/missed/{missed_id}/{action}"): NO_BODY,  # dismissed already
}


def documented_routes() -> list[Route]:
    return sorted((method, path) for path, item in DOCUMENT["paths"].items() for method in item)


def is_public(route: Route) -> bool:
    method, path = route
    return bool(DOCUMENT["paths"][path][method].get("security") == [])


def route_id(route: Route) -> str:
    return f"{route[0].upper()} {route[1]}"


DOCUMENTED = documented_routes()
DOCUMENTED_WRITES = [r for r in DOCUMENTED if r[0] in WRITE_METHODS and not is_public(r)]
# retiring an FAQ topic takes its examples out of the training data (the model then
# lags the content): retirements go last, after the write that expects a current model
CSRF_ORDER = sorted(DOCUMENTED_WRITES, key=lambda route: (route[1].endswith("/retire"), route))
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(path: str, values: Mapping[str, str]) -> str:
    missing = set(PLACEHOLDER.findall(path)) - set(values)
    assert not missing, f"{path}: no value for {sorted(missing)}"
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], path)


# -- clients ---------------------------------------------------------------------------------

_ADDRESSES = itertools.count(1)


def next_address() -> str:
    """A loopback address of its own (Linux answers the whole of 127/8)."""
    number = next(_ADDRESSES)
    return f"127.77.{number // 250}.{number % 250 + 1}"


class Client:
    """An HTTP client from its own loopback address: a member once logged in."""

    def __init__(self, server: LiveServer, session: str | None = None) -> None:
        self.address = next_address()
        self.http = httpx.Client(
            base_url=server.base_url,
            timeout=30,
            transport=httpx.HTTPTransport(local_address=self.address),
        )
        self.csrf = ""
        self.session = session or ""
        if session:
            self.http.cookies.set(SESSION_COOKIE, session)

    def login(self, username: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
        response = self.http.post(
            LOGIN, json={"username": username, "password": password}, headers=headers
        )
        if response.status_code == 200:  # keep only the cookie the server just set
            self.session = response.cookies[SESSION_COOKIE]
            self.csrf = str(response.json()["csrf_token"])
            self.http.cookies.clear()
            self.http.cookies.set(SESSION_COOKIE, self.session)
        return response

    def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """``body`` as JSON (None: no body); writes carry this session's CSRF token
        unless ``headers`` says otherwise."""
        if headers is None:
            headers = {CSRF_HEADER: self.csrf} if self.csrf and method != "GET" else {}
        if body is None:
            return self.http.request(method, path, headers=headers)
        return self.http.request(method, path, json=body, headers=headers)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = self.call(method, path, body)
        assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
        return response.json()

    def close(self) -> None:
        self.http.close()


# -- the database, seen from outside -----------------------------------------------------------

UNWATCHED_TABLES = frozenset({"staff_sessions", "alembic_version"})  # every request touches
UNWATCHED_COLUMNS = frozenset({"last_seen_at", "console_seen_at"})


async def _create_staff(settings: Settings) -> None:
    """The accounts, all with one argon2 hash of PASSWORD (hashing costs a second)."""
    engine = create_engine(settings.database_url)
    try:
        store = Store(
            session_factory(engine), Vault(settings.encryption_keys), settings.pseudonym_secret
        )
        password_hash = hash_password(PASSWORD)
        for username, role, reviewer in STAFF:
            await store.do_create_staff_user(username, password_hash, role, reviewer=reviewer)
    finally:
        await engine.dispose()


def sync_engine(settings: Settings) -> Engine:
    """The server's SQLite file, read and nudged from the test without an event loop."""
    return sqlalchemy.create_engine(settings.database_url.replace("+aiosqlite", ""))


def snapshot(database: Engine) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table (but sessions and presence times), in a stable order."""
    tables: dict[str, list[tuple[str, ...]]] = {}
    with database.connect() as connection:
        for name in sorted(set(inspect(connection).get_table_names()) - UNWATCHED_TABLES):
            rows = connection.execute(text(f'SELECT * FROM "{name}"'))
            tables[name] = sorted(
                tuple(repr(v) for k, v in row._mapping.items() if k not in UNWATCHED_COLUMNS)
                for row in rows
            )
    return tables


def changed_tables(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    return {name for name in set(before) | set(after) if before.get(name) != after.get(name)}


# -- one server and what the tests share -------------------------------------------------------


@dataclass
class World:
    """The server, its logged-in members, and the things the routes are asked about."""

    server: LiveServer
    database: Engine
    members: dict[str, Client] = field(default_factory=dict)  # by username
    anonymous: Client | None = None
    held: int = 0  # full consent, held by the counsellor
    private: int = 0  # history not shared (screened in danger before), held by the counsellor
    waiting: int = 0  # full consent, nobody took it yet
    bot_only: int = 0  # a conversation that never asked for a person
    missed_id: int = 0  # handled (dismissed) already
    writes_case: int = 0  # held by the counsellor, for the CSRF tests that leave it held

    def member(self, role: str) -> Client:
        return self.members[ROLE_MEMBER[role]]

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.database.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []

    def snapshot(self) -> dict[str, list[tuple[str, ...]]]:
        return snapshot(self.database)

    def move_lock_end(self, username: str, from_now: timedelta) -> None:
        with self.database.begin() as connection:
            connection.execute(
                update(StaffUser)
                .where(StaffUser.username == username)
                .values(locked_until=datetime.now(UTC) + from_now)
            )

    def last_audit_id(self) -> int:
        return int(self.sql("SELECT coalesce(max(id), 0) FROM audit_log")[0][0])

    def audit_since(self, marker: int) -> list[tuple[str | None, str, str | None, dict[str, Any]]]:
        """(actor, action, target id, detail) of the entries after ``marker``."""
        rows = self.sql(
            "SELECT s.username, a.action, a.target_id, a.detail FROM audit_log a "
            "LEFT JOIN staff_users s ON s.id = a.actor_id WHERE a.id > :m ORDER BY a.id",
            m=marker,
        )
        return [
            (row[0], row[1], row[2], json.loads(row[3]) if isinstance(row[3], str) else row[3])
            for row in rows
        ]

    # -- people on the REST channel --------------------------------------------------------

    def say(self, sender: str, message: str) -> list[str]:
        response = httpx.post(
            f"{self.server.base_url}{WEBHOOK}",
            json={"sender": sender, "message": message},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return [str(reply.get("text") or "") for reply in response.json()]

    def waiting_ids(self) -> set[int]:
        queue = self.member("supervisor").ok("GET", "/api/v1/queue")
        return {int(item["id"]) for item in queue["waiting"]}

    def new_case(self, consent: str = FULL, said: tuple[str, ...] = ()) -> int:
        """A person who says ``said``, then asks for a counsellor: the queued case."""
        sender = f"nguoi-{uuid.uuid4().hex[:12]}"
        for words in said:
            assert self.say(sender, words)
        before = self.waiting_ids()
        assert self.say(sender, ASK_COUNSELLOR) == [RESPONSES["utter_handoff_consent"]]
        self.say(sender, consent)
        (case_id,) = self.waiting_ids() - before
        return case_id

    def new_held_case(self, consent: str = FULL, said: tuple[str, ...] = ()) -> int:
        case_id = self.new_case(consent, said)
        self.member("counsellor").ok("POST", f"/api/v1/conversations/{case_id}/accept")
        return case_id

    def case_for_writes(self) -> int:
        """A case the counsellor still holds (writing, noting, referring keep it held)."""
        if self.writes_case:
            path = f"/api/v1/conversations/{self.writes_case}"
            details = self.member("supervisor").ok("GET", path)
            holder = (details.get("assigned_to") or {}).get("username")
            if details["state"] == "counsellor" and holder == ROLE_MEMBER["counsellor"]:
                return self.writes_case
        self.writes_case = self.new_held_case()
        return self.writes_case

    def new_bot_only_conversation(self) -> int:
        self.say(f"nguoi-{uuid.uuid4().hex[:12]}", "xin chào")
        rows = self.sql("SELECT max(id) FROM conversations WHERE queued_at IS NULL")
        return int(rows[0][0])

    def new_missed(self) -> int:
        """A message the bot did not understand, still open for the editors."""
        letters = "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:6])
        self.say(f"nguoi-{uuid.uuid4().hex[:12]}", f"{GIBBERISH} {letters}")
        items = self.member("editor").ok("GET", "/api/v1/missed")["items"]
        return max(int(item["id"]) for item in items)

    # -- content and canned replies ----------------------------------------------------------

    def new_canned_reply(self) -> int:
        body = {"title": f"Mẫu thử {uuid.uuid4().hex[:8]}", "text": "Cảm ơn bạn đã nhắn."}
        return int(self.member("admin").ok("POST", "/api/v1/canned-replies", body)["id"])

    def canned_ids(self) -> set[int]:
        replies = self.member("admin").ok("GET", "/api/v1/canned-replies")["canned_replies"]
        return {int(reply["id"]) for reply in replies}

    def content_path(self, kind: str, key: str) -> str:
        return f"/api/v1/{'faq' if kind == 'faq' else 'services'}/{key}"

    def edited(self, kind: str, key: str) -> dict[str, Any]:
        """The published version of a seeded item with a harmless, unique change."""
        data = self.member("editor").ok("GET", self.content_path(kind, key))["published"]["data"]
        mark = f" (bản thử {uuid.uuid4().hex[:6]})"
        if kind == "faq":
            return {**{f: data[f] for f in FAQ_FIELDS if f in data}, "title": data["title"] + mark}
        return {**data, "helps_with": str(data["helps_with"]) + mark}

    def new_draft(self, kind: str, key: str) -> str:
        """A fresh draft on a seeded item, saved by the editor (not a reviewer)."""
        saved = self.member("editor").ok(
            "PUT", self.content_path(kind, key), self.edited(kind, key)
        )
        assert saved["has_draft"] is True and saved["problems"] == [], saved["problems"]
        return key

    def has_draft(self, kind: str, key: str) -> bool:
        return bool(self.member("editor").ok("GET", self.content_path(kind, key))["has_draft"])

    # -- the matrix ---------------------------------------------------------------------------

    def matrix_values(self, path: str) -> dict[str, str]:
        values = {"case_id": str(self.held), "missed_id": str(self.missed_id), "action": "dismiss"}
        for prefix, kind in KIND_OF_PREFIX.items():
            if path.startswith(prefix + "/"):
                values["raw_key"] = DRAFT_ONLY[kind]
        return values

    def status_for(self, role: str, route: Route) -> int:
        """What ``role`` gets for ``route`` (the events socket: how it opened or closed)."""
        method, path = route
        if path == EVENTS:
            return self.socket_outcome(role)
        assert self.anonymous is not None
        client = self.anonymous if role == "anonymous" else self.member(role)
        values = self.matrix_values(path)
        if route == DELETE_CANNED:  # each asker gets a reply of their own to delete
            reply_id = self.new_canned_reply()
            values["reply_id"] = str(reply_id)
            status = client.call("DELETE", fill(path, values)).status_code
            assert (reply_id in self.canned_ids()) is (status != OK), (role, status)
            return status
        if route in DISCARDS:  # and a draft of their own to discard
            kind = DISCARDS[route]
            values["raw_key"] = self.new_draft(kind, DISCARD_TOPIC[kind])
            status = client.call("DELETE", fill(path, values)).status_code
            assert self.has_draft(kind, values["raw_key"]) is (status != OK), (role, status)
            return status
        default = NOT_AN_OBJECT if method in WRITE_METHODS else NO_BODY
        body = MATRIX_BODIES.get(route, default)
        return client.call(method.upper(), fill(path, values), body).status_code

    def socket_outcome(self, role: str) -> int:
        headers: dict[str, str] = {}
        if role != "anonymous":
            headers["Cookie"] = f"{SESSION_COOKIE}={self.member(role).session}"
        url = self.server.base_url.replace("http://", "ws://") + EVENTS
        with connect(url, additional_headers=headers, open_timeout=10) as socket:
            try:
                hello = json.loads(socket.recv(timeout=10))
            except ConnectionClosed:
                return int(socket.close_code or 0)
            assert hello["type"] == "hello" and hello["user"]["role"] in (
                "counsellor",
                "supervisor",
            )
            return OPEN


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LiveServer]:
    with sqlite_only(tmp_path_factory) as url:
        settings = make_settings(tmp_path_factory.mktemp("authorisation"), url, model_dir)
        env = {
            "DONGHANH_LOGIN_ATTEMPTS_PER_WINDOW": str(LIMIT_PER_ADDRESS),
            "DONGHANH_LOGIN_LOCK_AFTER_FAILURES": str(LOCK_AFTER),
            "DONGHANH_SERVICE_HOURS": "mon-sun 00:00-24:00",
            "DONGHANH_RETRAIN_DELAY_SECONDS": "3600",  # a stale model is never retrained here
        }
        live = LiveServer(settings, env).start()
        try:
            asyncio.run(_create_staff(settings))
            yield live
        finally:
            live.stop()


@pytest.fixture(scope="module")
def world(server: LiveServer) -> Iterator[World]:
    shared = World(server, sync_engine(server.settings), anonymous=Client(server))
    for username in (*ROLE_MEMBER.values(), COLLEAGUE):
        member = Client(server)
        assert member.login(username).status_code == 200
        shared.members[username] = member
    shared.held = shared.new_held_case(FULL)
    shared.private = shared.new_held_case(FROM_NOW, (PRIVATE_WORDS, *SCREENING_IN_DANGER))
    shared.waiting = shared.new_case(FULL)
    shared.bot_only = shared.new_bot_only_conversation()
    shared.missed_id = shared.new_missed()
    editor = shared.member("editor")
    editor.ok("POST", f"/api/v1/missed/{shared.missed_id}/dismiss")
    made = editor.ok("POST", "/api/v1/faq", MATRIX_BODIES[("post", "/api/v1/faq")])
    assert made["problems"], "the draft must fail the linter (publishing it: 422)"
    made = editor.ok("POST", "/api/v1/services", MATRIX_BODIES[("post", "/api/v1/services")])
    assert made["problems"], "the draft must fail the linter (publishing it: 422)"
    yield shared
    for client in (shared.anonymous, *shared.members.values()):
        if client is not None:
            client.close()
    shared.database.dispose()


# -- 1. the matrix ----------------------------------------------------------------------------


def test_every_documented_route_has_a_row_and_no_row_is_stale() -> None:
    assert set(DOCUMENTED) - set(EXPECTED) == set(), "add these routes to EXPECTED"
    assert set(EXPECTED) - set(DOCUMENTED) == set(), "these rows name no documented route"


def test_only_the_login_is_public_and_everything_else_shuts_out_the_anonymous() -> None:
    assert [route for route in DOCUMENTED if is_public(route)] == [("post", LOGIN)]
    for route, statuses in EXPECTED.items():
        if not is_public(route):
            assert statuses[0] in (OUT, WS_OUT), route_id(route)


@pytest.mark.parametrize("route", [r for r in DOCUMENTED if r != LOGOUT], ids=route_id)
def test_each_role_gets_what_the_table_says(world: World, route: Route) -> None:
    expected = EXPECTED.get(route)
    assert expected is not None, f"{route_id(route)} is documented but has no row in EXPECTED"
    got = {role: world.status_for(role, route) for role in ROLES}
    assert got == dict(zip(ROLES, expected, strict=True)), route_id(route)


def test_the_path_parameters_of_the_matrix_name_things_that_exist(world: World) -> None:
    """So that a 403 in the table is a refusal, not a 404 in disguise."""
    supervisor, editor = world.member("supervisor"), world.member("editor")
    held = supervisor.ok("GET", f"/api/v1/conversations/{world.held}")
    assert held["state"] == "counsellor"
    assert held["assigned_to"]["username"] == ROLE_MEMBER["counsellor"]
    for kind, key in DRAFT_ONLY.items():
        topic = editor.ok("GET", world.content_path(kind, key))
        assert topic["has_draft"] is True and topic["published"] is None
    dismissed = editor.ok("GET", "/api/v1/missed?status=dismissed")["items"]
    assert world.missed_id in [item["id"] for item in dismissed]


def test_discarding_the_only_draft_of_a_new_topic_is_not_an_error(world: World) -> None:
    editor = world.member("editor")
    key = f"thu_bo_nhap_{uuid.uuid4().hex[:6]}"
    body = {**MATRIX_BODIES[("post", "/api/v1/faq")], "key": key}
    editor.ok("POST", "/api/v1/faq", body)
    discarded = editor.call("DELETE", f"/api/v1/faq/{key}/draft")
    assert editor.call("GET", f"/api/v1/faq/{key}").status_code == 404, "the draft went"
    assert discarded.status_code == 200, discarded.text


# -- 2. a conversation's privacy -------------------------------------------------------------

CASE_ACTIONS = (  # (method, suffix, body, what load_case audits as attempted)
    ("GET", "", None, "view"),
    ("GET", "/messages", None, "read"),
    ("GET", "/notes", None, "read_notes"),
    ("POST", "/messages", {"text": COUNSELLOR_WORDS}, "reply"),
    ("POST", "/notes", {"text": NOTE_WORDS}, "add_note"),
    ("POST", "/transfer", {"to": COLLEAGUE}, "transfer"),
    ("POST", "/refer", {"to": "111"}, "refer"),
    ("POST", "/close", {"outcome": "resolved"}, "close"),
    ("POST", "/accept", None, "accept"),
)


def test_a_counsellor_cannot_read_or_touch_a_conversation_someone_else_holds(
    world: World,
) -> None:
    colleague = world.members[COLLEAGUE]
    marker, before = world.last_audit_id(), world.snapshot()
    for method, suffix, body, _ in CASE_ACTIONS:
        response = colleague.call(method, f"/api/v1/conversations/{world.held}{suffix}", body)
        assert response.status_code == NO, (method, suffix, response.text)
        assert "không do bạn phụ trách" in response.json()["error"]
    assert changed_tables(before, world.snapshot()) == {"audit_log"}, "only the refusals"
    denied = [
        detail["attempted"]
        for actor, action, target, detail in world.audit_since(marker)
        if actor == COLLEAGUE and action == "access_denied" and target == str(world.held)
    ]
    assert denied == [attempted for *_, attempted in CASE_ACTIONS]
    still = world.member("supervisor").ok("GET", f"/api/v1/conversations/{world.held}")
    assert still["state"] == "counsellor"
    assert still["assigned_to"]["username"] == ROLE_MEMBER["counsellor"]


def test_a_waiting_conversation_may_be_looked_at_before_accepting_but_not_read(
    world: World,
) -> None:
    colleague = world.members[COLLEAGUE]
    case = f"/api/v1/conversations/{world.waiting}"
    triage = colleague.call("GET", case)
    assert triage.status_code == OK, triage.text  # to choose whom to take first
    assert triage.json()["reply_window"]["open"] is False
    for method, suffix, body, attempted in CASE_ACTIONS:
        if attempted not in ("view", "accept"):
            response = colleague.call(method, f"{case}{suffix}", body)
            assert response.status_code == NO, (method, suffix, response.text)
    assert world.waiting in world.waiting_ids(), "still waiting for someone to accept it"


def test_a_conversation_that_never_asked_for_a_person_is_out_of_everyones_reach(
    world: World,
) -> None:
    for role in ("counsellor", "supervisor"):
        for suffix in ("", "/messages", "/notes"):
            path = f"/api/v1/conversations/{world.bot_only}{suffix}"
            assert world.member(role).call("GET", path).status_code == 404, (role, suffix)


def test_a_history_the_person_did_not_share_stays_hidden(world: World) -> None:
    holder, supervisor = world.member("counsellor"), world.member("supervisor")
    case = f"/api/v1/conversations/{world.private}"
    marker = world.last_audit_id()
    refused = holder.call("GET", f"{case}/messages")
    assert refused.status_code == NO and "không đồng ý" in refused.json()["error"]
    for query in ("?after=0", "?from=full", "?from=HANDOFF"):
        assert holder.call("GET", f"{case}/messages{query}").status_code == NO, query
    assert supervisor.call("GET", f"{case}/messages").status_code == NO
    for query in ("?from=handoff", "?from=handoff&after=0"):
        since = holder.call("GET", f"{case}/messages{query}")
        assert since.status_code == OK, since.text
        texts = [message["text"] for message in since.json()["messages"]]
        assert RESPONSES["utter_handoff_accepted"] in texts
        for said in (PRIVATE_WORDS, ASK_COUNSELLOR, *SCREENING_IN_DANGER):
            assert said not in texts, (query, said)
    details = holder.ok("GET", case)
    assert details["history_allowed"] is False and details["consent"] == "from_now"
    assert details["risk_level"] is None and details["screening"] is None
    assert details["cues"] == []
    refusals = {
        actor
        for actor, action, target, _ in world.audit_since(marker)
        if action == "history_refused" and target == str(world.private)
    }
    assert refusals == {ROLE_MEMBER["counsellor"], ROLE_MEMBER["supervisor"]}


def test_the_priority_does_not_tell_a_screening_the_person_did_not_share(
    world: World,
) -> None:
    details = world.member("counsellor").ok("GET", f"/api/v1/conversations/{world.private}")
    assert details["screening"] is None  # hidden ...
    assert (details["priority"], details["priority_title"]) == ("normal", "Bình thường")


def test_editors_and_admins_read_no_conversation(world: World) -> None:
    for role in ("editor", "reviewer", "admin"):
        client = world.member(role)
        assert client.call("GET", "/api/v1/queue").status_code == NO, role
        for case_id in (world.held, world.private, world.waiting):
            for suffix in ("", "/messages", "/messages?from=handoff", "/notes"):
                response = client.call("GET", f"/api/v1/conversations/{case_id}{suffix}")
                assert response.status_code == NO, (role, case_id, suffix)
                assert PRIVATE_WORDS not in response.text
    # what editors do see of people: masked missed messages, pointing to no one
    dismissed = world.member("editor").ok("GET", "/api/v1/missed?status=dismissed")["items"]
    assert dismissed and all(
        set(item)
        == {
            "id",
            "text",
            "reason",
            "channel",
            "guessed_intent",
            "confidence",
            "status",
            "assigned_intent",
            "created_at",
        }
        for item in dismissed
    )


def test_a_supervisor_reading_a_conversation_is_audited(world: World) -> None:
    supervisor = world.member("supervisor")
    case = f"/api/v1/conversations/{world.held}"
    marker = world.last_audit_id()
    for suffix in ("", "/messages", "/notes"):
        assert supervisor.call("GET", f"{case}{suffix}").status_code == OK, suffix
    reads = [(actor, action, target) for actor, action, target, _ in world.audit_since(marker)]
    assert reads == [
        ("giamsat", "conversation_viewed", str(world.held)),
        ("giamsat", "messages_read", str(world.held)),
        ("giamsat", "notes_read", str(world.held)),
    ]
    shown = supervisor.ok("GET", f"/api/v1/audit?conversation_id={world.held}")["entries"]
    recent = {(entry["actor"], entry["action"]) for entry in shown[:3]}
    assert recent == {
        ("giamsat", "conversation_viewed"),
        ("giamsat", "messages_read"),
        ("giamsat", "notes_read"),
    }


# -- 3. CSRF ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """A write that changes something when sent with its token: who sends it, its path
    values and body (made fresh for each test), and the status it then gets."""

    actor: str
    prepare: Callable[[World], tuple[dict[str, str], Any]]
    status: int | None  # None: not sent with the token here (see the logout test)
    changes: bool = True


def _faq_create(world: World) -> tuple[dict[str, str], Any]:
    key = f"thu_csrf_{uuid.uuid4().hex[:8]}"
    return {}, {**MATRIX_BODIES[("post", "/api/v1/faq")], "key": key}


def _service_create(world: World) -> tuple[dict[str, str], Any]:
    return {}, {"key": f"thu-csrf-{uuid.uuid4().hex[:8]}", "name": "Dịch vụ thử CSRF"}


def _content_writes(prefix: str, kind: str) -> dict[Route, Write]:
    editor, reviewer = ROLE_MEMBER["editor"], ROLE_MEMBER["reviewer"]
    item = f"{prefix}/{{raw_key}}"
    return {
        ("post", prefix): Write(editor, _faq_create if kind == "faq" else _service_create, 201),
        ("put", item): Write(
            editor,
            lambda w: ({"raw_key": DISCARD_TOPIC[kind]}, w.edited(kind, DISCARD_TOPIC[kind])),
            200,
        ),
        ("delete", f"{item}/draft"): Write(
            editor, lambda w: ({"raw_key": w.new_draft(kind, DISCARD_TOPIC[kind])}, None), 200
        ),
        ("post", f"{item}/publish"): Write(
            reviewer, lambda w: ({"raw_key": w.new_draft(kind, PUBLISH_TOPIC[kind])}, None), 200
        ),
        ("post", f"{item}/rollback"): Write(
            reviewer, lambda w: ({"raw_key": PUBLISH_TOPIC[kind]}, {"version": 1}), 200
        ),
        ("post", f"{item}/retire"): Write(
            reviewer, lambda w: ({"raw_key": RETIRE_TOPIC[kind]}, None), 200
        ),
    }


def _case(case_id: int) -> dict[str, str]:
    return {"case_id": str(case_id)}


COUNSELLOR = ROLE_MEMBER["counsellor"]
WRITES: dict[Route, Write] = {
    LOGOUT: Write(COLLEAGUE, lambda w: ({}, None), None),
    ("post", "/api/v1/me/availability"): Write(COLLEAGUE, lambda w: ({}, {"available": True}), 200),
    ("post", "/api/v1/conversations/{case_id}/accept"): Write(
        COUNSELLOR, lambda w: (_case(w.new_case()), None), 200
    ),
    ("post", "/api/v1/conversations/{case_id}/messages"): Write(
        COUNSELLOR, lambda w: (_case(w.case_for_writes()), {"text": COUNSELLOR_WORDS}), 201
    ),
    ("post", "/api/v1/conversations/{case_id}/notes"): Write(
        COUNSELLOR, lambda w: (_case(w.case_for_writes()), {"text": NOTE_WORDS}), 201
    ),
    ("post", "/api/v1/conversations/{case_id}/refer"): Write(
        COUNSELLOR, lambda w: (_case(w.case_for_writes()), {"to": "111"}), 200
    ),
    ("post", "/api/v1/conversations/{case_id}/transfer"): Write(
        COUNSELLOR, lambda w: (_case(w.new_held_case()), {"to": COLLEAGUE}), 200
    ),
    ("post", "/api/v1/conversations/{case_id}/close"): Write(
        COUNSELLOR, lambda w: (_case(w.new_held_case()), {"outcome": "resolved"}), 200
    ),
    ("post", "/api/v1/canned-replies"): Write(
        ROLE_MEMBER["admin"],
        lambda w: ({}, {"title": f"Mẫu {uuid.uuid4().hex[:8]}", "text": "Cảm ơn bạn."}),
        201,
    ),
    DELETE_CANNED: Write(
        ROLE_MEMBER["admin"], lambda w: ({"reply_id": str(w.new_canned_reply())}, None), 200
    ),
    **_content_writes("/api/v1/faq", "faq"),
    **_content_writes("/api/v1/services", "service"),
    ("post", "/api/v1/training"): Write(
        ROLE_MEMBER["admin"], lambda w: ({}, None), TAKEN, changes=False
    ),
    ("post", "/api/v1/missed/{missed_id}/{action}"): Write(
        ROLE_MEMBER["editor"],
        lambda w: ({"missed_id": str(w.new_missed()), "action": "dismiss"}, None),
        200,
    ),
}


def test_every_documented_write_has_a_csrf_case() -> None:
    assert set(DOCUMENTED_WRITES) - set(WRITES) == set(), "add these writes to WRITES"
    assert set(WRITES) - set(DOCUMENTED_WRITES) == set(), "these WRITES are not documented"


@pytest.mark.parametrize("route", CSRF_ORDER, ids=route_id)
def test_a_write_without_its_csrf_token_is_refused_and_changes_nothing(
    world: World, route: Route
) -> None:
    spec = WRITES.get(route)
    assert spec is not None, f"{route_id(route)} has no entry in WRITES"
    method, path = route
    values, body = spec.prepare(world)
    url = fill(path, values)
    actor = world.members[spec.actor]
    before = world.snapshot()
    someone_else = world.member("supervisor").csrf
    assert someone_else and someone_else != actor.csrf
    for headers in (
        {},
        {CSRF_HEADER: ""},
        {CSRF_HEADER: "0" * 64},
        {CSRF_HEADER: actor.csrf.upper()},
        {CSRF_HEADER: someone_else},
    ):
        refused = actor.call(method.upper(), url, body, headers=headers)
        assert refused.status_code == NO, (headers, refused.text)
        assert "CSRF" in refused.json()["error"]
    assert changed_tables(before, world.snapshot()) == set()
    assert actor.call("GET", "/api/v1/me").status_code == OK, "the session is still alive"
    if spec.status is None:
        return
    done = actor.call(method.upper(), url, body)
    assert done.status_code == spec.status, done.text
    assert bool(changed_tables(before, world.snapshot())) is spec.changes


# -- 4. sessions ------------------------------------------------------------------------------


def test_a_session_id_set_before_login_is_never_kept(world: World) -> None:
    attacker = Client(world.server, session=CHOSEN_SESSION)  # a made-up id, planted
    assert attacker.login("codinh").status_code == OK
    assert attacker.session and attacker.session != CHOSEN_SESSION
    assert Client(world.server, CHOSEN_SESSION).call("GET", "/api/v1/me").status_code == OUT
    # a real session id the attacker holds, planted in the victim's browser
    victim = Client(world.server, session=attacker.session)
    assert victim.login("codinh").status_code == OK
    assert victim.session != attacker.session
    assert attacker.call("GET", "/api/v1/me").status_code == OUT, "the planted one ended"
    assert victim.call("GET", "/api/v1/me").json()["username"] == "codinh"
    assert victim.csrf != attacker.csrf
    for client in (attacker, victim):
        client.close()


def test_a_deactivated_member_is_out_at_once(world: World) -> None:
    member = Client(world.server)
    assert member.login("ngung_viec").status_code == OK
    assert member.call("GET", "/api/v1/queue").status_code == OK
    world.sql("UPDATE staff_users SET active = :no WHERE username = 'ngung_viec'", no=False)
    assert member.call("GET", "/api/v1/me").status_code == OUT
    assert member.call("POST", "/api/v1/me/availability", {"available": True}).status_code == OUT
    again = Client(world.server)
    refused = again.login("ngung_viec")
    assert refused.status_code == OUT and SESSION_COOKIE not in refused.cookies
    for client in (member, again):
        client.close()


def test_a_changed_role_applies_to_an_open_session_at_once(world: World) -> None:
    colleague = world.members[COLLEAGUE]
    assert colleague.call("GET", "/api/v1/queue").status_code == OK
    try:
        world.sql("UPDATE staff_users SET role = 'editor' WHERE username = :u", u=COLLEAGUE)
        assert colleague.call("GET", "/api/v1/queue").status_code == NO
        assert colleague.call("GET", "/api/v1/faq").status_code == OK
    finally:
        world.sql("UPDATE staff_users SET role = 'counsellor' WHERE username = :u", u=COLLEAGUE)
    assert colleague.call("GET", "/api/v1/queue").status_code == OK


# -- 5. login limits ---------------------------------------------------------------------------


def test_failures_lock_the_account_even_against_the_right_password(world: World) -> None:
    marker = world.last_audit_id()
    guesser, owner = Client(world.server), Client(world.server)
    for _ in range(LOCK_AFTER):
        failed = guesser.login("khoa_thu", WRONG_PASSWORD)
        assert failed.status_code == OUT
        assert failed.json()["error"] == BAD_LOGIN
    refused = owner.login("khoa_thu")  # the right password, from another address
    assert refused.status_code == OUT, refused.text  # documented: 401
    assert refused.json()["error"] == BAD_LOGIN  # as for a name that does not exist
    assert SESSION_COOKIE not in refused.cookies
    entries = [(a, act, d) for a, act, _, d in world.audit_since(marker) if a == "khoa_thu"]
    assert [act for _, act, _ in entries] == ["login_failed"] * LOCK_AFTER + [
        "login_refused_locked"
    ]
    assert [d.get("locked") for _, act, d in entries if act == "login_failed"] == [False] * (
        LOCK_AFTER - 1
    ) + [True]
    # the lock ends by itself (its end moved into the past): the right password works again
    world.move_lock_end("khoa_thu", timedelta(minutes=-1))
    assert owner.login("khoa_thu").status_code == OK
    for client in (guesser, owner):
        client.close()


def test_too_many_attempts_from_one_address_are_a_429_whoever_they_name(world: World) -> None:
    busy, elsewhere = Client(world.server), Client(world.server)
    for _ in range(LIMIT_PER_ADDRESS):
        assert busy.login(UNKNOWN_USER, WRONG_PASSWORD).status_code == OUT
    for headers in ({}, {"X-Forwarded-For": SPOOFED_ADDRESS}, {"Forwarded": "for=10.1.1.1"}):
        limited = busy.login("han_muc", **headers)  # the right password of a real account
        assert limited.status_code == 429, (headers, limited.text)
        assert 0 < int(limited.headers["retry-after"]) <= 300
        assert limited.json()["error"] == "Đăng nhập sai quá nhiều lần. Hãy thử lại sau."
        assert SESSION_COOKIE not in limited.cookies
    assert elsewhere.login("han_muc").status_code == OK, "the limit is the address's only"
    for client in (busy, elsewhere):
        client.close()


# -- last: logging out every member, and the log -----------------------------------------------


def test_every_role_may_log_out_and_its_old_cookie_is_dead(world: World) -> None:
    assert world.anonymous is not None
    path = LOGOUT[1]
    got = {"anonymous": world.anonymous.call("POST", path).status_code}
    for role in ROLES[1:]:
        member = world.member(role)
        old_session, old_csrf = member.session, member.csrf
        response = member.call("POST", path)
        got[role] = response.status_code
        assert re.search(r'dh_session="?"?;.*(Max-Age=0|expires=)', response.headers["set-cookie"])
        replay = Client(world.server, session=old_session)
        assert replay.call("GET", "/api/v1/me").status_code == OUT, role
        replayed_write = replay.call(
            "POST", path, headers={CSRF_HEADER: old_csrf}
        )  # the old token with the old cookie
        assert replayed_write.status_code == OUT, role
        replay.close()
    assert got == dict(zip(ROLES, EXPECTED[LOGOUT], strict=True))


def test_the_log_holds_nothing_personal_and_no_server_error(world: World) -> None:
    log = world.server.log_text()
    for secret in (
        PASSWORD,
        WRONG_PASSWORD,
        PRIVATE_WORDS,
        COUNSELLOR_WORDS,
        NOTE_WORDS,
        GIBBERISH,
        CHOSEN_SESSION,
        SPOOFED_ADDRESS,
        "127.77.",  # the clients' addresses
        UNKNOWN_USER,
        *(username for username, *_ in STAFF),
    ):
        assert secret not in log, f"{secret!r} is in the log"
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    api = [r for r in records if r.get("event") == "http" and str(r.get("route")).startswith("api")]
    assert len(api) > 200
    assert max(int(r["status"]) for r in api) < 500
    assert any(r["status"] == 429 and r["route"] == "api/v1/auth/login" for r in api)
