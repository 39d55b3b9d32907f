"""What the fuzz modules share: one real server with every channel configured (Telegram,
Messenger and Zalo against a fake platform on loopback, the callback channel against a
recording server) and staff accounts; signing as each platform signs; and the checks
every fuzzed answer must pass (no 5xx, a JSON ``error`` on 4xx, the server alive, its
memory bounded, its log free of unexpected errors, the messages table unchanged).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CallbackRecorder, LiveServer, create_staff, make_settings
from platform_fakes import TELEGRAM_TOKEN, FakePlatform
from sqlalchemy import text

from bot.storage.db import create_engine

TELEGRAM_SECRET = "tg-fuzz-secret-token"
FACEBOOK_APP_SECRET = "fb-fuzz-app-secret"
FACEBOOK_VERIFY_TOKEN = "fb-fuzz-verify-token"
ZALO_APP_ID = "1234567890"
ZALO_OA_SECRET = "zalo-fuzz-oa-secret"
PASSWORD = "mật khẩu kiểm thử fuzz đủ dài 2026"
ADMIN, SUPERVISOR = "quantri_fuzz", "giamsat_fuzz"
STAFF = ((ADMIN, "admin", True), (SUPERVISOR, "supervisor"))
REQUEST_MAX_BYTES = 64 * 1024  # set on the server: smaller than the default, still generous
WEBHOOKS = {
    "rest": "/webhooks/rest/webhook",
    "callback": "/webhooks/callback/webhook",
    "telegram": "/webhooks/telegram/webhook",
    "facebook": "/webhooks/facebook/webhook",
    "zalo": "/webhooks/zalo/webhook",
}
PARSE = "/model/parse"
RSS_GROWTH_LIMIT_KIB = 60 * 1024
ERROR_LEVELS = ("ERROR", "CRITICAL")


def fuzz_env(platform: FakePlatform, recorder: CallbackRecorder) -> dict[str, str]:
    return {
        "DONGHANH_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "DONGHANH_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "DONGHANH_TELEGRAM_BASE_URL": platform.telegram_base_url,
        "DONGHANH_FACEBOOK_APP_SECRET": FACEBOOK_APP_SECRET,
        "DONGHANH_FACEBOOK_PAGE_TOKEN": "fb-fuzz-page-token",
        "DONGHANH_FACEBOOK_VERIFY_TOKEN": FACEBOOK_VERIFY_TOKEN,
        "DONGHANH_FACEBOOK_GRAPH_URL": platform.graph_url,
        "DONGHANH_ZALO_APP_ID": ZALO_APP_ID,
        "DONGHANH_ZALO_SECRET_KEY": ZALO_OA_SECRET,
        "DONGHANH_ZALO_APP_SECRET": "zalo-fuzz-app-secret",
        "DONGHANH_ZALO_ACCESS_TOKEN": "zalo-access-0",
        "DONGHANH_ZALO_REFRESH_TOKEN": "zalo-refresh-0",
        "DONGHANH_ZALO_API_URL": platform.zalo_api_url,
        "DONGHANH_ZALO_OAUTH_URL": platform.zalo_oauth_url,
        "DONGHANH_CALLBACK_URL": recorder.url,
        "DONGHANH_REQUEST_MAX_BYTES": str(REQUEST_MAX_BYTES),
        "DONGHANH_OUTBOX_RETRY_BASE_SECONDS": "0.05",
        "DONGHANH_SERVICE_HOURS": "mon-sun 00:00-24:00",
        "DONGHANH_LOGIN_ATTEMPTS_PER_WINDOW": "100000",
        # the fuzz sends from a few senders, fast: not a flood to hold back
        "DONGHANH_INBOUND_BURST": "1000000",
        "DONGHANH_INBOUND_PER_MINUTE": "1000000",
        # published content would retrain the model: not within a fuzz run
        "DONGHANH_RETRAIN_DELAY_SECONDS": "3600",
    }


@contextmanager
def running_fuzz_server(
    instance: Path,
    database_url: str,
    model_dir: Path,
    platform: FakePlatform,
    recorder: CallbackRecorder,
) -> Iterator[LiveServer]:
    """A real ``donghanh serve`` with every channel on and the fuzz staff accounts."""
    settings = make_settings(instance, database_url, model_dir)
    asyncio.run(create_staff(settings, STAFF, PASSWORD))
    server = LiveServer(settings, fuzz_env(platform, recorder)).start()
    try:
        yield server
    finally:
        server.stop()


# -- signing as the platforms do -------------------------------------------------------------


def telegram_headers(_body: bytes) -> dict[str, str]:
    return {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}


def facebook_headers(body: bytes) -> dict[str, str]:
    digest = hmac.new(FACEBOOK_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


def zalo_timestamp(body: bytes) -> str:
    """The ``timestamp`` Zalo signs with: the body's own field, as the handler reads it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    raw = data.get("timestamp") if isinstance(data, dict) else None
    return str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""


