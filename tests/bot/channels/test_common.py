"""What the messaging-platform channels share (bot/channels/common.py).

RateLimiter's pace (with a fake clock and recorded sleeps, so nothing here depends on
timing); same_secret and hmac_sha256_hex; error_for_status's mapping of platform answers
to DeliveryError; numbered_text and media_text; PlatformSender resuming a reply at the
part that failed; InboundRelay storing every message and answering only new ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bot.channels import common
from bot.channels.common import (
    CHOOSE_BY_NUMBER,
    InboundRelay,
    PlatformSender,
    RateLimiter,
    error_for_status,
    hmac_sha256_hex,
    media_text,
    numbered_text,
    same_secret,
)
from bot.channels.text import split_reply
from bot.domain import Button, Delivery, DeliveryError, InboundMessage, Reply
from bot.storage.repository import StoredInbound

# -- RateLimiter ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class FakeAsyncio:
    """``asyncio`` as bot.channels.common sees it, with a sleep that only moves the clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        # delays here are binary fractions, so the fake clock adds them exactly
        assert len(self.sleeps) < 1000, "the limiter keeps asking to sleep"
        self.sleeps.append(delay)
        self.clock.now += delay
        await asyncio.sleep(0)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeAsyncio:
    clock = FakeClock()
    fake = FakeAsyncio(clock)
    monkeypatch.setattr(common, "time", clock)
    monkeypatch.setattr(common, "asyncio", fake)
    return fake


async def test_a_burst_passes_at_once_then_sends_are_paced(fake_time: FakeAsyncio) -> None:
    limiter = RateLimiter(per_second=4, burst=3)
    for _ in range(3):
        await limiter.wait()
    assert fake_time.sleeps == []
    await limiter.wait()
    assert fake_time.sleeps == [pytest.approx(0.25)]
    await limiter.wait()
    assert fake_time.sleeps == [pytest.approx(0.25), pytest.approx(0.25)]


async def test_an_idle_limiter_refills_up_to_the_burst_only(fake_time: FakeAsyncio) -> None:
    limiter = RateLimiter(per_second=4, burst=3)
    for _ in range(3):
        await limiter.wait()
    fake_time.clock.now += 3600  # an hour idle earns far more than the burst
    for _ in range(3):
        await limiter.wait()
    assert fake_time.sleeps == []
    await limiter.wait()
    assert fake_time.sleeps == [pytest.approx(0.25)]


async def test_concurrent_senders_share_the_pace(fake_time: FakeAsyncio) -> None:
    limiter = RateLimiter(per_second=4, burst=2)  # 1/4 s: exact in binary, like the clock
    start = fake_time.clock.now
    await asyncio.gather(*(limiter.wait() for _ in range(7)))
    # two at once, then five more at four a second
    assert fake_time.clock.now - start == pytest.approx(1.25)
    assert len(fake_time.sleeps) == 5


async def test_the_limiter_really_waits() -> None:
    limiter = RateLimiter(per_second=20, burst=1)
    started = time.monotonic()
    for _ in range(3):
        await limiter.wait()
    elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < 5.0  # two waits of about 1/20 s each


# -- secrets and signatures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "given", "same"),
    [
        ("", "", False),
        ("", "anything", False),
        ("tg-secret-token", None, False),
        ("tg-secret-token", "", False),
        ("tg-secret-token", "tg-secret-token", True),
        ("tg-secret-token", "tg-secret-token-longer", False),
        ("tg-secret-token", "tg-secret-tokem", False),
        ("tg-secret-token", "TG-SECRET-TOKEN", False),
        ("bí mật", "bí mật", True),
    ],
)
def test_same_secret(expected: str, given: str | None, same: bool) -> None:
    assert same_secret(expected, given) is same


