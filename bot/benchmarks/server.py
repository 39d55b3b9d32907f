"""Fresh instances and real ``donghanh serve`` processes for the benchmarks.

A ``BenchInstance`` is a temporary instance folder with its own secrets, a fresh
database at the schema's head (a SQLite file inside it, or a new PostgreSQL database
created next to the one ``--database-url`` names and dropped afterwards) and a trained
NLU model. A ``ServerProcess`` runs ``donghanh serve`` on a free loopback port against
it, and reads the memory of its worker processes from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from bot.config import ENV_PREFIX, PROJECT_ROOT, Settings, load_settings
from bot.errors import BadInput

LOOPBACK = "127.0.0.1"
POSTGRES_PREFIX = "postgresql+asyncpg://"
MODEL_CACHE = Path(tempfile.gettempdir()) / "donghanh-bench-nlu-model"
MODEL_DIR_ENV = "DONGHANH_MODEL_DIR"  # a trained model folder to reuse when it is current
# Compiled bytecode, kept between runs as an installed service keeps its .pyc files: a
# machine that sets PYTHONDONTWRITEBYTECODE would otherwise compile every module anew
# at every start, and the startup figures would measure the compiler.
BYTECODE_CACHE = Path(tempfile.gettempdir()) / "donghanh-bench-pycache"
# Simulated users write as fast as the server answers, far beyond the per-sender flood
# limit meant for people: the benchmarks measure turns, not 429s.
UNLIMITED_SENDERS = {"DONGHANH_INBOUND_BURST": "1000000", "DONGHANH_INBOUND_PER_MINUTE": "1e9"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def check_database_url(url: str | None) -> None:
    """``--database-url`` names a PostgreSQL server and database; SQLite needs none."""
    if url is not None and not url.startswith(POSTGRES_PREFIX):
        raise BadInput(
            "--database-url takes postgresql+asyncpg://USER@HOST:PORT/NAME "
            "(without it every server gets a fresh SQLite file)"
        )


# -- the NLU model ---------------------------------------------------------------------


def trained_model(data_dir: Path, source: Path | None = None) -> Path:
    """A model folder trained on ``data_dir``: ``source`` (or ``$DONGHANH_MODEL_DIR``)
    when it is current, else a cached one in the temporary folder, trained if stale."""
    from bot.nlu.training import ensure_model, is_model_current

    candidates = [source, Path(os.environ[MODEL_DIR_ENV]) if MODEL_DIR_ENV in os.environ else None]
    for candidate in candidates:
        if candidate is not None and is_model_current(candidate, data_dir):
            return candidate
    ensure_model(data_dir, MODEL_CACHE)
    return MODEL_CACHE


def _copy_model(source: Path, target: Path) -> None:
    """Hard links where the file system allows (a server never edits model files)."""
    try:
        shutil.copytree(source, target, copy_function=os.link)
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


# -- databases -------------------------------------------------------------------------


def _server_url(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{database}"


def fresh_postgres_name(url: str, label: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", url.rsplit("/", 1)[1].split("?")[0].lower()) or "bench"
    return f"{base[:30]}_{label[:16]}_{secrets.token_hex(3)}"


async def _run_on_maintenance_db(url: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(_server_url(url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def create_postgres_database(url: str, name: str) -> str:
    asyncio.run(_run_on_maintenance_db(url, f'CREATE DATABASE "{name}"'))
    return _server_url(url, name)


def drop_postgres_database(url: str, name: str) -> None:
    asyncio.run(_run_on_maintenance_db(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- an instance -----------------------------------------------------------------------


class BenchInstance:
    """A temporary instance: secrets, a migrated fresh database, the trained model."""

    def __init__(self, label: str, model: Path, database_url: str | None = None) -> None:
        check_database_url(database_url)
        self.label = label
        self.root = Path(tempfile.mkdtemp(prefix=f"donghanh-bench-{label}-"))
        self.instance_dir = self.root / "instance"
        self._postgres: tuple[str, str] | None = None
        if database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.instance_dir / 'donghanh.sqlite3'}"
        else:
            name = fresh_postgres_name(database_url, label)
            self.database_url = create_postgres_database(database_url, name)
            self._postgres = (database_url, name)
        self._upgrade()
        _copy_model(model, self.instance_dir / "nlu-model")

    @property
    def database_kind(self) -> str:
        return "postgresql" if self._postgres else "sqlite"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of this instance's commands: nothing of the caller's own
        ``DONGHANH_*`` settings (a platform token would reach out to the network), and
        bytecode cached as an installed service has it."""
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(ENV_PREFIX) and k != "PYTHONDONTWRITEBYTECODE"
        }
        return {
            **inherited,
            "PYTHONPYCACHEPREFIX": str(BYTECODE_CACHE),
            "DONGHANH_INSTANCE_DIR": str(self.instance_dir),
            "DONGHANH_DATABASE_URL": self.database_url,
            "DONGHANH_HOST": LOOPBACK,
            **extra,
        }

    def settings(self) -> Settings:
        return load_settings(self.env())

    def _upgrade(self) -> None:
        """``donghanh db upgrade``: creates the instance secrets and the schema."""
        done = subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            env=self.env(),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"donghanh db upgrade failed:\n{done.stderr[-2000:]}")

    def close(self, *, keep: bool = False) -> None:
        if keep:
            return
        if self._postgres is not None:
            drop_postgres_database(*self._postgres)
        shutil.rmtree(self.root, ignore_errors=True)


