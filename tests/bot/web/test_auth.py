"""Staff login for the console and the API, against a real server and database:
sessions, cookies, CSRF, lockout, rate limits, fixation and the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, create_staff, make_settings
from sqlalchemy import text

from bot.config import Settings
from bot.storage.db import create_engine

pytestmark = pytest.mark.slow

PASSWORD = "một mật khẩu đủ dài 2026"
BAD = "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang tạm khóa. Hãy thử lại sau."


async def _audit_actions(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT action FROM audit_log ORDER BY id"))
            return [str(row[0]) for row in rows]
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, module_database_url: str
) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("auth"), module_database_url, model_dir)
    env = {"DONGHANH_LOGIN_ATTEMPTS_PER_WINDOW": "1000", "DONGHANH_LOGIN_LOCK_MINUTES": "15"}
    live = LiveServer(settings, env).start()
    staff = (("tuvan1", "counsellor"), ("khoa1", "counsellor"), ("co_dinh", "admin"))
    asyncio.run(create_staff(settings, staff, PASSWORD))
    yield live
    live.stop()


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


def login(http: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return http.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_gives_a_safe_session_cookie_and_a_csrf_token(server: LiveServer) -> None:
    with client(server) as http:
        response = login(http, "tuvan1")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"] == {
            "id": body["user"]["id"],
            "username": "tuvan1",
            "role": "counsellor",
            "may_publish": False,  # content: only admins and reviewers publish
        }
        assert len(body["csrf_token"]) == 64
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("dh_session=")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert http.get("/api/v1/me").json()["username"] == "tuvan1"


def test_unknown_user_and_wrong_password_get_the_same_answer(server: LiveServer) -> None:
    with client(server) as http:
        unknown = login(http, "khong_co_ai")
        wrong = login(http, "co_dinh", "sai mật khẩu rồi nhé")
        assert unknown.status_code == wrong.status_code == 401
        assert unknown.json()["error"] == wrong.json()["error"] == BAD
        assert "set-cookie" not in wrong.headers


def test_nothing_works_without_a_session(server: LiveServer) -> None:
    with client(server) as http:
        assert http.get("/api/v1/me").status_code == 401
        assert http.post("/api/v1/auth/logout").status_code == 401
        http.cookies.set("dh_session", "made-up-token")
        assert http.get("/api/v1/me").status_code == 401


def test_writes_need_the_csrf_token(server: LiveServer) -> None:
    with client(server) as http:
        token = login(http, "tuvan1").json()["csrf_token"]
        assert http.post("/api/v1/auth/logout").status_code == 403
        wrong = http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        assert http.get("/api/v1/me").status_code == 200  # still logged in
        done = http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token})
        assert done.status_code == 200
        assert http.get("/api/v1/me").status_code == 401


def test_a_session_id_from_before_login_is_never_kept(server: LiveServer) -> None:
    with client(server) as http:
        first = login(http, "tuvan1")
        old = first.cookies["dh_session"]
        second = login(http, "tuvan1")  # logging in again replaces the session
        new = second.cookies["dh_session"]
        assert new != old
    with client(server) as other:
        other.cookies.set("dh_session", old)
        assert other.get("/api/v1/me").status_code == 401


def test_five_failures_lock_the_account_and_end_its_sessions(server: LiveServer) -> None:
    with client(server) as holder, client(server) as attacker:
        assert login(holder, "khoa1").status_code == 200
        for _ in range(5):
            assert login(attacker, "khoa1", "đoán mò mật khẩu 1234").status_code == 401
        assert holder.get("/api/v1/me").status_code == 401, "locking ends open sessions"
        refused = login(attacker, "khoa1")  # even the right password, while locked
        assert refused.status_code == 401
        # the same answer as for a name that does not exist: no account enumeration
        assert refused.json()["error"] == login(attacker, "khong_ton_tai").json()["error"] == BAD
    actions = asyncio.run(_audit_actions(server.settings))
    assert actions.count("login_failed") >= 5
    assert "login_refused_locked" in actions and "login" in actions


def test_bad_login_bodies_are_clear_errors(server: LiveServer) -> None:
    with client(server) as http:
        for body in (
            b"",
            b"not json",
            b"[]",
            b'{"username": "x"}',
            b'{"username": 1, "password": 2}',
        ):
            response = http.post(
                "/api/v1/auth/login", content=body, headers={"content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, body
            assert "error" in response.json()


def test_logins_from_one_address_are_rate_limited(
    tmp_path: Path, model_dir: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path / "limited", database_url, model_dir)
    live = LiveServer(settings, {"DONGHANH_LOGIN_ATTEMPTS_PER_WINDOW": "3"}).start()
    try:
        with client(live) as http:
            statuses = [login(http, f"ai_do_{n}").status_code for n in range(4)]
            assert statuses == [401, 401, 401, 429]
            last: Any = login(http, "ai_do_5")
            assert last.status_code == 429
            assert int(last.headers["retry-after"]) > 0
    finally:
        live.stop()
