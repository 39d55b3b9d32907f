"""``GET``/``POST /webhooks/facebook/webhook``: Messenger events in.

``GET`` answers Facebook's subscription check (``hub.mode``, ``hub.verify_token``,
``hub.challenge``). ``POST`` bodies are checked against ``X-Hub-Signature-256``: the
HMAC-SHA256 of the raw body with the app secret (the algorithm is fixed here, never
taken from the header), compared in constant time, before anything is parsed.

Text and quick-reply or postback payloads become messages; attachments (stickers,
photos, voice ...) become a "text only, please" turn; echoes of the page's own
messages, delivery and read receipts, reactions and anything else are acknowledged
and ignored. Facebook is answered 200 as soon as the messages are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, text

from bot.bodies import decode_json_object
from bot.channels.common import InboundRelay, hmac_sha256_hex, media_text, refuse, same_secret
from bot.domain import InboundMessage
from bot.engine.turns import TurnEngine

CHANNEL = "facebook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
GET_STARTED = "/greet"  # what a "Get started" postback without our payload means
MAX_TEXT_CHARS = 20_000
logger = logging.getLogger("donghanh.channels.facebook")


def check_signature(app_secret: str, body: bytes, header: str | None) -> int | None:
    """None when the body is signed by the app secret; else the HTTP status to refuse."""
    if not header:
        return 401
    if not header.startswith(SIGNATURE_PREFIX):
        return 403
    expected = hmac_sha256_hex(app_secret, body)
    return None if same_secret(expected, header[len(SIGNATURE_PREFIX) :].lower()) else 403


def _timestamp(event: dict[str, Any]) -> datetime | None:
    raw = event.get("timestamp")
    if isinstance(raw, (int, float)) and 0 < raw < 10**14:
        return datetime.fromtimestamp(raw / 1000, tz=UTC)
    return None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _message_text(message: dict[str, Any]) -> str | None:
    quick_reply = message.get("quick_reply")
    if isinstance(quick_reply, dict) and _string(quick_reply.get("payload")):
        return str(quick_reply["payload"])
    if _string(message.get("text")):
        return str(message["text"])[:MAX_TEXT_CHARS]
    attachments = message.get("attachments")
    if isinstance(attachments, list) and attachments:
        first = attachments[0] if isinstance(attachments[0], dict) else {}
        payload = first.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        sticker = message.get("sticker_id") or payload.get("sticker_id")
        kind = "sticker" if sticker else str(first.get("type") or "other")
        return media_text(kind)
    return None


def parse_event(event: dict[str, Any]) -> InboundMessage | None:
    """One ``messaging`` item as a message, or None for what is only acknowledged."""
    sender = event.get("sender")
    sender_id = _string(sender.get("id")) if isinstance(sender, dict) else None
    if sender_id is None:
        return None
    message = event.get("message")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None  # the page's own message coming back
        body = _message_text(message)
        mid = _string(message.get("mid"))
        if body is None or mid is None:
            return None
        return InboundMessage(CHANNEL, sender_id, body, mid, _timestamp(event))
    postback = event.get("postback")
    if isinstance(postback, dict):
        payload = _string(postback.get("payload")) or ""
        body = payload if payload.startswith("/") else GET_STARTED
        mid = _string(postback.get("mid")) or f"pb:{sender_id}:{event.get('timestamp')}"
        return InboundMessage(CHANNEL, sender_id, body, mid, _timestamp(event))
    return None  # delivery, read, reaction, optin, referral, handover ...


def parse_body(data: dict[str, Any]) -> Iterator[InboundMessage]:
    if data.get("object") != "page":
        return
    entries = data.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        events = entry.get("messaging") if isinstance(entry, dict) else None
        for event in events if isinstance(events, list) else []:
            if isinstance(event, dict):
                parsed = parse_event(event)
                if parsed is not None:
                    yield parsed


def create_blueprint(
    turns: Callable[[Request], TurnEngine],
    *,
    app_secret: str,
    verify_token: str,
    max_bytes: int,
) -> Blueprint:
    bp = Blueprint("facebook_channel", url_prefix="/webhooks/facebook")
    relay = InboundRelay(CHANNEL)

    @bp.get("/webhook")
    async def verify_subscription(request: Request) -> HTTPResponse:
        mode = request.args.get("hub.mode")
        challenge = request.args.get("hub.challenge") or ""
        if mode == "subscribe" and same_secret(verify_token, request.args.get("hub.verify_token")):
            return text(challenge[:256])
        return refuse(403, CHANNEL, "subscription check failed")

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        status = check_signature(app_secret, request.body, request.headers.get(SIGNATURE_HEADER))
        if status is not None:
            reason = "missing signature" if status == 401 else "bad signature"
            return refuse(status, CHANNEL, reason)
        data = decode_json_object(request.body, max_bytes=max_bytes)
        new = await relay.take(turns(request), parse_body(data))
        if not new:
            logger.info("event ignored", extra={"event": "event_ignored", "channel": CHANNEL})
        return text("EVENT_RECEIVED")

    return bp
