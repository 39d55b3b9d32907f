"""The server suites of ``donghanh bench``: turns, memory, startup, growth, all.

- ``turns``: simulated users against one real server. A closed loop without think
  time gives the throughput the server sustains (and, by Little's law, its latency is
  users / throughput); a second run in which people read each reply for a while
  (``think_ms``) gives the latency at a gentler load.
- ``memory``: VmRSS and VmHWM of the worker process(es), after the warm-up and after
  the load.
- ``startup``: process start to the first 200 from ``GET /health``, and where the time
  goes (interpreter, imports, ``open_services``, the NLU model, the rest).
- ``growth``: turn latency with 1k, 10k and 100k stored conversations (bulk-seeded).
- ``all``: the four, sharing servers where they can, in one JSON.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.bench import Figure, at_least, at_most
from bot.benchmarks.server import (
    BenchInstance,
    MemorySample,
    ServerProcess,
    check_database_url,
    trained_model,
)
from bot.benchmarks.workload import LoadReport, MessagePools, run_load_sync
from bot.config import PROJECT_ROOT

SERVER_SUITES = ("turns", "memory", "startup", "growth")
SUITES = (*SERVER_SUITES, "all")

TURN_MEDIAN_MS = 10.0
TURN_P99_MS = 50.0
THROUGHPUT_PER_S = 500.0
WORKER_RSS_MB = 300.0
STARTUP_S = 3.0
GROWTH_RATIO = 1.5


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BenchOptions:
    """What a run measures and how hard it pushes (the command's options)."""

    database_url: str | None = None  # a PostgreSQL server and database name; None: SQLite
    workers: int = 1
    users: int = 50
    seconds: float = 20.0
    warmup_seconds: float = 5.0
    think_ms: float = 1000.0  # a person reads the reply for a second before writing again
    growth_users: int = 10
    growth_seconds: float = 10.0
    growth_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    startup_runs: int = 5
    model: Path | None = None  # a trained model to reuse when it is current
    data_dir: Path = PROJECT_ROOT / "data"
    keep: bool = False  # keep instance folders and databases for a look afterwards
    progress: Callable[[str], None] = _say

    @property
    def nlu_dir(self) -> Path:
        return self.data_dir / "nlu"


@dataclass
class SuiteResult:
    """Figures with their targets, the raw numbers behind them, and notes to print."""

    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def extend(self, name: str, other: SuiteResult) -> None:
        self.figures += other.figures
        self.details[name] = other.details
        self.notes += other.notes


def reported(name: str, value: float, unit: str) -> Figure:
    """A figure without a target of its own."""
    return Figure(name, value, unit, "reported", True)


# -- one server under load: turns and memory ------------------------------------------------


@dataclass
class LoadSession:
    warmup: LoadReport
    saturated: LoadReport
    paced: LoadReport | None
    memory_after_warmup: list[MemorySample]
    memory_after_load: list[MemorySample]
    workers: int


@contextmanager
def running_server(
    instance: BenchInstance, options: BenchOptions
) -> Iterator[tuple[ServerProcess, float]]:
    server = ServerProcess(instance, options.workers)
    options.progress(f"starting donghanh serve --workers {options.workers} …")
    seconds = server.start()
    try:
        yield server, seconds
    finally:
        server.stop()


def _load(
    server: ServerProcess,
    pools: MessagePools,
    options: BenchOptions,
    label: str,
    *,
    users: int,
    seconds: float,
    think_ms: float = 0.0,
    warmup_seconds: float = 0.0,
) -> LoadReport:
    options.progress(f"{label}: {users} users, {seconds:g} s, think time {think_ms:g} ms …")
    cpu_before = server.cpu_seconds()
    report = run_load_sync(
        server.base_url,
        pools,
        users=users,
        seconds=seconds,
        warmup_seconds=warmup_seconds,
        think_ms=think_ms,
        label=label,
    )
    report.server_cpu_seconds = server.cpu_seconds() - cpu_before
    return report


def load_session(
    server: ServerProcess, options: BenchOptions, *, paced: bool = True
) -> LoadSession:
    """Warm up, read memory, saturate (and run paced), read memory again."""
    pools = MessagePools.from_nlu_dir(options.nlu_dir)
    users = options.users
    warmup = _load(server, pools, options, "warmup", users=users, seconds=options.warmup_seconds)
    after_warmup = server.worker_memory()
    saturated = _load(server, pools, options, "saturated", users=users, seconds=options.seconds)
    paced_report = (
        _load(
            server,
            pools,
            options,
            "paced",
            users=users,
            seconds=options.seconds,
            think_ms=options.think_ms,
        )
        if paced
        else None
    )
    return LoadSession(
        warmup, saturated, paced_report, after_warmup, server.worker_memory(), options.workers
    )


def turn_figures(session: LoadSession) -> SuiteResult:
    saturated, paced = session.saturated, session.paced
    users = saturated.users
    loop = f"{users} users, closed loop"
    figures = [
        at_least(f"throughput, {loop}", saturated.throughput, THROUGHPUT_PER_S, "msg/s"),
        at_most(f"turn latency median, {loop}", saturated.latency(50), TURN_MEDIAN_MS, "ms"),
        reported(f"turn latency p90, {loop}", saturated.latency(90), "ms"),
        at_most(f"turn latency p99, {loop}", saturated.latency(99), TURN_P99_MS, "ms"),
    ]
    if paced is not None:
        thinking = f"{users} users, think {paced.think_ms:g} ms"
        figures += [
            reported(f"throughput, {thinking}", paced.throughput, "msg/s"),
            at_most(f"turn latency median, {thinking}", paced.latency(50), TURN_MEDIAN_MS, "ms"),
            reported(f"turn latency p90, {thinking}", paced.latency(90), "ms"),
            at_most(f"turn latency p99, {thinking}", paced.latency(99), TURN_P99_MS, "ms"),
        ]
    runs = [session.warmup, saturated, *([paced] if paced else [])]
    errors = sum(r.errors for r in runs)
    figures += [
        at_most("failed turns (HTTP error or timeout)", errors, 0, "turns"),
        reported("turns answered with no reply", sum(r.unanswered for r in runs), "turns"),
        reported("server CPU time per turn", saturated.server_cpu_ms_per_turn, "ms"),
        reported("load generator CPU", saturated.client_cpu_seconds / saturated.seconds, "cores"),
    ]
    little = users / saturated.throughput * 1000 if saturated.throughput else math.inf
    return SuiteResult(
        figures,
        {
            "workers": session.workers,
            "warmup": session.warmup.summary(),
            "saturated": saturated.summary(),
            "paced": paced.summary() if paced else None,
            "littles_law_latency_ms": round(little, 1),
        },
        [
            f"Little's law: {users} users / {saturated.throughput:.0f} msg/s = {little:.0f} ms "
            "per turn in the closed loop; a median of 10 ms there needs "
            f"{users / TURN_MEDIAN_MS * 1000:.0f} msg/s."
        ],
    )


def memory_figures(session: LoadSession) -> SuiteResult:
    def worst(samples: list[MemorySample], attribute: str) -> float:
        return max((getattr(s, attribute) for s in samples), default=float("nan"))

    figures = [
        at_most(
            "worker RSS after warm-up",
            worst(session.memory_after_warmup, "rss_mb"),
            WORKER_RSS_MB,
            "MB",
        ),
        at_most(
            "worker RSS after load", worst(session.memory_after_load, "rss_mb"), WORKER_RSS_MB, "MB"
        ),
        at_most(
            "worker peak RSS (VmHWM)",
            worst(session.memory_after_load, "hwm_mb"),
            WORKER_RSS_MB,
            "MB",
        ),
    ]
    if session.workers > 1:
        figures.append(
            reported("worker processes measured", len(session.memory_after_load), "processes")
        )
    return SuiteResult(
        figures,
        {
            "workers": session.workers,
            "after_warmup": [vars(s) for s in session.memory_after_warmup],
            "after_load": [vars(s) for s in session.memory_after_load],
            "load": session.saturated.summary(),
        },
    )


# -- startup -------------------------------------------------------------------------------


def _median_seconds(command: list[str], runs: int = 3, env: dict[str, str] | None = None) -> float:
    def once() -> float:
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)  # noqa: S603
        return time.perf_counter() - started

    return statistics.median(once() for _ in range(runs))


