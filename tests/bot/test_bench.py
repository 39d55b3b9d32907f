"""``donghanh bench``: the table and JSON, the simulated users, the seeding, and a smoke
run of every server suite with tiny parameters.

The smoke run checks shapes (figures are numbers with targets, the JSON holds what the
table shows), never the performance targets themselves: those belong to benchmark
runs, not to timed tests on a shared machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import require_postgres
from sqlalchemy import func, select

from bot.bench import Figure, at_most, render_table, write_json
from bot.benchmarks.seeding import ConversationSeeder, SeedTexts
from bot.benchmarks.suites import (
    SERVER_SUITES,
    import_hotspots,
    parse_importtime,
    parse_sizes,
)
from bot.benchmarks.workload import (
    MAX_SCREENING_STEPS,
    STOP_WORD,
    LoadReport,
    MessagePools,
    Sample,
    SimulatedUser,
)
from bot.cli import main
from bot.storage.crypto import Vault
from bot.storage.db import create_engine
from bot.storage.models import Contact, ConversationEvent, Message, OutboxItem

REPO = Path(__file__).resolve().parents[2]


def screening_reply(key: str, *values: str) -> list[dict[str, Any]]:
    """A reply of the questionnaire, with its buttons as the REST channel sends them."""
    buttons = [{"title": v, "payload": f'/screening{{"{key}": "{v}"}}'} for v in values]
    return [{"recipient_id": "u", "text": "…", "buttons": buttons}]


CONSENT = screening_reply("step", "start", "decline")
QUESTION = screening_reply("answer", "yes", "no", "unsure", "skip")
KEEP = screening_reply("keep", "yes", "no")


@pytest.fixture(scope="module")
def pools() -> MessagePools:
    return MessagePools.from_nlu_dir(REPO / "data" / "nlu")


# -- the table and the JSON ------------------------------------------------------------------


def test_the_table_says_which_targets_hold_and_which_are_only_reported() -> None:
    figures = [
        at_most("turn latency median", 12.5, 10, "ms"),
        at_most("worker RSS", 200, 300, "MB"),
        Figure("load generator CPU", 0.4, "cores", "reported", True),
    ]
    lines = render_table(figures).splitlines()
    assert lines[0].split() == ["figure", "value", "target"]
    assert lines[1].endswith("MISSED") and "<= 10 ms" in lines[1] and "12.50 ms" in lines[1]
    assert lines[2].endswith("ok")
    assert "reported" in lines[3] and "reported cores" not in lines[3]


def test_the_json_holds_figures_and_details_and_no_nan(tmp_path: Path) -> None:
    figures = [at_most("p99", 3.0, 50, "ms"), Figure("empty", math.nan, "ms", "reported", True)]
    path = write_json(figures, "turns", tmp_path / "out.json", {"saturated": {"turns": 3}})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["suite"] == "turns"
    assert data["figures"][0] == {
        "name": "p99",
        "value": 3.0,
        "unit": "ms",
        "target": "<= 50",
        "holds": True,
    }
    assert data["figures"][1]["value"] is None  # NaN is not JSON
    assert data["details"] == {"saturated": {"turns": 3}}


def test_growth_sizes_and_a_sqlite_database_url_are_checked(capsys: Any) -> None:
    assert parse_sizes("100000, 1k,10000") == (1000, 10_000, 100_000)
    with pytest.raises(ValueError):
        parse_sizes("1000")
    assert main(["bench", "turns", "--database-url", "sqlite+aiosqlite:///x.db"]) == 2
    assert "postgresql+asyncpg://" in capsys.readouterr().err


# -- the simulated users ---------------------------------------------------------------------


def test_a_simulated_user_takes_the_questionnaire_through_its_buttons(
    pools: MessagePools,
) -> None:
    for seed in range(30):
        user = SimulatedUser(pools, random.Random(seed))
        user.observe(CONSENT)
        assert user.next_message() == ("screening", '/screening{"step": "start"}')
        user.observe(QUESTION)
        kind, first_answer = user.next_message()
        # the first question asks about danger now: never "yes", tapped or typed
        assert kind == "screening"
        assert first_answer not in {'/screening{"answer": "yes"}', "có", "co", "đúng rồi"}
        user.observe(KEEP)  # keep the answers or not: one of the two buttons, tapped
        assert user.next_message()[1] in {b["payload"] for b in KEEP[0]["buttons"]}
        user.observe([{"recipient_id": "u", "text": "Mình đã giữ lại …"}])
        assert user.next_message()[0] != "screening" or user.screening_steps == 0


def test_a_simulated_user_mixes_faq_greetings_fallbacks_and_screening(
    pools: MessagePools,
) -> None:
    user = SimulatedUser(pools, random.Random(3))
    said = [user.next_message() for _ in range(400)]
    kinds = {kind for kind, _ in said}
    assert kinds == {"faq", "faq_no_diacritics", "greeting", "fallback", "screening"}
    bare = [text for kind, text in said if kind == "faq_no_diacritics"]
    assert all(text.isascii() for text in bare)
    assert any(text in pools.faq for kind, text in said if kind == "faq")


def test_a_questionnaire_that_never_ends_is_stopped(pools: MessagePools) -> None:
    user = SimulatedUser(pools, random.Random(1))
    said = []
    for _ in range(MAX_SCREENING_STEPS + 1):
        user.observe(QUESTION)
        said.append(user.next_message()[1])
    assert said[-1] == STOP_WORD and STOP_WORD not in said[:-1]


def test_a_load_report_counts_latency_throughput_and_failures() -> None:
    samples = [Sample(float(i), float(i + 1), "faq", True, 1) for i in range(100)]
    samples.append(Sample(100.0, 30_000.0, "faq", False, 0))
    samples.append(Sample(101.0, 2.0, "greeting", True, 0))
    report = LoadReport(users=5, seconds=10, think_ms=0, samples=samples, completed=101, errors=1)
    assert report.throughput == pytest.approx(10.1)
    assert report.latency(50) == pytest.approx(50.0)
    assert report.latency(99) == pytest.approx(99.0)
    assert report.unanswered == 1
    summary = report.summary()
    assert summary["errors"] == 1 and summary["mix"] == {"faq": 101, "greeting": 1}


def test_importtime_output_is_read_into_the_slowest_imports() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        150 |   encodings\n"
        "import time:      2000 |      50000 |     sqlalchemy\n"
        "import time:      1000 |      70000 |   bot.storage.db\n"
        "import time:       500 |      90000 | bot.app\n"
    )
    entries = parse_importtime(stderr)
    assert entries[-1] == (0, "bot.app", 0.09)
    hotspots = import_hotspots(entries)
    assert hotspots["total_s"] == 0.09
    assert list(hotspots["direct_imports_of_bot"]) == ["bot.storage.db", "encodings"]
    assert hotspots["third_party_packages"] == {"sqlalchemy": 0.05, "encodings": 0.0}


# -- seeding ----------------------------------------------------------------------------------


async def _count(database_url: str, model: Any, *where: Any) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(func.count()).select_from(model).where(*where)
            return int(await connection.scalar(query) or 0)
    finally:
        await engine.dispose()


async def test_seeding_adds_realistic_encrypted_conversations_in_bulk(
    database_url: str, tmp_path: Path
) -> None:
    from cryptography.fernet import Fernet

    from bot.domain import InboundMessage
    from bot.storage.db import session_factory
    from bot.storage.repository import Store

    vault = Vault([Fernet.generate_key().decode()])
    texts = SeedTexts(["tiền ký quỹ là gì"], ["Theo Điều 25 Luật 69/2020/QH14 …"], ["faq/deposit"])
    seeder = ConversationSeeder(database_url, vault, "secret", texts)
    await seeder.do_seed(30)
    await seeder.do_seed(20)  # ids and pseudonyms continue
    assert await _count(database_url, Contact) == 50
    assert await _count(database_url, Message) == 200
    assert (
        await _count(
            database_url, Message, Message.processed_at.is_(None), Message.direction == "in"
        )
        == 0
    )  # nothing for the recovery loop
    assert await _count(database_url, ConversationEvent) == 100
    assert await _count(database_url, OutboxItem, OutboxItem.status == "sent") == 100
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(select(Message.text_enc).where(Message.id == 1))
        assert stored is not None and vault.decrypt(stored) == "tiền ký quỹ là gì"
        # the server's own inserts still get fresh ids (PostgreSQL: the sequences follow)
        store = Store(session_factory(engine), vault, "secret")
        inbound = await store.do_store_inbound(InboundMessage("rest", "new-person", "xin chào"))
        assert inbound is not None and inbound.message_id == 201
    finally:
        await engine.dispose()


# -- a smoke run of every server suite -----------------------------------------------------------


def run_bench(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["bench", *args])
    return code, out.getvalue()


TINY = [  # a few users for a second or two: shapes, not performance
    *("--users", "3", "--seconds", "1", "--warmup", "0.5", "--think-ms", "100"),
    *("--startup-runs", "1"),
    *("--growth-sizes", "50,200", "--growth-users", "2", "--growth-seconds", "1"),
]


@pytest.fixture(scope="module")
def smoke_run(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "all.json"
    code, printed = run_bench(["all", *TINY, "--model", str(model_dir), "--out", str(out)])
    return code, printed, json.loads(out.read_text(encoding="utf-8"))


def figure_names(data: dict[str, Any]) -> list[str]:
    return [f["name"] for f in data["figures"]]


@pytest.mark.slow
def test_all_prints_the_table_of_every_figure_and_writes_it_as_json(
    smoke_run: tuple[int, str, dict[str, Any]],
) -> None:
    code, printed, data = smoke_run
    assert code == 0
    assert data["suite"] == "all" and set(data["details"]) == {*SERVER_SUITES, "setup"}
    lines = printed.splitlines()
    assert lines[0].split() == ["figure", "value", "target"]
    for figure in data["figures"]:
        assert isinstance(figure["value"], (int, float)), figure
        assert figure["target"] == "reported" or figure["target"][:2] in {"<=", ">="}
        assert isinstance(figure["holds"], bool)
        assert any(line.startswith(figure["name"]) for line in lines), figure["name"]
    assert lines[-1].startswith("JSON: ")


@pytest.mark.slow
def test_the_turns_suite_sends_the_mixed_workload_and_counts_failures(
    smoke_run: tuple[int, str, dict[str, Any]],
) -> None:
    _code, _printed, data = smoke_run
    turns = data["details"]["turns"]
    saturated, paced = turns["saturated"], turns["paced"]
    assert saturated["users"] == 3 and saturated["turns"] > 0 and paced["think_ms"] == 100
    assert saturated["errors"] == 0 and turns["warmup"]["errors"] == 0
    assert saturated["latency_ms"]["p50"] <= saturated["latency_ms"]["p99"]
    names = figure_names(data)
    assert "throughput, 3 users, closed loop" in names
    assert "turn latency p99, 3 users, think 100 ms" in names
    assert "failed turns (HTTP error or timeout)" in names


@pytest.mark.slow
def test_the_memory_suite_reads_the_worker_process(
    smoke_run: tuple[int, str, dict[str, Any]],
) -> None:
    _code, _printed, data = smoke_run
    memory = data["details"]["memory"]
    assert memory["workers"] == 1 and len(memory["after_load"]) == 1
    sample = memory["after_load"][0]
    assert 50 < sample["rss_mb"] <= sample["hwm_mb"]
    assert {"worker RSS after warm-up", "worker peak RSS (VmHWM)"} <= set(figure_names(data))


@pytest.mark.slow
def test_the_startup_suite_times_starts_and_says_where_the_time_goes(
    smoke_run: tuple[int, str, dict[str, Any]],
) -> None:
    _code, printed, data = smoke_run
    startup = data["details"]["startup"]
    assert len(startup["starts_s"]) == 1 and startup["starts_s"][0] > 0
    breakdown = startup["breakdown"]
    assert breakdown["model_load_s"] > 0 and breakdown["open_services_s"] > 0
    assert breakdown["importtime"]["third_party_packages"]
    assert "cold start to ready, median of 1" in figure_names(data)
    assert "slowest third-party packages:" in printed


@pytest.mark.slow
def test_the_growth_suite_measures_each_size_and_their_ratio(
    smoke_run: tuple[int, str, dict[str, Any]],
) -> None:
    _code, _printed, data = smoke_run
    growth = data["details"]["growth"]
    assert set(growth["by_size"]) == {"50", "200"}
    assert all(run["turns"] > 0 for run in growth["by_size"].values())
    assert "latency median ratio 200/50" in figure_names(data)


@pytest.mark.slow
def test_the_memory_suite_runs_on_a_fresh_postgresql_database_and_drops_it(
    model_dir: Path, tmp_path: Path
) -> None:
    url = require_postgres()
    base = url.rsplit("/", 1)[0] + "/benchsmoke"
    code, printed = run_bench(
        [
            "memory",
            "--database-url",
            base,
            "--users",
            "2",
            "--seconds",
            "1",
            "--warmup",
            "0.5",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "memory.json"),
        ]
    )
    assert code == 0, printed
    data = json.loads((tmp_path / "memory.json").read_text(encoding="utf-8"))
    assert data["details"]["load"]["errors"] == 0
    assert asyncio.run(_bench_databases(url)) == []


async def _bench_databases(url: str) -> list[str]:
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE 'benchsmoke_%'")
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()