def zalo_headers(body: bytes) -> dict[str, str]:
    stamp = zalo_timestamp(body).encode("utf-8", "surrogatepass")  # a fuzzed one may be odd
    raw = ZALO_APP_ID.encode() + body + stamp + ZALO_OA_SECRET.encode()
    return {"X-ZEvent-Signature": "mac=" + hashlib.sha256(raw).hexdigest()}


def now_ms() -> str:
    return str(int(time.time() * 1000))


# -- what every answer must be ---------------------------------------------------------------


def check_answer(response: httpx.Response, allowed: set[int], what: str) -> None:
    """Never a 5xx (the database is up, so not even 503), only an expected status, and a
    JSON body with an ``error`` string on 4xx."""
    status = response.status_code
    assert status < 500, f"{what}: {status} {response.text[:300]}"
    assert status in allowed, f"{what}: unexpected {status} {response.text[:300]}"
    if 400 <= status < 500:
        try:
            body = response.json()
        except ValueError as exc:
            raise AssertionError(f"{what}: {status} without JSON: {response.text[:300]}") from exc
        assert isinstance(body, dict), f"{what}: {status} {body!r}"
        assert isinstance(body.get("error"), str), f"{what}: {status} {body!r}"
        assert body["error"], f"{what}: {status} with an empty error"


def assert_alive(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.text


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc/<pid>/status."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            pending += _children(current)
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def server_rss_kib(server: LiveServer) -> int:
    assert server.process is not None and server.process.poll() is None, "the server died"
    return rss_kib(int(server.process.pid))


def log_errors(server: LiveServer, since: int = 0) -> list[dict[str, Any]]:
    """ERROR and CRITICAL lines the server logged after byte ``since`` of its log, and
    anything that is not one of its JSON lines (a traceback printed around the logger)."""
    found: list[dict[str, Any]] = []
    with server.log_path.open("rb") as log:
        log.seek(since)
        for raw in log.read().decode("utf-8", "replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                if raw.strip():
                    found.append({"unstructured": raw[:200]})
                continue
            if isinstance(line, dict) and line.get("level") in ERROR_LEVELS:
                found.append(line)
    return found


def log_size(server: LiveServer) -> int:
    return server.log_path.stat().st_size


async def _scalar(database_url: str, sql: str, params: dict[str, Any]) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text(sql), params) or 0)
    finally:
        await engine.dispose()


async def _counts(database_url: str, tables: tuple[str, ...]) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return {
                table: int(await connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
                for table in tables
            }
    finally:
        await engine.dispose()


def count_rows(server: LiveServer, *tables: str) -> dict[str, int]:
    """How many rows each table holds."""
    return asyncio.run(_counts(server.settings.database_url, tables))


def inbound_count(server: LiveServer, channel: str) -> int:
    """Messages stored as come in on ``channel``."""
    sql = "SELECT count(*) FROM messages WHERE channel = :channel AND direction = 'in'"
    return asyncio.run(_scalar(server.settings.database_url, sql, {"channel": channel}))


# -- the fixtures every fuzz module shares ---------------------------------------------------


@pytest.fixture(scope="module")
def platform() -> Iterator[FakePlatform]:
    """The fake Telegram, Messenger and Zalo the server sends to."""
    fake = FakePlatform()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    model_dir: Path,
    module_database_url: str,
    platform: FakePlatform,
    callback_recorder: CallbackRecorder,
) -> Iterator[LiveServer]:
    """One server for the module, every channel configured."""
    instance = tmp_path_factory.mktemp("fuzz")
    with running_fuzz_server(
        instance, module_database_url, model_dir, platform, callback_recorder
    ) as live:
        yield live
