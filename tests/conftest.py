"""Shared fixtures: no network beyond loopback, a fresh instance, databases, the model.

Database fixtures run on SQLite and on PostgreSQL: the one ``DONGHANH_TEST_DATABASE_URL``
names, or else a throwaway cluster the test run starts from Debian's packages
(``postgres_server.py``). Without either, PostgreSQL tests skip with the reason (and
fail in CI).
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import postgres_server
import pytest
from cryptography.fernet import Fernet

from bot.config import Settings, load_settings
from bot.nlu.training import train

REPO = Path(__file__).resolve().parent.parent
# the retired anti-trafficking hotline (now 111): spelt out only in tests, which check that
# the linter catches it (bot/content/check.py knows it by its digest)
RETIRED_HOTLINE = "18001567"
PG_URL_VAR = "DONGHANH_TEST_DATABASE_URL"


# -- no network beyond loopback ------------------------------------------------------------


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # unix socket path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _block_network() -> Iterator[None]:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise OSError(f"tests may not reach the network ({address!r})")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise OSError(f"tests may not reach the network ({address!r})")
        return real_connect_ex(self, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


# -- the trained model, once per session -----------------------------------------------------


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained once per test run: xdist workers share it (the first trains it under a
    file lock, the others wait). Nobody writes into it; servers get hard-linked copies."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    directory = shared / "nlu-model-shared"
    with (shared / "nlu-model.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "CURRENT").exists():
            train(REPO / "data" / "nlu", directory)
    return directory


# -- databases ---------------------------------------------------------------------------------


PG_UNAVAILABLE_VAR = "DONGHANH_TEST_POSTGRES_UNAVAILABLE"  # why none could be started
_started_postgres: list[postgres_server.ThrowawayPostgres] = []


def pytest_configure(config: pytest.Config) -> None:
    """Start a throwaway PostgreSQL unless one is named; once per run (xdist workers
    inherit the controller's environment)."""
    if hasattr(config, "workerinput") or os.environ.get(PG_URL_VAR):
        return
    try:
        server = postgres_server.start()
    except postgres_server.PostgresUnavailable as exc:
        os.environ[PG_UNAVAILABLE_VAR] = str(exc)
        return
    _started_postgres.append(server)
    os.environ[PG_URL_VAR] = server.url


def pytest_unconfigure(config: pytest.Config) -> None:
    while _started_postgres:
        _started_postgres.pop().stop()


def pytest_report_header(config: pytest.Config) -> str:
    if _started_postgres:
        return f"PostgreSQL: throwaway cluster at {_started_postgres[0].url}"
    if os.environ.get(PG_UNAVAILABLE_VAR):
        return f"PostgreSQL: none ({os.environ[PG_UNAVAILABLE_VAR]})"
    return f"PostgreSQL: {PG_URL_VAR}"


def require_postgres() -> str:
    """The PostgreSQL server's URL; skips (fails in CI) when there is none."""
    url = os.environ.get(PG_URL_VAR)
    if url:
        return url
    reason = "no PostgreSQL: " + os.environ.get(
        PG_UNAVAILABLE_VAR, f"set {PG_URL_VAR} or install Debian's postgresql package"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _database_params() -> list[Any]:
    return [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")]


async def _fresh_postgres_schema(base_url: str) -> tuple[str, str]:
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()
    return base_url.rsplit("/", 1)[0] + f"/{name}", name


async def _drop_postgres_database(base_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(base_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await connection.close()


@contextmanager
def migrated_database(kind: str, sqlite_dir: Path) -> Iterator[str]:
    """A fresh database at the schema's head: a SQLite file, or a new PostgreSQL
    database dropped afterwards."""
    from bot.storage.migrate import upgrade_database

    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{sqlite_dir / 'test.sqlite3'}"
        upgrade_database(url)
        yield url
        return
    base = require_postgres()
    url, name = asyncio.run(_fresh_postgres_schema(base))
    try:
        upgrade_database(url)
        yield url
    finally:
        asyncio.run(_drop_postgres_database(base, name))


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with migrated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=_database_params())
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated database for a whole test module (tests use their own senders)."""
    with migrated_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@contextmanager
def sqlite_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """For modules whose outcome cannot depend on the database (what the bot says, how
    a page behaves): one SQLite database, so the suite's time goes where PostgreSQL
    matters (storage, turns, the console API)."""
    with migrated_database("sqlite", tmp_path_factory.mktemp("db")) as url:
        yield url


def make_settings(instance: Path, database_url: str, model_dir: Path) -> Settings:
    """Settings for a fresh instance folder that uses the session's trained model (a
    hard-linked copy: a server that retrains replaces files, never edits them)."""
    instance.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, instance / "nlu-model", copy_function=os.link)
    env = {
        "DONGHANH_INSTANCE_DIR": str(instance),
        "DONGHANH_DATABASE_URL": database_url,
        "DONGHANH_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DONGHANH_PSEUDONYM_SECRET": "test-pseudonym-secret",
        "DONGHANH_RECOVERY_INTERVAL_SECONDS": "0.2",
        "DONGHANH_OUTBOX_RETRY_BASE_SECONDS": "0.05",
    }
    return load_settings(env)


async def create_staff(settings: Settings, users: Any, password: str) -> None:
    """Staff accounts ``(username, role)`` or ``(username, role, reviewer)`` with one
    password, straight in the database."""
    from bot.storage.crypto import Vault
    from bot.storage.db import create_engine, session_factory
    from bot.storage.passwords import hash_password
    from bot.storage.repository import Store

    engine = create_engine(settings.database_url)
    try:
        store = Store(
            session_factory(engine), Vault(settings.encryption_keys), settings.pseudonym_secret
        )
        for username, role, *reviewer in users:  # (username, role[, may publish content])
            await store.do_create_staff_user(
                username, hash_password(password), role, reviewer=bool(reviewer and reviewer[0])
            )
    finally:
        await engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, model_dir: Path) -> Settings:
    return make_settings(tmp_path / "instance", database_url, model_dir)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Any]:
    from bot.app import close_services, open_services

    opened = await open_services(settings)
    yield opened
    await close_services(opened)


# -- a real server in its own process ---------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """``donghanh serve`` in a subprocess, on a free loopback port."""

    def __init__(self, settings: Settings, env_extra: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = settings.instance_dir / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "DONGHANH_INSTANCE_DIR": str(settings.instance_dir),
            "DONGHANH_DATABASE_URL": settings.database_url,
            "DONGHANH_ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
            "DONGHANH_PSEUDONYM_SECRET": settings.pseudonym_secret,
            "DONGHANH_RECOVERY_INTERVAL_SECONDS": "0.5",
            "DONGHANH_LOG_LEVEL": "INFO",
            **(env_extra or {}),
        }
        self.process: Any = None

    def start(self, timeout: float = 90.0) -> LiveServer:
        import subprocess
        import time

        import httpx

        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "donghanh"), "serve", "--port", str(self.port)]
            if (REPO / ".venv" / "bin" / "donghanh").exists()
            else ["python", "-m", "bot", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        import signal

        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        import signal

        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except Exception:
                self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def callback_recorder() -> Iterator[CallbackRecorder]:
    recording = CallbackRecorder()
    yield recording
    recording.close()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, module_database_url: str
) -> Iterator[LiveServer]:
    """One real server per test module and database: starting one costs seconds."""
    settings = make_settings(tmp_path_factory.mktemp("instance"), module_database_url, model_dir)
    server = LiveServer(settings).start()
    yield server
    server.stop()


# -- real browsers ----------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Browser tests need Debian's chromium: fail in CI without it, skip locally."""
    if not CHROMIUM.exists():
        reason = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def headless_chromium(expect_timeout_ms: int | None = None) -> Iterator[Any]:
    """Debian's chromium through Playwright (``expect`` waiting ``expect_timeout_ms``).

    Playwright's sync API keeps an event loop running in this thread while it is
    started, and the database fixtures behind a server call asyncio.run(): so start the
    browser after the server (and its users) are up, and stop it before they go."""
    from playwright.sync_api import expect, sync_playwright

    if expect_timeout_ms is not None:
        expect.set_options(timeout=expect_timeout_ms)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
            if expect_timeout_ms is not None:
                expect.set_options(timeout=None)


# -- a callback server that records what the service sends ---------------------------------


class CallbackRecorder:
    """A callback server: records each JSON body; answers 503 to the first ``fail`` posts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = 0
        self.calls = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                recorder.calls += 1
                if recorder.fail > 0:
                    recorder.fail -= 1
                    self.send_response(503)
                else:
                    recorder.bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def wait_for(self, sender: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [b for b in self.bodies if b["recipient_id"] == sender]
            if len(mine) >= count:
                return mine
            time.sleep(0.05)
        raise AssertionError(f"{sender} got {self.bodies} within {timeout} s")

    def close(self) -> None:
        self.server.shutdown()


def run_cli(
    args: list[str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``donghanh ARGS`` in this process, with the instance's settings in the
    environment: its exit code, stdout and stderr."""
    import contextlib
    import io

    from bot.cli import main

    environment = {
        "DONGHANH_INSTANCE_DIR": str(settings.instance_dir),
        "DONGHANH_DATABASE_URL": settings.database_url,
        "DONGHANH_ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
        "DONGHANH_PSEUDONYM_SECRET": settings.pseudonym_secret,
        "DONGHANH_LOG_LEVEL": "WARNING",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(args)
    return code, stdout.getvalue(), stderr.getvalue()
