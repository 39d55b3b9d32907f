"""Delivers replies from the outbox through each push channel's sender, with retries.

Failed sends are retried with exponential backoff; after ``max_attempts`` the item is
marked failed with its last error (visible to admins), never dropped silently.

The running dispatcher never waits on a send before claiming more: each person's
replies go out in a task of their own, so a slow or stalled platform call holds up that
person only, not everybody else's replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol, runtime_checkable

from bot.domain import Delivery, DeliveryError
from bot.storage.models import utcnow
from bot.storage.repository import Store

logger = logging.getLogger("donghanh.outbox")
DEFER_FOR = timedelta(hours=1)  # checked again then, or at once when the person returns
MAX_CHAINS = 200  # people whose replies this worker sends at once; more wait their turn
CLOSE_GRACE_SECONDS = 5.0  # sends under way at shutdown may finish within this


class Sender(Protocol):
    """A channel's outbound client. Raises ``DeliveryError`` when it cannot deliver."""

    async def send(self, delivery: Delivery) -> None: ...


@runtime_checkable
class LocalSender(Sender, Protocol):
    """A sender that reaches only the people connected to this worker (the web chat's
    sockets): this worker claims only their replies; the worker that holds a person's
    socket sends theirs."""

    def connected_recipients(self) -> set[str]: ...


class OutboxDispatcher:
    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        *,
        max_attempts: int,
        retry_base_seconds: float,
        idle_seconds: float = 5.0,
        lease_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.senders = dict(senders)
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.idle_seconds = idle_seconds
        self.lease_seconds = lease_seconds
        self._wake = asyncio.Event()
        self._chains: set[asyncio.Task[int]] = set()  # people's replies being sent
        self._in_flight: set[int] = set()  # their outbox ids, never claimed twice here

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.dispatch_due()
            except Exception:
                logger.exception("outbox drain failed", extra={"event": "outbox_error"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.idle_seconds)
            self._wake.clear()

    async def drain(self) -> int:
        """Send every due item once and wait for the sends; returns how many were
        delivered. People are served concurrently; one person's replies go one after
        another, in order."""
        chains = await self._claim_by_person()
        results = await asyncio.gather(*(self._deliver_in_order(d) for d in chains))
        return sum(results)

    async def dispatch_due(self) -> int:
        """Claim the due items and start each person's sends as a task of its own,
        without waiting for them (a finished chain wakes the dispatcher); returns how
        many chains started."""
        if len(self._chains) >= MAX_CHAINS:
            return 0
        chains = await self._claim_by_person()
        for deliveries in chains:
            self._start_chain(deliveries)
        return len(chains)

    async def wait_for_sends(self, within: float | None = None) -> None:
        """Wait until the sends under way have settled (or ``within`` seconds passed)."""
        if self._chains:
            await asyncio.wait(set(self._chains), timeout=within)

    async def close(self) -> None:
        """Let sends under way finish for a moment, then stop them (an unsettled claim
        is sent again once its lease runs out, as after a crash)."""
        await self.wait_for_sends(CLOSE_GRACE_SECONDS)
        for task in list(self._chains):
            task.cancel()
        for task in list(self._chains):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _claim_by_person(self) -> list[list[Delivery]]:
        deliveries = await self.store.do_claim_due_deliveries(
            list(self.senders),
            connected_only=self._connected_recipients(),
            lease_seconds=self.lease_seconds,
            exclude_ids=self._in_flight,
        )
        by_person: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in deliveries:
            by_person.setdefault((delivery.channel, delivery.pseudonym), []).append(delivery)
        return list(by_person.values())

    def _start_chain(self, deliveries: list[Delivery]) -> None:
        ids = {delivery.outbox_id for delivery in deliveries}
        self._in_flight |= ids
        task = asyncio.create_task(self._deliver_in_order(deliveries))
        self._chains.add(task)
        task.add_done_callback(lambda done: self._chain_finished(done, ids))

    def _chain_finished(self, task: asyncio.Task[int], ids: set[int]) -> None:
        self._chains.discard(task)
        self._in_flight -= ids
        if not task.cancelled() and task.exception() is not None:
            # the claims run out and the replies are sent again; no text in the log
            logger.error(
                "delivery chain failed",
                extra={"event": "outbox_error", "error_type": type(task.exception()).__name__},
            )
        self.wake()  # the person's next replies, or people waiting for a free chain

    def _connected_recipients(self) -> dict[str, set[str]]:
        return {
            channel: sender.connected_recipients()
            for channel, sender in self.senders.items()
            if isinstance(sender, LocalSender)
        }

    async def _deliver_in_order(self, deliveries: list[Delivery]) -> int:
        """Stop at the first failure: the replies after it wait for it (same due time,
        and claims come in outbox order), so the person never reads them out of order."""
        for index, delivery in enumerate(deliveries):
            if not await self._deliver(delivery):
                retry_at = await self.store.get_next_attempt_at(delivery.outbox_id)
                for later in deliveries[index + 1 :]:
                    await self.store.do_defer(later.outbox_id, retry_at or utcnow())
                return index
        return len(deliveries)

    async def _deliver(self, delivery: Delivery) -> bool:
        sender = self.senders[delivery.channel]
        try:
            await sender.send(delivery)
        except DeliveryError as exc:
            if exc.deferred:
                await self.store.do_defer(delivery.outbox_id, utcnow() + DEFER_FOR)
            else:
                await self._after_failure(
                    delivery, exc.reason, retryable=exc.retryable, wait_at_least=exc.retry_after
                )
            return False
        except Exception as exc:
            await self._after_failure(delivery, f"{type(exc).__name__}", retryable=True)
            return False
        await self.store.do_mark_sent(delivery.outbox_id)
        return True

    async def _after_failure(
        self,
        delivery: Delivery,
        reason: str,
        *,
        retryable: bool,
        wait_at_least: float | None = None,
    ) -> None:
        attempt = delivery.attempts + 1
        if not retryable or attempt >= self.max_attempts:
            await self.store.do_mark_failed(delivery.outbox_id, reason)
            logger.warning(
                "delivery failed",
                extra={
                    "event": "delivery_failed",
                    "channel": delivery.channel,
                    "attempts": attempt,
                },
            )
            return
        delay = max(self.retry_base_seconds * (2 ** (attempt - 1)), wait_at_least or 0.0)
        await self.store.do_mark_retry(
            delivery.outbox_id, reason, utcnow() + timedelta(seconds=delay)
        )
        if delay < self.idle_seconds:  # otherwise the idle tick comes first anyway
            asyncio.get_running_loop().call_later(delay + 0.02, self.wake)
