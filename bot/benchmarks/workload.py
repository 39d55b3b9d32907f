"""Simulated people for the server benchmarks, and the load they put on a server.

Each simulated user keeps one keep-alive connection (``httpx.AsyncClient``) to the REST
channel and sends a realistic mix: FAQ questions taken from ``data/nlu`` (as written
and without diacritics), greetings, gibberish that falls back, and the screening
questionnaire, started with one of its trigger phrases and answered through the
buttons the bot offers (tapped, or typed the way people type them). A user waits for
its replies before the next message (closed loop), optionally after a think time.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.bench import percentile

REST_PATH = "/webhooks/rest/webhook"
SCREENING_PAYLOAD = "/screening"
MAX_SCREENING_STEPS = 40  # a questionnaire that never ends is stopped by the user
# how the next message is chosen when no questionnaire is running
EPISODE_WEIGHTS = {"faq": 0.55, "greeting": 0.17, "fallback": 0.18, "screening": 0.10}
# answers to a screening question: mostly "no", as most people screened are not victims
ANSWER_WEIGHTS = {"no": 0.55, "unsure": 0.15, "skip": 0.10, "yes": 0.20}
TYPED_ANSWERS = {
    "no": ("không", "khong", "ko"),
    "unsure": ("không chắc", "ko biet"),
    "skip": ("bỏ qua", "bo qua"),
    "yes": ("có", "co", "đúng rồi"),
}
TYPED_SHARE = 0.3  # the share of answers typed instead of tapped
SCREENING_STARTS = (
    "kiểm tra giúp tôi",
    "kiem tra giup toi voi",
    "tôi muốn làm bài kiểm tra xem mình có gặp nguy cơ không",
    "toi muon lam bai sang loc",
    "giúp tôi đánh giá tình trạng của mình",
)
STOP_WORD = "dừng"


@dataclass(frozen=True)
class MessagePools:
    """What simulated people say, from the training data."""

    faq: tuple[str, ...]
    greetings: tuple[str, ...]

    @classmethod
    def from_nlu_dir(cls, nlu_dir: Path) -> MessagePools:
        from bot.nlu.rasa_yaml import read_nlu_dir

        data = read_nlu_dir(nlu_dir)
        faq = tuple(e.text for e in data.examples if e.full_intent.startswith("faq/"))
        greetings = tuple(e.text for e in data.examples if e.intent == "greet")
        if not faq or not greetings:
            raise ValueError(f"{nlu_dir} has no FAQ or greeting examples")
        return cls(faq, greetings)


def gibberish(rng: random.Random) -> str:
    """A few random 'words' no intent matches: the fallback path."""
    words = (
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))
        for _ in range(rng.randint(2, 4))
    )
    return " ".join(words)


def without_diacritics(text: str) -> str:
    from bot.nlu.normalize import strip_diacritics

    return strip_diacritics(text)


class SimulatedUser:
    """One person's next message, given the bot's last replies."""

    def __init__(self, pools: MessagePools, rng: random.Random) -> None:
        self.pools = pools
        self.rng = rng
        self.screening_buttons: list[dict[str, str]] = []
        self.screening_steps = 0

    def next_message(self) -> tuple[str, str]:
        """``(kind, text)`` of the next message."""
        if self.screening_buttons:
            return "screening", self._screening_reply()
        self.screening_steps = 0
        kind = self.rng.choices(list(EPISODE_WEIGHTS), weights=list(EPISODE_WEIGHTS.values()))[0]
        if kind == "faq":
            text = self.rng.choice(self.pools.faq)
            if self.rng.random() < 0.5:
                return "faq_no_diacritics", without_diacritics(text)
            return "faq", text
        if kind == "greeting":
            return "greeting", self.rng.choice(self.pools.greetings)
        if kind == "fallback":
            return "fallback", gibberish(self.rng)
        return "screening", self.rng.choice(SCREENING_STARTS)

    def observe(self, replies: list[dict[str, Any]]) -> None:
        self.screening_buttons = [
            button
            for reply in replies
            for button in reply.get("buttons") or []
            if str(button.get("payload", "")).startswith(SCREENING_PAYLOAD)
        ]

    def _screening_reply(self) -> str:
        self.screening_steps += 1
        if self.screening_steps > MAX_SCREENING_STEPS:
            self.screening_buttons = []
            return STOP_WORD
        choices = {self._choice_of(b): b for b in self.screening_buttons}
        if ("step", "start") in choices:  # the consent question: take the questionnaire
            return choices["step", "start"]["payload"]
        answers = {value: b for (key, value), b in choices.items() if key == "answer"}
        if not answers:  # keep the answers or not, and other choices: any of them
            return self.rng.choice(self.screening_buttons)["payload"]
        # the first question asks about danger now: a "yes" there ends in a handoff
        weights = {
            k: (0.0 if k == "yes" and self.screening_steps <= 2 else w)
            for k, w in ANSWER_WEIGHTS.items()
            if k in answers
        }
        answer = self.rng.choices(list(weights), weights=list(weights.values()))[0]
        if self.rng.random() < TYPED_SHARE:
            return self.rng.choice(TYPED_ANSWERS[answer])
        return answers[answer]["payload"]

    @staticmethod
    def _choice_of(button: dict[str, str]) -> tuple[str, str]:
        """``("answer", "no")``, ``("step", "start")`` ... of a ``/screening{...}`` payload."""
        try:
            data = json.loads(button["payload"][len(SCREENING_PAYLOAD) :] or "{}")
        except json.JSONDecodeError:
            return "", ""
        if not isinstance(data, dict) or not data:
            return "", ""
        key, value = next(iter(data.items()))
        return str(key), str(value)


@dataclass(frozen=True)
class Sample:
    """One turn as the client saw it."""

    started: float  # time.perf_counter() when the request was sent
    latency_ms: float
    kind: str
    ok: bool
    replies: int
    failure: str = ""  # "HTTP 500", "ReadTimeout", ... when not ok


@dataclass
class LoadReport:
    """Turns measured in one window of a load run: the turns sent in the window (their
    latency), the answered turns that finished in it (throughput), and every failed
    turn of the run, warm-up included."""

    users: int
    seconds: float
    think_ms: float
    samples: list[Sample] = field(default_factory=list)
    completed: int = 0
    errors: int = 0
    client_cpu_seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    answered_in_run: int = 0  # answered turns of the whole run, warm-up included
    server_cpu_seconds: float | None = None  # the server's CPU time over the whole run

    @property
    def server_cpu_ms_per_turn(self) -> float:
        if self.server_cpu_seconds is None or not self.answered_in_run:
            return float("nan")
        return self.server_cpu_seconds * 1000 / self.answered_in_run

    @property
    def latencies_ms(self) -> list[float]:
        return [s.latency_ms for s in self.samples if s.ok]

    @property
    def throughput(self) -> float:
        """Answered turns per second of the window."""
        return self.completed / self.seconds

    @property
    def unanswered(self) -> int:
        return sum(1 for s in self.samples if s.ok and s.replies == 0)

    def latency(self, q: float) -> float:
        values = self.latencies_ms
        if not values:
            return float("nan")
        return statistics.median(values) if q == 50 else percentile(values, q)

    def summary(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "seconds": self.seconds,
            "think_ms": self.think_ms,
            "turns": len(self.samples),
            "errors": self.errors,
            "failures": self.failures,
            "unanswered": self.unanswered,
            "throughput_per_s": round(self.throughput, 1),
            "latency_ms": {f"p{q}": round(self.latency(q), 2) for q in (50, 90, 99)},
            "mix": dict(Counter(s.kind for s in self.samples).most_common()),
            "client_cpu_cores": round(self.client_cpu_seconds / self.seconds, 2),
            "server_cpu_ms_per_turn": round(self.server_cpu_ms_per_turn, 2),
        }


def new_client(base_url: str) -> httpx.AsyncClient:
    """One keep-alive connection per simulated user."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def send_turn(client: httpx.AsyncClient, sender: str, text: str) -> list[dict[str, Any]]:
    response = await client.post(REST_PATH, json={"sender": sender, "message": text})
    response.raise_for_status()
    replies = response.json()
    if not isinstance(replies, list):
        raise ValueError("the REST channel did not answer a list")
    return replies