def parse_importtime(stderr: str) -> list[tuple[int, str, float]]:
    """``(depth, module, cumulative seconds)`` from ``python -X importtime`` output."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        entries.append((depth, name.strip(), int(cumulative) / 1e6))
    return entries


def import_hotspots(entries: list[tuple[int, str, float]], top: int = 8) -> dict[str, Any]:
    """The slowest imports: what ``bot.*`` modules imported at the top level import
    directly, and third-party packages at their first import (children come before
    their parent in ``-X importtime`` output)."""
    direct: list[tuple[str, float]] = []
    parent = ""
    for depth, name, seconds in reversed(entries):
        if depth == 0:
            parent = name
        elif depth == 1 and parent.startswith("bot"):
            direct.append((name, seconds))
    first_import: dict[str, float] = {}
    for _depth, name, seconds in entries:
        if "." not in name and name != "bot" and name not in first_import:
            first_import[name] = seconds
    total = sum(s for depth, _name, s in entries if depth == 0)

    def slowest(items: Any) -> dict[str, float]:
        return {n: round(s, 3) for n, s in sorted(items, key=lambda e: -e[1])[:top]}

    return {
        "total_s": round(total, 3),
        "direct_imports_of_bot": slowest(direct),
        "third_party_packages": slowest(first_import.items()),
    }


# Run with -X importtime in a fresh process: the imports, then open_services() as the
# server's before_server_start listener runs it, with the model load timed inside it.
STARTUP_TIMER = """
import asyncio, json, time
started = time.perf_counter()
import bot.cli
import bot.app as app
from bot.config import load_settings
imported = time.perf_counter()
model_load = []
real_load = app.load_interpreter

