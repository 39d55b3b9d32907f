"""The ``donghanh`` command, run as a real subprocess where it matters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.config import Settings

REPO = Path(__file__).resolve().parents[2]


def run(
    args: list[str], settings: Settings, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DONGHANH_NEW_PASSWORD"}
    environment |= {
        "DONGHANH_INSTANCE_DIR": str(settings.instance_dir),
        "DONGHANH_DATABASE_URL": settings.database_url,
        "DONGHANH_ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
        "DONGHANH_PSEUDONYM_SECRET": settings.pseudonym_secret,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=120,
    )


def test_users_create_takes_the_password_from_the_environment(settings: Settings) -> None:
    done = run(
        ["users", "create", "--username", "lan", "--role", "counsellor"],
        settings,
        DONGHANH_NEW_PASSWORD="một mật khẩu đủ dài",
    )
    assert done.returncode == 0, done.stderr
    again = run(
        ["users", "create", "--username", "lan", "--role", "counsellor"],
        settings,
        DONGHANH_NEW_PASSWORD="một mật khẩu đủ dài",
    )
    assert again.returncode == 2 and "already exists" in again.stderr


def test_users_create_without_a_terminal_or_variable_refuses(settings: Settings) -> None:
    done = run(["users", "create", "--username", "x", "--role", "admin"], settings)
    assert done.returncode == 2 and "DONGHANH_NEW_PASSWORD" in done.stderr


def test_a_short_password_is_refused(settings: Settings) -> None:
    done = run(
        ["users", "create", "--username", "x", "--role", "admin"],
        settings,
        DONGHANH_NEW_PASSWORD="short",
    )
    assert done.returncode == 2 and "12" in done.stderr


def test_there_is_no_password_option_on_the_command_line() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["users", "create", "--username", "x", "--role", "admin", "--password", "p"]
        )


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["users", "create", "--username", "x", "--role", "root"])


def test_nlu_parse_reads_lines_and_writes_json_lines(settings: Settings) -> None:
    done = run(["nlu", "parse"], settings, stdin="xin chào\n\n/emergency\n")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["intent"] and r["intent"]["name"] for r in results] == ["greet", None, "emergency"]
    assert results[1]["text"] == ""


def test_chat_in_the_terminal(settings: Settings) -> None:
    done = run(["chat"], settings, stdin="xin chào\n1\n/thoat\n")
    assert done.returncode == 0, done.stderr
    assert "Đồng Hành: Xin chào" in done.stdout
    assert "1. Tôi đang gặp nguy hiểm" in done.stdout
    assert "113" in done.stdout  # "1" selected the first button


def test_serve_refuses_a_database_that_is_not_migrated(settings: Settings, tmp_path: Path) -> None:
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    done = run(["chat"], settings, stdin="/thoat\n", DONGHANH_DATABASE_URL=empty)
    assert done.returncode == 2 and "donghanh db upgrade" in done.stderr


def test_setup_creates_everything_and_prints_the_admin_password_once(
    tmp_path: Path, model_dir: Path
) -> None:
    env = {**os.environ, "DONGHANH_INSTANCE_DIR": str(tmp_path / "fresh")}
    for key in ("DONGHANH_DATABASE_URL", "DONGHANH_ENCRYPTION_KEYS", "DONGHANH_PSEUDONYM_SECRET"):
        env.pop(key, None)
    first = subprocess.run(
        [sys.executable, "-m", "bot", "setup"], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    assert "mật khẩu:" in first.stdout
    assert (tmp_path / "fresh" / "secrets.yml").exists()
    assert (tmp_path / "fresh" / "donghanh.sqlite3").exists()
    second = subprocess.run(
        [sys.executable, "-m", "bot", "setup"], env=env, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr
    assert "mật khẩu:" not in second.stdout
    assert "đã cập nhật" in second.stdout  # the model is not retrained when the data did not change


def test_content_load_checks_then_loads_the_faq(settings: Settings, tmp_path: Path) -> None:
    done = run(["content", "load"], settings)
    assert done.returncode == 0, done.stderr
    assert "Đã xuất bản 20 chủ đề FAQ" in done.stdout
    again = run(["content", "load"], settings)
    assert "Đã xuất bản 0 chủ đề FAQ" in again.stdout  # nothing changed: nothing published

    broken = tmp_path / "faq"
    shutil.copytree(REPO / "data" / "faq", broken)
    deposit = broken / "deposit.yml"
    deposit.write_text(deposit.read_text("utf-8").replace("reviewed:", "# reviewed:"), "utf-8")
    refused = run(["content", "load", "--faq-dir", str(broken)], settings)
    assert refused.returncode == 1
    assert "deposit.yml: missing 'reviewed'" in refused.stderr
    assert "Chưa nạp gì" in refused.stderr


def test_content_export_writes_files_the_linter_accepts_and_a_rasa_project(
    settings: Settings, tmp_path: Path
) -> None:
    """`content export` gives back data/faq-shaped files (with their examples and the
    directory) that pass `content check`; `export rasa` writes a project whose NLU file
    passes Rasa's own schema and holds every example."""
    from bot.nlu.rasa_yaml import read_nlu_dir, validate_nlu_document

    assert run(["content", "load"], settings).returncode == 0
    out = tmp_path / "export"
    exported = run(["content", "export", str(out)], settings)
    assert exported.returncode == 0, exported.stderr
    assert len(list((out / "faq").glob("*.yml"))) == 20
    assert (out / "services_directory" / "national.yml").exists()
    data = tmp_path / "data"  # the repository's data with the exported examples
    shutil.copytree(REPO / "data", data)
    shutil.copy(out / "nlu" / "faq.yml", data / "nlu" / "faq.yml")
    checked = run(
        ["content", "check", "--faq-dir", str(out / "faq")], settings, DONGHANH_DATA_DIR=str(data)
    )
    assert checked.returncode == 0, checked.stderr
    assert sorted((e.full_intent, e.text) for e in read_nlu_dir(data / "nlu").examples) == sorted(
        (e.full_intent, e.text) for e in read_nlu_dir(REPO / "data" / "nlu").examples
    )

    project = tmp_path / "rasa"
    done = run(["export", "rasa", str(project)], settings)
    assert done.returncode == 0, done.stderr
    for name in ("config.yml", "domain.yml", "data/nlu.yml", "data/rules.yml"):
        assert (project / name).is_file(), name
    text = (project / "data" / "nlu.yml").read_text("utf-8")
    validate_nlu_document(text, "data/nlu.yml")
    assert len(read_nlu_dir(project / "data").examples) == len(
        read_nlu_dir(REPO / "data" / "nlu").examples
    )
