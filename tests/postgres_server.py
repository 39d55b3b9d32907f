"""A throwaway PostgreSQL for the test run, from Debian's packages, on loopback.

``make test`` needs no set-up: when ``DONGHANH_TEST_DATABASE_URL`` is not set, the test
run starts its own cluster (``initdb`` in a temporary folder, a free port on 127.0.0.1,
trust for local connections only) and stops it at the end. When none can be started
(no ``postgresql`` package), the reason is kept, and the PostgreSQL tests skip with it
(or fail, in CI).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVICE_USER = "postgres"  # initdb refuses to run as root
DATABASE = "donghanh_test"
START_TIMEOUT_SECONDS = 60


@dataclass
class ThrowawayPostgres:
    url: str
    data_dir: Path
    bin_dir: Path

    def stop(self) -> None:
        pg_ctl = str(self.bin_dir / "pg_ctl")
        _run_as_owner([pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "stop"])
        shutil.rmtree(self.data_dir, ignore_errors=True)


class PostgresUnavailable(Exception):
    """Why no PostgreSQL could be started (said in the skip message)."""


def newest_bin_dir() -> Path:
    candidates = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), key=_major_version)
    found = [c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()]
    if not found:
        raise PostgresUnavailable(
            f"no PostgreSQL server found in {PG_BIN_GLOB} (apt-get install postgresql)"
        )
    return found[-1]


def _major_version(path: Path) -> int:
    version = path.parent.name
    return int(version) if version.isdigit() else 0


def _as_root() -> bool:
    return os.geteuid() == 0


def _run_as_owner(command: list[str]) -> subprocess.CompletedProcess[str]:
    if _as_root():
        command = ["runuser", "-u", SERVICE_USER, "--", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS, check=False
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start() -> ThrowawayPostgres:
    """Initialise and start a cluster; raises ``PostgresUnavailable`` with the reason."""
    bin_dir = newest_bin_dir()
    data_dir = Path(tempfile.mkdtemp(prefix="donghanh-test-pg-"))
    if _as_root():
        shutil.chown(data_dir, user=SERVICE_USER)
    init = _run_as_owner(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]
    )
    if init.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {data_dir} -c fsync=off -c full_page_writes=off"
    started = _run_as_owner(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(data_dir / "server.log"),
            "-w",
            "-o",
            options,
            "start",
        ]
    )
    if started.returncode != 0:
        log = (data_dir / "server.log").read_text(errors="replace")[-500:]
        shutil.rmtree(data_dir, ignore_errors=True)
        raise PostgresUnavailable(f"PostgreSQL did not start: {started.stderr.strip()} {log}")
    server = ThrowawayPostgres(
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{DATABASE}", data_dir, bin_dir
    )
    created = _run_as_owner(
        [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE]
    )
    if created.returncode != 0:
        server.stop()
        raise PostgresUnavailable(f"createdb failed: {created.stderr.strip()}")
    return server