def timed_load(*args, **kwargs):
    before = time.perf_counter()
    try:
        return real_load(*args, **kwargs)
    finally:
        model_load.append(time.perf_counter() - before)

app.load_interpreter = timed_load

async def main():
    before = time.perf_counter()
    services = await app.open_services(load_settings())
    opened = time.perf_counter()
    await app.close_services(services)
    return opened - before

opening = asyncio.run(main())
print(json.dumps({"import_s": imported - started, "open_services_s": opening,
                  "model_load_s": model_load[0] if model_load else 0.0}))
"""


def startup_breakdown(instance: BenchInstance) -> dict[str, Any]:
    """Where a start's time goes, measured in fresh processes against the instance."""
    env = instance.env(DONGHANH_LOG_LEVEL="WARNING")
    interpreter = _median_seconds([sys.executable, "-c", "pass"], env=env)
    timed = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-X", "importtime", "-c", STARTUP_TIMER],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    phases = json.loads(timed.stdout.strip().splitlines()[-1])
    return {
        "interpreter_s": interpreter,
        **phases,
        "importtime": import_hotspots(parse_importtime(timed.stderr)),
    }


def measure_starts(instance: BenchInstance, options: BenchOptions) -> list[float]:
    starts = []
    for run in range(options.startup_runs):
        options.progress(f"startup run {run + 1}/{options.startup_runs} …")
        server = ServerProcess(instance, options.workers)
        try:
            starts.append(server.start())
        finally:
            server.stop()
    return starts


def startup_figures(
    starts: list[float], first_start: float, breakdown: dict[str, Any]
) -> SuiteResult:
    median = statistics.median(starts)
    known = breakdown["interpreter_s"] + breakdown["import_s"] + breakdown["open_services_s"]
    hotspots = breakdown["importtime"]
    figures = [
        at_most(f"cold start to ready, median of {len(starts)}", median, STARTUP_S, "s"),
        reported("first start on a new database (seeds content)", first_start, "s"),
        reported("  python interpreter", breakdown["interpreter_s"], "s"),
        reported("  import bot.cli, bot.app (-X importtime)", breakdown["import_s"], "s"),
        reported("  open_services (database, model, content)", breakdown["open_services_s"], "s"),
        reported("    of which load_interpreter (NLU model)", breakdown["model_load_s"], "s"),
        reported("  Sanic start, listeners, first /health", max(0.0, median - known), "s"),
    ]
    notes = [
        "slowest direct imports of bot modules: "
        + ", ".join(f"{n} {s:.2f} s" for n, s in hotspots["direct_imports_of_bot"].items()),
        "slowest third-party packages: "
        + ", ".join(f"{n} {s:.2f} s" for n, s in hotspots["third_party_packages"].items()),
    ]
    return SuiteResult(
        figures,
        {"starts_s": starts, "first_start_s": first_start, "breakdown": breakdown},
        notes,
    )


# -- growth --------------------------------------------------------------------------------


def seed_texts(options: BenchOptions) -> Any:
    from bot.benchmarks.seeding import SeedTexts
    from bot.datafiles import read_yaml
    from bot.nlu.rasa_yaml import read_nlu_dir

    data = read_nlu_dir(options.nlu_dir)
    faq = [e for e in data.examples if e.full_intent.startswith("faq/")]
    answers = [
        str(read_yaml(path)["answer"]) for path in sorted((options.data_dir / "faq").glob("*.yml"))
    ]
    return SeedTexts([e.text for e in faq], answers, [e.full_intent for e in faq])


