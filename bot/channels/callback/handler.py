"""``POST /webhooks/callback/webhook``: Rasa's callback channel.

Takes the REST channel's body (``{"sender", "message"}``), stores the message and answers
``success`` at once; every reply (the bot's now, a counsellor's later) is then POSTed as
``{"recipient_id", "text", "buttons"?}`` to ``DONGHANH_CALLBACK_URL`` through the outbox,
so a callback server that is down gets the reply later, retried with backoff. For
integrations whose own server receives the answers, and for tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, text

from bot.channels.rest.handler import delivery_to_rasa, parse_rest_body
from bot.domain import Delivery, DeliveryError, InboundMessage
from bot.engine.turns import TurnEngine

CHANNEL = "callback"


def idempotency_key(delivery: Delivery) -> str:
    """The same for every attempt of one reply: a reply sent again after a crash (the
    receiver got it, the crash came before we knew) can be recognised and dropped."""
    return f"donghanh-{delivery.outbox_id}"


class CallbackSender:
    """Delivers replies by POSTing them to the configured callback URL."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._client = httpx.AsyncClient(timeout=timeout_seconds, transport=transport)

    async def send(self, delivery: Delivery) -> None:
        body = delivery_to_rasa(delivery, delivery.recipient_id)
        try:
            response = await self._client.post(
                self._url, json=body, headers={"Idempotency-Key": idempotency_key(delivery)}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"callback unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise DeliveryError(f"callback answered {response.status_code}")
        if response.status_code >= 400:
            raise DeliveryError(f"callback refused with {response.status_code}", retryable=False)

    async def close(self) -> None:
        await self._client.aclose()


def create_blueprint(turns: Callable[[Request], TurnEngine], max_bytes: int) -> Blueprint:
    bp = Blueprint("callback_channel", url_prefix="/webhooks/callback")
    running: set[asyncio.Task[Any]] = set()

    @bp.get("/")
    async def health(_request: Request) -> HTTPResponse:
        return text("ok")

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        parsed = parse_rest_body(request.body, max_bytes)
        inbound = InboundMessage(channel=CHANNEL, sender_id=parsed.sender_id, text=parsed.text)
        engine = turns(request)
        stored = await engine.accept(inbound)  # stored before answering: nothing is lost
        if stored is not None:
            task = asyncio.create_task(engine.answer(stored))
            running.add(task)
            task.add_done_callback(running.discard)
        return text("success")

    return bp
