"""The outbox dispatcher: delivery, retries with backoff, giving up with a recorded error."""

from __future__ import annotations

from typing import Any

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
