"""The outbox dispatcher: delivery, retries with backoff, giving up with a recorded error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from bot.domain import Delivery, DeliveryError, InboundMessage
from bot.engine.outbox import OutboxDispatcher


class RecordingSender:
    def __init__(self, failures: list[Exception | None]) -> None:
        self.failures = failures
        self.delivered: list[str] = []
        self.calls = 0

    async def send(self, delivery: Delivery) -> None:
        failure = self.failures[self.calls] if self.calls < len(self.failures) else None
        self.calls += 1
        if failure is not None:
            raise failure
        self.delivered.append(delivery.reply.text)


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def queue_greeting(services: Any) -> None:
    await services.turns.handle(InboundMessage(channel="push", sender_id="p1", text="xin chào"))


async def outbox_rows(services: Any) -> list[tuple[Any, ...]]:
    async with services.store.sessions() as session:
        return [
            tuple(r)
            for r in await session.execute(text("SELECT status, attempts, last_error FROM outbox"))
        ]


def dispatcher(services: Any, sender: RecordingSender, attempts: int = 3) -> OutboxDispatcher:
    return OutboxDispatcher(
        services.store, {"push": sender}, max_attempts=attempts, retry_base_seconds=0
    )


async def test_delivers_once(services: Any) -> None:
    sender = RecordingSender([])
    await queue_greeting(services)
    assert await dispatcher(services, sender).drain() == 1
    assert await dispatcher(services, sender).drain() == 0
    assert len(sender.delivered) == 1 and sender.delivered[0].startswith("Xin chào")
    assert await outbox_rows(services) == [("sent", 1, None)]


async def test_a_failure_then_success_delivers_exactly_once(services: Any) -> None:
    sender = RecordingSender([DeliveryError("HTTP 500")])
    await queue_greeting(services)
    outbox = dispatcher(services, sender)
    assert await outbox.drain() == 0
    assert await outbox_rows(services) == [("pending", 1, "HTTP 500")]
    assert await outbox.drain() == 1
    assert len(sender.delivered) == 1
    assert await outbox_rows(services) == [("sent", 2, "HTTP 500")]


async def test_gives_up_after_the_bound_and_records_why(services: Any) -> None:
    sender = RecordingSender([DeliveryError("HTTP 503")] * 10)
    await queue_greeting(services)
    outbox = dispatcher(services, sender, attempts=3)
    for _ in range(5):
        await outbox.drain()
    assert sender.calls == 3
    assert await outbox_rows(services) == [("failed", 3, "HTTP 503")]


async def test_a_permanent_error_is_not_retried(services: Any) -> None:
    sender = RecordingSender([DeliveryError("blocked by user", retryable=False)])
    await queue_greeting(services)
    await dispatcher(services, sender).drain()
    assert await outbox_rows(services) == [("failed", 1, "blocked by user")]


async def test_an_unexpected_exception_is_retried_and_named(services: Any) -> None:
    sender = RecordingSender([RuntimeError("boom")])
    await queue_greeting(services)
    outbox = dispatcher(services, sender)
    await outbox.drain()
    assert await outbox_rows(services) == [("pending", 1, "RuntimeError")]
    await outbox.drain()
    assert sender.delivered


async def test_backoff_delays_the_next_attempt(services: Any) -> None:
    sender = RecordingSender([DeliveryError("HTTP 429")])
    await queue_greeting(services)
    slow = OutboxDispatcher(services.store, {"push": sender}, max_attempts=5, retry_base_seconds=60)
    await slow.drain()
    assert await slow.drain() == 0  # not due for a minute
    assert sender.calls == 1


async def test_an_unreachable_person_is_waited_for_without_spending_attempts(services: Any) -> None:
    sender = RecordingSender([DeliveryError("not connected", deferred=True)] * 3)
    await queue_greeting(services)
    outbox = dispatcher(services, sender, attempts=2)
    await outbox.drain()
    assert await outbox_rows(services) == [("pending", 0, None)]
    assert await outbox.drain() == 0  # not due until the person is back
    await services.store.do_make_due_now("push", "p1")
    await outbox.drain()
    await services.store.do_make_due_now("push", "p1")
    await outbox.drain()
    await services.store.do_make_due_now("push", "p1")
    assert await outbox.drain() == 1
    assert await outbox_rows(services) == [("sent", 1, None)]


class HoldingSender:
    """Holds every send to the people in ``held`` until released: a platform that is
    slow for them."""

    def __init__(self, held: set[str]) -> None:
        self.held = held
        self.release = asyncio.Event()
        self.delivered: list[str] = []
        self.started: list[str] = []

    async def send(self, delivery: Delivery) -> None:
        self.started.append(delivery.recipient_id)
        if delivery.recipient_id in self.held:
            await self.release.wait()
        self.delivered.append(delivery.recipient_id)


async def say(services: Any, sender_id: str, text: str = "xin chào") -> None:
    await services.turns.handle(InboundMessage(channel="push", sender_id=sender_id, text=text))


async def test_a_held_send_does_not_hold_up_other_people(services: Any) -> None:
    sender = HoldingSender(held={"slow"})
    outbox = OutboxDispatcher(
        services.store, {"push": sender}, max_attempts=3, retry_base_seconds=0
    )
    await say(services, "slow")
    assert await outbox.dispatch_due() == 1  # started, not awaited
    await eventually(lambda: sender.started == ["slow"])
    await say(services, "other")
    await say(services, "slow", "cảm ơn")  # a later reply to the held person waits
    assert await outbox.dispatch_due() == 1
    await eventually(lambda: sender.delivered == ["other"])
    assert sender.started.count("slow") == 1, "a send in flight is never claimed twice"
    first_chain = len(sender.started)  # the held person's first replies, then "other"'s
    sender.release.set()
    await outbox.wait_for_sends()  # sent and settled
    assert len(sender.delivered) == first_chain
    assert await outbox.dispatch_due() == 1  # now the held person's later reply
    await outbox.wait_for_sends()
    assert len(sender.delivered) == len(await outbox_rows(services))
    assert sender.delivered[0] == "other" and set(sender.delivered[1:]) == {"slow"}
    await outbox.close()
    assert {status for status, _, _ in await outbox_rows(services)} == {"sent"}


async def test_closing_waits_briefly_then_stops_a_held_send(
    services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.engine.outbox.CLOSE_GRACE_SECONDS", 0.1)
    sender = HoldingSender(held={"slow"})
    outbox = OutboxDispatcher(
        services.store, {"push": sender}, max_attempts=3, retry_base_seconds=0
    )
    await say(services, "slow")
    await outbox.dispatch_due()
    await eventually(lambda: sender.started == ["slow"])
    await outbox.close()
    assert sender.delivered == []
    # the claim stays unsettled: sent again once its lease runs out (as after a crash)
    assert [status for status, _, _ in await outbox_rows(services)] == ["sending"]
