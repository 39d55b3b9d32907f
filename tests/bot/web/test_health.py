"""``/health``, ``/version`` and the security headers of the service's own pages."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    PG_URL_VAR,
    LiveServer,
)
from cryptography.fernet import Fernet

from bot import __version__
from bot.config import Settings, load_settings
from bot.nlu.training import current_model_path

pytestmark = pytest.mark.slow


def _settings(instance: Path, model_dir: Path, database_url: str) -> Settings:
    shutil.copytree(model_dir, instance / "nlu-model", copy_function=os.link)
    return load_settings(
        {
            "DONGHANH_INSTANCE_DIR": str(instance),
            "DONGHANH_DATABASE_URL": database_url,
            "DONGHANH_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DONGHANH_PSEUDONYM_SECRET": "test-pseudonym-secret",
        }
    )


@pytest.fixture(scope="module")
def server(module_server: LiveServer) -> LiveServer:
    return module_server


def test_health_is_ok_when_the_database_answers(server: LiveServer) -> None:
    response = httpx.get(f"{server.base_url}/health", timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ok"


def test_version_names_the_service_and_its_model(server: LiveServer, model_dir: Path) -> None:
    response = httpx.get(f"{server.base_url}/version", timeout=10)

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "donghanh"
    assert body["version"] == __version__
    assert body["version"].count(".") >= 1
    model = body["model"]
    trained = current_model_path(model_dir)
    assert trained is not None
    assert model["data_hash"] == trained.name, "the model in use, named by its data hash"
    assert datetime.fromisoformat(model["trained_at"]).tzinfo is not None


def test_chat_page_sends_the_security_headers(server: LiveServer) -> None:
    response = httpx.get(f"{server.base_url}/chat", timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


# -- the database going away and coming back ---------------------------------------------------
# These run last in the module: they take the module server's database away and bring
# it back, and the server must recover by itself.

BURST = 40  # more than the SQLite pool's pool_size + max_overflow (5 + 5)


async def _burst(base_url: str) -> list[tuple[int, Any]]:
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        responses = await asyncio.gather(*(http.get("/health") for _ in range(BURST)))
    return [(r.status_code, r.json()) for r in responses]


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


async def _pg_allow_connections(database_url: str, allow: bool) -> None:
    import asyncpg

    name = database_url.rsplit("/", 1)[1].split("?", 1)[0]
    admin = os.environ[PG_URL_VAR].replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(
            f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {'true' if allow else 'false'}"
        )
        if not allow:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await connection.close()


def _assert_unavailable_body(body: Any) -> None:
    assert body["status"] == "unavailable"
    assert isinstance(body["database"], str) and body["database"]


def _assert_healthy_again(server: LiveServer) -> None:
    assert all(status == 200 for status, _ in asyncio.run(_burst(server.base_url)))
    recovered = httpx.get(f"{server.base_url}/health", timeout=10)
    assert recovered.status_code == 200
    assert recovered.json()["status"] == "ok"
    assert server.process.poll() is None, "the service recovered without a restart"


def test_health_is_503_while_the_database_is_unreachable_and_recovers(
    server: LiveServer, module_database_url: str
) -> None:
    """How the database is made unreachable, and why this way.

    SQLite: the module's database file lives alone in its own directory; renaming that
    directory away makes every *new* connection fail ("unable to open database file"),
    like a volume that went away. chmod is no use (the tests may run as root, who
    ignores permissions), and deleting only the file would let SQLite create a new
    empty one. Connections already in the pool keep their open file descriptors, and
    ``SELECT 1`` never reads the database file, so on a pooled connection the query
    still succeeds. To really make ``SELECT 1`` fail, the check has to run on a fresh
    connection: a burst of concurrent requests, more than the pool holds (pool_size 5 +
    max_overflow 5), makes the pool open new connections, and those fail. Renaming the
    directory back makes new connections work again.

    PostgreSQL: the database stops accepting connections (ALLOW_CONNECTIONS false) and
    its sessions are terminated; the pool's pre-ping sees the dead connection and the
    reconnect is refused, so even a single request fails. Then connections are allowed
    again.
    """
    assert all(status == 200 for status, _ in asyncio.run(_burst(server.base_url)))

    if module_database_url.startswith("sqlite"):
        db_dir = _sqlite_path(module_database_url).parent
        away = db_dir.with_name(db_dir.name + "-gone")
        db_dir.rename(away)
        try:
            failures: list[Any] = []
            for _ in range(10):  # each burst fails several checks; retry if timing hid it
                burst = asyncio.run(_burst(server.base_url))
                failures = [body for status, body in burst if status == 503]
                if failures:
                    break
            assert failures, "no /health request saw the missing database"
            for body in failures:
                _assert_unavailable_body(body)
        finally:
            away.rename(db_dir)
    else:
        asyncio.run(_pg_allow_connections(module_database_url, allow=False))
        try:
            statuses = []
            for _ in range(20):
                response = httpx.get(f"{server.base_url}/health", timeout=30)
                statuses.append(response.status_code)
                if response.status_code == 503:
                    _assert_unavailable_body(response.json())
                    break
                time.sleep(0.1)
            assert statuses[-1] == 503, statuses
        finally:
            asyncio.run(_pg_allow_connections(module_database_url, allow=True))

    _assert_healthy_again(server)


def test_health_is_503_when_the_sqlite_file_was_deleted(tmp_path: Path, model_dir: Path) -> None:
    """A deleted database file must not look healthy.

    After ``rm donghanh.sqlite3`` every new connection silently creates a new, empty
    database, on which ``SELECT 1`` succeeds, while every chat request fails (no tables).
    The health check must notice that the database cannot serve the service.
    """
    from bot.storage.migrate import upgrade_database

    db_dir = tmp_path / "db"
    db_dir.mkdir()
    url = f"sqlite+aiosqlite:///{db_dir / 'donghanh.sqlite3'}"
    upgrade_database(url)
    instance = tmp_path / "instance"
    instance.mkdir()
    live = LiveServer(_settings(instance, model_dir, url)).start(timeout=90)
    try:
        for path in db_dir.iterdir():  # the file and its -wal and -shm companions
            path.unlink()

        async def chat_burst() -> list[int]:
            limits = httpx.Limits(max_connections=BURST)
            async with httpx.AsyncClient(base_url=live.base_url, timeout=30, limits=limits) as h:
                responses = await asyncio.gather(
                    *(
                        h.post("/webhooks/rest/webhook", json={"sender": f"d{i}", "message": "hi"})
                        for i in range(BURST)
                    )
                )
            return [r.status_code for r in responses]

        chat = asyncio.run(chat_burst())
        assert 503 in chat, "premise: the service can no longer answer messages"

        health = [status for _ in range(3) for status, _ in asyncio.run(_burst(live.base_url))]
        assert 503 in health, (
            f"/health said ok to all {len(health)} checks while chat answered {chat.count(503)} "
            f"of {len(chat)} messages with 503"
        )
    finally:
        live.stop()