def test_hmac_sha256_hex_matches_the_standard() -> None:
    body = b'{"object":"page","entry":[{"id":"1","messaging":[]}]}'
    assert hmac_sha256_hex("fb-app-secret", body) == (
        hmac.new(b"fb-app-secret", body, hashlib.sha256).hexdigest()
    )
    # RFC 4231, test case 2
    assert hmac_sha256_hex("Jefe", b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert hmac_sha256_hex("khóa", "tôi".encode()) == (
        hmac.new("khóa".encode(), "tôi".encode(), hashlib.sha256).hexdigest()
    )


# -- platform answers ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204])
def test_a_success_is_no_error(status: int) -> None:
    assert error_for_status("telegram", status, httpx.Headers()) is None


def test_a_429_carries_the_retry_after_seconds() -> None:
    error = error_for_status("zalo", 429, httpx.Headers({"Retry-After": "5"}), "slow down")
    assert error is not None
    assert error.retryable and not error.deferred
    assert error.retry_after == 5.0
    assert "zalo" in error.reason and "429" in error.reason and "slow down" in error.reason


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # an HTTP date is not read
        ("soon", None),
        ("-3", 0.0),
        ("2.5", 2.5),
    ],
)
def test_a_429_with_other_retry_after_values(value: str, seconds: float | None) -> None:
    error = error_for_status("facebook", 429, httpx.Headers({"Retry-After": value}))
    assert error is not None and error.retryable
    assert error.retry_after == seconds


def test_a_429_without_retry_after_is_retried_with_the_backoff() -> None:
    error = error_for_status("facebook", 429, httpx.Headers())
    assert error is not None and error.retryable and error.retry_after is None


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_server_errors_and_timeouts_are_retried(status: int) -> None:
    error = error_for_status("telegram", status, httpx.Headers({"Retry-After": "7"}))
    assert error is not None
    assert error.retryable
    assert str(status) in error.reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_refusals_are_not_retried(status: int) -> None:
    error = error_for_status("telegram", status, httpx.Headers(), "Forbidden: bot was blocked")
    assert error is not None
    assert not error.retryable
    assert error.reason == f"telegram answered {status} (Forbidden: bot was blocked)"


# -- text ------------------------------------------------------------------------------------


def test_numbered_text_lists_the_buttons_under_the_text() -> None:
    buttons = [Button("Tìm nơi hỗ trợ", "/find_service"), Button("Gặp tư vấn viên", "/x")]
    assert numbered_text("Bạn cần gì?", buttons) == (
        f"Bạn cần gì?\n\n1. Tìm nơi hỗ trợ\n2. Gặp tư vấn viên\n{CHOOSE_BY_NUMBER}"
    )


@pytest.mark.parametrize(
    ("kind", "safe"),
    [
        ("sticker", "sticker"),
        ("voice_note", "voice_note"),
        ("../x", "x"),
        ("", "other"),
        ("../", "other"),
        ('"}, "x": {"', "x"),
        ("a" * 50, "a" * 32),
        ("gif\n", "gif"),
    ],
)
def test_media_text_names_a_safe_kind(kind: str, safe: str) -> None:
    text = media_text(kind)
    assert text == f'/user_sent_media{{"kind": "{safe}"}}'
    assert json.loads(text.removeprefix("/user_sent_media")) == {"kind": safe}


# -- PlatformSender --------------------------------------------------------------------------

LONG_REPLY = Reply(
    "Phần một của câu trả lời.\n\nPhần hai của câu trả lời.\n\nPhần ba của câu trả lời.",
    (Button("Gặp tư vấn viên", "/request_counsellor"),),
)
LIMIT = 30


class FlakySender(PlatformSender):
    """Records each part it sends; fails the parts listed in ``fail_texts`` once each."""

    channel = "fake"
    limit = LIMIT

    def __init__(self) -> None:
        super().__init__(RateLimiter(per_second=1000, burst=1000))
        self.sent: list[tuple[int, Reply]] = []
        self.fail_texts: list[str] = []

    async def send_part(self, delivery: Delivery, part: Reply) -> None:
        if part.text in self.fail_texts:
            self.fail_texts.remove(part.text)
            raise DeliveryError("fake answered 503")
        self.sent.append((delivery.outbox_id, part))


def delivery(outbox_id: int, reply: Reply = LONG_REPLY) -> Delivery:
    return Delivery(
        outbox_id=outbox_id,
        channel="fake",
        recipient_id="user-1",
        pseudonym="p-1",
        reply=reply,
        attempts=0,
    )


def test_the_long_reply_splits_into_three_parts() -> None:
    parts = split_reply(LONG_REPLY, LIMIT)
    assert [p.text for p in parts] == [
        "Phần một của câu trả lời.",
        "Phần hai của câu trả lời.",
        "Phần ba của câu trả lời.",
    ]
    assert parts[-1].buttons == LONG_REPLY.buttons