# -- a server process --------------------------------------------------------------------


@dataclass(frozen=True)
class MemorySample:
    pid: int
    rss_mb: float
    hwm_mb: float


def read_memory(pid: int) -> MemorySample:
    """VmRSS (now) and VmHWM (peak) of a process, from ``/proc/<pid>/status``."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    values = {
        key: int(re.search(rf"^{key}:\s+(\d+)\s+kB", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
        for key in ("VmRSS", "VmHWM")
    }
    return MemorySample(pid, values["VmRSS"] / 1024, values["VmHWM"] / 1024)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def descendant_pids(pid: int) -> list[int]:
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = child_pids(frontier.pop())
        found += children
        frontier += children
    return found


class ServerProcess:
    """``donghanh serve`` on a free loopback port, its output in the instance folder."""

    def __init__(self, instance: BenchInstance, workers: int = 1, log_level: str = "INFO") -> None:
        self.instance = instance
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = instance.root / f"server-{self.port}.log"
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]

    def start(self, timeout: float = 180.0) -> float:
        """Start and wait for the first 200 from ``GET /health``: returns the seconds
        from the process start to that answer."""
        self._log = self.log_path.open("ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and command)
            self.command(),
            env=self.instance.env(DONGHANH_LOG_LEVEL=self.log_level, **UNLIMITED_SENDERS),
            cwd=PROJECT_ROOT,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = started + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited early:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"the server did not answer /health in {timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the server itself with one worker, its
        Sanic worker processes (the descendants using most memory) with several."""
        assert self.process is not None
        if self.workers == 1:
            return [self.process.pid]
        samples = [self._try_memory(pid) for pid in descendant_pids(self.process.pid)]
        ranked = sorted((s for s in samples if s), key=lambda s: s.rss_mb, reverse=True)
        return [s.pid for s in ranked[: self.workers]] or [self.process.pid]

    @staticmethod
    def _try_memory(pid: int) -> MemorySample | None:
        try:
            return read_memory(pid)
        except (OSError, AttributeError):
            return None

    def cpu_seconds(self) -> float:
        """CPU time the server and all its processes have used so far."""
        assert self.process is not None
        total = 0.0
        for pid in [self.process.pid, *descendant_pids(self.process.pid)]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += cpu_seconds(pid)
        return total

    def worker_memory(self) -> list[MemorySample]:
        return [s for s in (self._try_memory(p) for p in self.worker_pids()) if s]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
