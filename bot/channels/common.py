"""What the messaging-platform channels (Telegram, Messenger, Zalo) share.

- checking a webhook's signature on the raw body, in constant time;
- storing what a webhook carried, then answering it in the background, so the
  platform gets its 200 at once and a stored message is always answered;
- sending: long replies split within the platform's limit, parts resumed (not
  repeated) after a failure, a steady pace under the platform's rate limit, and the
  platform's answer turned into a ``DeliveryError`` the outbox understands;
- buttons as a numbered list where the platform cannot show them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sanic.response import HTTPResponse, json

from bot.bodies import has_lone_surrogate
from bot.channels.text import split_reply
from bot.domain import Button, Delivery, DeliveryError, InboundMessage, Reply
from bot.engine.turns import TurnEngine
from bot.errors import TooManyRequests

logger = logging.getLogger("donghanh.channels")
MEDIA_PAYLOAD = '/user_sent_media{{"kind": "{kind}"}}'
CHOOSE_BY_NUMBER = "Bạn trả lời bằng số (1, 2…) để chọn."
MAX_RESUMABLE = 10_000  # outbox items remembered mid-way through their parts


def media_text(kind: str) -> str:
    """What a sticker, photo or voice note becomes: the engine answers it politely."""
    safe = "".join(ch for ch in kind if ch.isalnum() or ch == "_")[:32] or "other"
    return MEDIA_PAYLOAD.format(kind=safe)


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def same_secret(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an empty or missing value never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def refuse(status: int, channel: str, reason: str) -> HTTPResponse:
    """A webhook refused before parsing: logged without the body."""
    logger.warning(
        "webhook refused",
        extra={"event": "webhook_refused", "channel": channel, "reason": reason, "status": status},
    )
    return json({"error": reason}, status=status)


class InboundRelay:
    """Stores each message a webhook carried, then answers it in the background."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._running: set[asyncio.Task[Any]] = set()

    async def take(self, engine: TurnEngine, messages: Iterable[InboundMessage]) -> int:
        """Store every message (a redelivery is skipped), then answer each in the
        background; returns how many were new."""
        stored_count = 0
        for message in messages:
            if has_lone_surrogate(message.sender_id, message.platform_message_id or ""):
                continue  # not an id a platform can answer; text is mended in the engine
            try:
                stored = await engine.accept(message)
            except TooManyRequests:  # a flood: not stored, and not to be sent again
                continue
            if stored is None:
                continue
            stored_count += 1
            self.run_in_background(engine.answer(stored))
        return stored_count

    def run_in_background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # the recovery loop answers the message later; the error has no message text
            logger.error(
                "background turn failed",
                extra={
                    "event": "turn_error",
                    "channel": self.channel,
                    "error_type": type(task.exception()).__name__,
                },
            )


class RateLimiter:
    """A token bucket: at most ``per_second`` sends on average, bursts of ``burst``."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                earned = (now - self._updated) * self.per_second
                self._tokens = min(self.burst, self._tokens + earned)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.per_second)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def error_for_status(
    channel: str, status: int, headers: Mapping[str, str], detail: str = ""
) -> DeliveryError | None:
    """None for a success; otherwise what the outbox should do about the answer."""
    if status < 300:
        return None
    reason = f"{channel} answered {status}{f' ({detail})' if detail else ''}"
    if status == 429:
        return DeliveryError(reason, retry_after=retry_after_seconds(headers))
    if status >= 500 or status == 408:
        return DeliveryError(reason)
    return DeliveryError(reason, retryable=False)


def numbered_text(text: str, buttons: Sequence[Button]) -> str:
    """The buttons written under the text, to be answered with their number."""
    lines = [f"{index}. {button.title}" for index, button in enumerate(buttons, start=1)]
    return f"{text}\n\n" + "\n".join(lines) + f"\n{CHOOSE_BY_NUMBER}"


class PlatformSender(ABC):
    """Sends one delivery as one or more messages within ``limit``; after a failure,
    the parts already delivered are not sent again when the outbox retries."""

    channel: str = ""
    limit: int = 2000

    def __init__(self, rate: RateLimiter) -> None:
        self._rate = rate
        self._parts_sent: dict[int, int] = {}

    async def send(self, delivery: Delivery) -> None:
        parts = split_reply(self.prepare(delivery.reply), self.limit)
        start = self._parts_sent.get(delivery.outbox_id, 0)
        for index in range(start, len(parts)):
            await self._rate.wait()
            try:
                await self.send_part(delivery, parts[index])
            except DeliveryError:
                if index > 0:
                    self._remember(delivery.outbox_id, index)
                raise
        self._parts_sent.pop(delivery.outbox_id, None)

    def _remember(self, outbox_id: int, parts_sent: int) -> None:
        if len(self._parts_sent) >= MAX_RESUMABLE:
            self._parts_sent.pop(next(iter(self._parts_sent)))
        self._parts_sent[outbox_id] = parts_sent

    def prepare(self, reply: Reply) -> Reply:
        """The reply as this platform shows it (buttons it cannot show become text)."""
        return reply

    @abstractmethod
    async def send_part(self, delivery: Delivery, part: Reply) -> None:
        """Deliver one part; raise ``DeliveryError`` when it cannot be delivered."""

    async def close(self) -> None:  # noqa: B027 - senders without resources need nothing
        """Release the HTTP client."""
