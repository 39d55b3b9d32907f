"""``POST /webhooks/rest/webhook``: Rasa's REST channel.

Takes ``{"sender", "message"}`` and answers a JSON list of
``{"recipient_id", "text", "buttons"?}``. It is a pull channel: the replies are taken
from the outbox inside the request, including any a crash left undelivered for this
sender, so a stored message is always answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot.bodies import decode_json_object, require_string
from bot.domain import Delivery, InboundMessage
from bot.engine.turns import TurnEngine

CHANNEL = "rest"
MAX_SENDER_CHARS = 255
MAX_MESSAGE_CHARS = 20_000


def delivery_to_rasa(delivery: Delivery, recipient_id: str) -> dict[str, Any]:
    item: dict[str, Any] = {"recipient_id": recipient_id, "text": delivery.reply.text}
    if delivery.reply.buttons:
        item["buttons"] = [{"title": b.title, "payload": b.payload} for b in delivery.reply.buttons]
    return item


def parse_rest_body(body: bytes, max_bytes: int) -> InboundMessage:
    data = decode_json_object(body, max_bytes=max_bytes)
    sender = require_string(data, "sender", max_chars=MAX_SENDER_CHARS, allow_empty=False)
    message = require_string(data, "message", max_chars=MAX_MESSAGE_CHARS, allow_empty=True)
    return InboundMessage(channel=CHANNEL, sender_id=sender, text=message)


def create_blueprint(turns: Callable[[Request], TurnEngine], max_bytes: int) -> Blueprint:
    bp = Blueprint("rest_channel", url_prefix="/webhooks/rest")

    @bp.get("/")
    async def health(_request: Request) -> HTTPResponse:
        return json({"status": "ok"}, ensure_ascii=False)

    in_flight: set[int] = set()  # messages whose request is still waiting for its replies

    async def replies_for(engine: TurnEngine, sender: str, own: int | None) -> list[Delivery]:
        others = in_flight - {own} if own is not None else in_flight
        return await engine.store.do_take_pending_for_contact(
            CHANNEL, sender, not_replying_to=others
        )

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        inbound = parse_rest_body(request.body, max_bytes)
        engine = turns(request)
        stored = await engine.accept(inbound)
        if stored is None:
            deliveries = await replies_for(engine, inbound.sender_id, None)
        else:
            in_flight.add(stored.message_id)
            try:
                # A client that hangs up cancels this handler; the turn must still finish.
                await asyncio.shield(engine.answer(stored))
                deliveries = await replies_for(engine, inbound.sender_id, stored.message_id)
            finally:
                in_flight.discard(stored.message_id)
        return json(
            [delivery_to_rasa(d, inbound.sender_id) for d in deliveries], ensure_ascii=False
        )

    return bp