async def _user_loop(
    client: httpx.AsyncClient,
    sender: str,
    user: SimulatedUser,
    stop_at: float,
    think_ms: float,
    record: Callable[[Sample], None],
) -> None:
    while time.perf_counter() < stop_at:
        kind, text = user.next_message()
        started = time.perf_counter()
        replies: list[dict[str, Any]] = []
        failure = ""
        try:
            replies = await send_turn(client, sender, text)
        except httpx.HTTPStatusError as exc:
            failure = f"HTTP {exc.response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            failure = type(exc).__name__
        elapsed_ms = (time.perf_counter() - started) * 1000
        record(Sample(started, elapsed_ms, kind, not failure, len(replies), failure))
        user.observe(replies)
        if think_ms > 0:
            pause = min(user.rng.expovariate(1000 / think_ms), 5 * think_ms / 1000)
            await asyncio.sleep(min(pause, max(0.0, stop_at - time.perf_counter())))


async def run_load(
    base_url: str,
    pools: MessagePools,
    *,
    users: int,
    seconds: float,
    warmup_seconds: float = 0.0,
    think_ms: float = 0.0,
    label: str = "load",
    seed: int = 1,
) -> LoadReport:
    """``users`` simulated people for ``warmup_seconds`` then ``seconds``; the report
    holds the turns sent after the warm-up (answered turns count for throughput when
    they finished inside the window)."""
    clients = [new_client(base_url) for _ in range(users)]
    samples: list[Sample] = []
    begin = time.perf_counter()
    measure_from = begin + warmup_seconds
    stop_at = measure_from + seconds
    cpu_at_start: list[float] = []

    async def mark_window() -> None:
        await asyncio.sleep(warmup_seconds)
        cpu_at_start.append(time.process_time())

    try:
        marker = asyncio.create_task(mark_window())
        await asyncio.gather(
            *(
                _user_loop(
                    client,
                    f"bench-{label}-{seed}-{index}",
                    SimulatedUser(pools, random.Random(seed * 100_003 + index)),  # noqa: S311
                    stop_at,
                    think_ms,
                    samples.append,
                )
                for index, client in enumerate(clients)
            )
        )
        await marker
        cpu_used = time.process_time() - cpu_at_start[0]
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    in_window = [s for s in samples if measure_from <= s.started < stop_at]
    completed = sum(
        1 for s in samples if s.ok and measure_from <= s.started + s.latency_ms / 1000 <= stop_at
    )
    errors = sum(1 for s in samples if not s.ok)
    answered = sum(1 for s in samples if s.ok)
    failures = dict(Counter(s.failure for s in samples if not s.ok))
    return LoadReport(
        users,
        seconds,
        think_ms,
        in_window,
        completed,
        errors,
        cpu_used,
        failures,
        answered_in_run=answered,
    )


def run_load_sync(base_url: str, pools: MessagePools, **options: Any) -> LoadReport:
    """``run_load`` on its own event loop (uvloop when installed, as the server uses)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_load(base_url, pools, **options))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_load(base_url, pools, **options))