def growth_figures(reports: dict[int, LoadReport], seeding_s: dict[int, float]) -> SuiteResult:
    sizes = sorted(reports)
    figures: list[Figure] = []
    for size in sizes:
        figures += [
            reported(
                f"turn latency median, {size:,} conversations stored",
                reports[size].latency(50),
                "ms",
            ),
            reported(
                f"turn latency p99, {size:,} conversations stored", reports[size].latency(99), "ms"
            ),
        ]
    smallest, largest = reports[sizes[0]], reports[sizes[-1]]
    ratio = f"{sizes[-1]:,}/{sizes[0]:,}"
    figures += [
        at_most(
            f"latency median ratio {ratio}",
            largest.latency(50) / smallest.latency(50),
            GROWTH_RATIO,
            "x",
        ),
        at_most(
            f"latency p99 ratio {ratio}",
            largest.latency(99) / smallest.latency(99),
            GROWTH_RATIO,
            "x",
        ),
        at_most(
            "failed turns (HTTP error or timeout)",
            sum(r.errors for r in reports.values()),
            0,
            "turns",
        ),
    ]
    return SuiteResult(
        figures,
        {
            "by_size": {str(size): reports[size].summary() for size in sizes},
            "seeding_s": {str(size): round(s, 2) for size, s in seeding_s.items()},
        },
    )


def bench_growth(options: BenchOptions, model: Path) -> SuiteResult:
    from bot.benchmarks.seeding import ConversationSeeder
    from bot.storage.crypto import Vault

    instance = BenchInstance("growth", model, options.database_url)
    try:
        settings = instance.settings()
        seeder = ConversationSeeder(
            instance.database_url,
            Vault(settings.encryption_keys),
            settings.pseudonym_secret,
            seed_texts(options),
        )
        pools = MessagePools.from_nlu_dir(options.nlu_dir)
        reports: dict[int, LoadReport] = {}
        seeding: dict[int, float] = {}
        with running_server(instance, options) as (server, _started):
            for size in sorted(options.growth_sizes):
                options.progress(f"seeding up to {size:,} conversations …")
                seeding[size] = asyncio.run(seeder.do_seed(size - seeder.seeded))
                reports[size] = _load(
                    server,
                    pools,
                    options,
                    f"growth-{size}",
                    users=options.growth_users,
                    seconds=options.growth_seconds,
                    warmup_seconds=min(options.warmup_seconds, 2.0),
                )
        return growth_figures(reports, seeding)
    finally:
        instance.close(keep=options.keep)


# -- the suites ------------------------------------------------------------------------------


def _startup_on(instance: BenchInstance, options: BenchOptions, first_start: float) -> SuiteResult:
    starts = measure_starts(instance, options)
    options.progress("startup breakdown …")
    return startup_figures(starts, first_start, startup_breakdown(instance))


def run_suite(name: str, options: BenchOptions) -> SuiteResult:
    """Run one suite (or ``all``) and return its figures."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}")
    check_database_url(options.database_url)
    model = trained_model(options.nlu_dir, options.model)
    result = (
        bench_growth(options, model) if name == "growth" else _on_one_instance(name, options, model)
    )
    if name == "all":
        result.extend("growth", bench_growth(options, model))
    result.details["setup"] = {
        "database": "postgresql" if options.database_url else "sqlite",
        "workers": options.workers,
        "users": options.users,
        "seconds": options.seconds,
    }
    return result


def _on_one_instance(name: str, options: BenchOptions, model: Path) -> SuiteResult:
    """turns, memory, startup, or those three of ``all``, on one fresh instance."""
    instance = BenchInstance(name, model, options.database_url)
    try:
        with running_server(instance, options) as (server, first_start):
            session = (
                None if name == "startup" else load_session(server, options, paced=name != "memory")
            )
        if session is None:
            return _startup_on(instance, options, first_start)
        if name == "turns":
            return turn_figures(session)
        if name == "memory":
            return memory_figures(session)
        result = SuiteResult()
        result.extend("turns", turn_figures(session))
        result.extend("memory", memory_figures(session))
        result.extend("startup", _startup_on(instance, options, first_start))
        return result
    finally:
        instance.close(keep=options.keep)


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"1000,10k,100000"`` -> ``(1000, 10000, 100000)``."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        factor = 1000 if part.endswith("k") else 1
        sizes.append(int(part.removesuffix("k")) * factor)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError("--growth-sizes needs at least two positive sizes")
    return tuple(sorted(set(sizes)))


def options_from_args(args: Any) -> BenchOptions:
    """The ``donghanh bench`` options given on the command line, defaults for the rest."""
    given = {
        "database_url": args.database_url,
        "workers": args.workers,
        "users": args.users,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "think_ms": args.think_ms,
        "growth_users": args.growth_users,
        "growth_seconds": args.growth_seconds,
        "growth_sizes": parse_sizes(args.growth_sizes) if args.growth_sizes else None,
        "startup_runs": args.startup_runs,
        "model": Path(args.model) if args.model else None,
        "keep": args.keep,
    }
    return BenchOptions(**{k: v for k, v in given.items() if v is not None})