async def test_a_retry_resumes_at_the_part_that_failed() -> None:
    parts = split_reply(LONG_REPLY, LIMIT)
    sender = FlakySender()
    sender.fail_texts = [parts[1].text]
    with pytest.raises(DeliveryError):
        await sender.send(delivery(7))
    assert sender.sent == [(7, parts[0])]
    await sender.send(delivery(7))  # the outbox retries the same item
    assert sender.sent == [(7, parts[0]), (7, parts[1]), (7, parts[2])]


async def test_a_complete_send_forgets_the_progress() -> None:
    parts = split_reply(LONG_REPLY, LIMIT)
    sender = FlakySender()
    sender.fail_texts = [parts[2].text]
    with pytest.raises(DeliveryError):
        await sender.send(delivery(8))
    await sender.send(delivery(8))
    assert [p for _, p in sender.sent] == parts
    sender.sent.clear()
    await sender.send(delivery(8))  # sent again in full (a new delivery of the same id)
    assert [p for _, p in sender.sent] == parts


async def test_a_failure_on_the_first_part_starts_again_from_it() -> None:
    parts = split_reply(LONG_REPLY, LIMIT)
    sender = FlakySender()
    sender.fail_texts = [parts[0].text]
    with pytest.raises(DeliveryError):
        await sender.send(delivery(9))
    assert sender.sent == []
    await sender.send(delivery(9))
    assert [p for _, p in sender.sent] == parts


async def test_progress_is_kept_per_outbox_item() -> None:
    parts = split_reply(LONG_REPLY, LIMIT)
    sender = FlakySender()
    sender.fail_texts = [parts[1].text]
    with pytest.raises(DeliveryError):
        await sender.send(delivery(10))
    await sender.send(delivery(11))  # another item is sent from its start
    assert sender.sent == [(10, parts[0]), *((11, p) for p in parts)]


# -- InboundRelay ----------------------------------------------------------------------------


class FakeEngine:
    """The two TurnEngine coroutines InboundRelay uses: a redelivery is not stored."""

    def __init__(self, fail_answers: bool = False) -> None:
        self.accepted: list[str] = []
        self.answered: list[int] = []
        self.seen: set[str | None] = set()
        self.fail_answers = fail_answers

    async def accept(self, message: InboundMessage) -> StoredInbound | None:
        self.accepted.append(message.text)
        if message.platform_message_id in self.seen:
            return None
        self.seen.add(message.platform_message_id)
        return StoredInbound(len(self.seen), 1, 1, "p-1")

    async def answer(self, stored: StoredInbound) -> None:
        await asyncio.sleep(0)
        if self.fail_answers:
            raise RuntimeError("tôi bị giữ hộ chiếu")  # text must not reach the log
        self.answered.append(stored.message_id)


def inbound(text: str, message_id: str) -> InboundMessage:
    return InboundMessage(channel="fake", sender_id="u", text=text, platform_message_id=message_id)


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_the_relay_stores_each_message_and_answers_only_new_ones() -> None:
    relay = InboundRelay("fake")
    engine: Any = FakeEngine()  # stands in for the TurnEngine
    taken = await relay.take(engine, [inbound("a", "m1"), inbound("b", "m2"), inbound("a", "m1")])
    assert taken == 2
    assert engine.accepted == ["a", "b", "a"]
    await eventually(lambda: len(engine.answered) == 2)
    assert sorted(engine.answered) == [1, 2]
    again = await relay.take(engine, [inbound("a", "m1")])
    assert again == 0
    await asyncio.sleep(0.05)
    assert sorted(engine.answered) == [1, 2]
    await eventually(lambda: not relay._running)


async def test_a_failed_answer_is_logged_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay = InboundRelay("fake")
    engine: Any = FakeEngine(fail_answers=True)
    with caplog.at_level(logging.ERROR, logger="donghanh.channels"):
        assert await relay.take(engine, [inbound("tôi bị giữ hộ chiếu", "m9")]) == 1
        await eventually(lambda: not relay._running)
    failures = [r for r in caplog.records if getattr(r, "event", None) == "turn_error"]
    assert len(failures) == 1
    assert getattr(failures[0], "error_type", None) == "RuntimeError"
    assert "hộ chiếu" not in caplog.text
