"""``POST /webhooks/zalo/webhook``: Zalo OA events in.

Zalo signs each event with ``X-ZEvent-Signature: mac=<hex>``, the SHA-256 of app id +
raw body + timestamp + OA secret key (the timestamp is the body's own ``timestamp``
field, so that one field is read before the check). The comparison is constant-time,
the app id must be ours, and an event older than ``DONGHANH_WEBHOOK_MAX_AGE_SECONDS``
is refused as a replay.

``user_send_text`` (also what a tapped button sends) becomes a message; images,
stickers, voice, files and locations become a "text only, please" turn; ``follow``
greets the new follower; ``unfollow``, the OA's own messages and receipts are
acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot.bodies import decode_json_object
from bot.channels.common import InboundRelay, media_text, refuse, same_secret
from bot.domain import InboundMessage
from bot.engine.turns import TurnEngine

CHANNEL = "zalo"
SIGNATURE_HEADER = "X-ZEvent-Signature"
SIGNATURE_PREFIX = "mac="
FOLLOW_TEXT = "/greet"
MEDIA_EVENTS = {
    "user_send_image": "image",
    "user_send_gif": "gif",
    "user_send_sticker": "sticker",
    "user_send_audio": "audio",
    "user_send_video": "video",
    "user_send_file": "file",
    "user_send_location": "location",
    "user_send_link": "link",
    "user_send_business_card": "business_card",
}
MAX_TEXT_CHARS = 20_000
MAX_TIMESTAMP_DIGITS = 16  # milliseconds: 13 digits until the year 2286
logger = logging.getLogger("donghanh.channels.zalo")


def signature_for(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    digest = hashlib.sha256(
        app_id.encode("utf-8") + body + timestamp.encode("utf-8") + secret_key.encode("utf-8")
    ).hexdigest()
    return SIGNATURE_PREFIX + digest


def _event_timestamp(body: bytes) -> str | None:
    """The body's ``timestamp`` (milliseconds, as Zalo sends it), needed to check the
    signature; None if the body is not a JSON object with one."""
    try:
        data = jsonlib.loads(body)
    except (ValueError, RecursionError):
        return None
    raw = data.get("timestamp") if isinstance(data, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    text = str(raw)
    return text if text.isascii() and text.isdigit() and len(text) <= MAX_TIMESTAMP_DIGITS else None


def check_request(
    body: bytes, header: str | None, *, app_id: str, secret_key: str, max_age_seconds: int
) -> tuple[int, str] | None:
    """None when the event is signed, ours and fresh; else (status, reason)."""
    if not header:
        return 401, "missing signature"
    timestamp = _event_timestamp(body)
    if timestamp is None:
        return 403, "unverifiable body"
    if not same_secret(signature_for(app_id, body, timestamp, secret_key), header.strip().lower()):
        return 403, "bad signature"
    age = time.time() - int(timestamp) / 1000
    if abs(age) > max_age_seconds:
        return 403, "stale event"
    return None


def _received_at(data: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(data["timestamp"]) / 1000, tz=UTC)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def _id(data: dict[str, Any], field: str) -> str | None:
    part = data.get(field)
    value = part.get("id") if isinstance(part, dict) else None
    return str(value) if isinstance(value, (str, int)) and str(value) else None


def parse_event(data: dict[str, Any]) -> InboundMessage | None:
    """The message an event carries, or None for what is only acknowledged."""
    event = data.get("event_name")
    if not isinstance(event, str):
        return None
    received = _received_at(data)
    if event == "follow":
        follower = _id(data, "follower")
        if follower is None:
            return None
        pid = f"follow:{follower}:{data.get('timestamp')}"
        return InboundMessage(CHANNEL, follower, FOLLOW_TEXT, pid, received)
    if event != "user_send_text" and event not in MEDIA_EVENTS:
        return None  # unfollow, the OA's own messages, receipts, anonymous chats ...
    sender = _id(data, "sender")
    message = data.get("message")
    if sender is None or not isinstance(message, dict):
        return None
    msg_id = message.get("msg_id")
    if not isinstance(msg_id, str) or not msg_id:
        return None
    if event == "user_send_text":
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            return None
        body = text[:MAX_TEXT_CHARS]
    else:
        body = media_text(MEDIA_EVENTS[str(event)])
    return InboundMessage(CHANNEL, sender, body, msg_id, received)


def create_blueprint(
    turns: Callable[[Request], TurnEngine],
    *,
    app_id: str,
    secret_key: str,
    max_age_seconds: int,
    max_bytes: int,
) -> Blueprint:
    bp = Blueprint("zalo_channel", url_prefix="/webhooks/zalo")
    relay = InboundRelay(CHANNEL)

    @bp.get("/")
    async def health(_request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        refused = check_request(
            request.body,
            request.headers.get(SIGNATURE_HEADER),
            app_id=app_id,
            secret_key=secret_key,
            max_age_seconds=max_age_seconds,
        )
        if refused is not None:
            return refuse(refused[0], CHANNEL, refused[1])
        data = decode_json_object(request.body, max_bytes=max_bytes)
        if str(data.get("app_id", "")) != app_id:
            return refuse(403, CHANNEL, "another app's event")
        message = parse_event(data)
        if message is None:
            logger.info("event ignored", extra={"event": "event_ignored", "channel": CHANNEL})
        else:
            await relay.take(turns(request), [message])
        return json({"error": 0, "message": "Success"})

    return bp
