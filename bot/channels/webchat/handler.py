"""WebSocket protocol of the web chat at ``/webhooks/webchat/ws``.

Client frames (JSON): ``{"type": "hello", "session": ID}`` first, then
``{"type": "message", "id": CLIENT_MESSAGE_ID, "text": ...}``. Server frames:
``{"type": "ready"}``, ``{"type": "reply", "text", "buttons"}``,
``{"type": "ack", "id"}`` and ``{"type": "error", "error"}``. The session id is random
and lives only in the page's sessionStorage; the client message id makes a resend after
a dropped connection a duplicate instead of a second question.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.server.websockets.impl import WebsocketImplProtocol

from bot.bodies import require_string
from bot.domain import Delivery, DeliveryError, InboundMessage
from bot.engine.turns import TurnEngine
from bot.errors import BadInput, TooManyRequests

CHANNEL = "webchat"
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CHARS = 20_000
logger = logging.getLogger("donghanh.webchat")


def reply_frame(delivery: Delivery) -> str:
    return json.dumps(
        {
            "type": "reply",
            "text": delivery.reply.text,
            "buttons": [{"title": b.title, "payload": b.payload} for b in delivery.reply.buttons],
        },
        ensure_ascii=False,
    )


class WebChatSessions:
    """Live sockets by session id; the outbox sender delivers through them."""

    def __init__(self) -> None:
        self._sockets: dict[str, WebsocketImplProtocol] = {}

    def attach(self, session: str, socket: WebsocketImplProtocol) -> None:
        self._sockets[session] = socket

    def connected_recipients(self) -> set[str]:
        return set(self._sockets)

    def detach(self, session: str, socket: WebsocketImplProtocol) -> None:
        if self._sockets.get(session) is socket:
            del self._sockets[session]

    async def send(self, delivery: Delivery) -> None:
        socket = self._sockets.get(delivery.recipient_id)
        if socket is None:
            raise DeliveryError("web chat session not connected", deferred=True)
        try:
            await socket.send(reply_frame(delivery))
        except Exception as exc:
            raise DeliveryError(f"web chat send failed: {type(exc).__name__}") from exc


def parse_frame(raw: str | bytes | None) -> dict[str, Any]:
    if raw is None:
        raise BadInput("empty frame")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput("frame is not valid JSON") from exc
    except RecursionError as exc:
        raise BadInput("frame is nested too deeply") from exc
    if not isinstance(data, dict):
        raise BadInput("frame must be a JSON object")
    return data


def parse_session(frame: dict[str, Any]) -> str:
    session = frame.get("session")
    if (
        frame.get("type") != "hello"
        or not isinstance(session, str)
        or not SESSION_ID.fullmatch(session)
    ):
        raise BadInput(
            "the first frame must be hello with a session id of 16-64 letters, digits, - or _"
        )
    return session


def parse_message(frame: dict[str, Any], session: str) -> InboundMessage:
    if frame.get("type") != "message":
        raise BadInput("unknown frame type")
    text = require_string(frame, "text", max_chars=MAX_TEXT_CHARS, allow_empty=True)
    client_id = frame.get("id")
    if client_id is not None and (
        not isinstance(client_id, str) or not SESSION_ID.fullmatch(client_id)
    ):
        raise BadInput("message id must be 16-64 letters, digits, - or _")
    platform_id = f"{session}:{client_id}" if client_id else None
    return InboundMessage(
        channel=CHANNEL, sender_id=session, text=text, platform_message_id=platform_id
    )


async def _send_error(
    socket: WebsocketImplProtocol, error: BadInput | TooManyRequests, client_id: object = None
) -> None:
    frame: dict[str, Any] = {"type": "error", "error": str(error)}
    if isinstance(client_id, str) and len(client_id) <= 64:
        frame["id"] = client_id
    await socket.send(json.dumps(frame))


async def _deliver_waiting(engine: TurnEngine, session: str) -> None:
    """Replies held back while the page was away go out now through the outbox, which
    marks each one sent only after the socket took it."""
    await engine.store.do_make_due_now(CHANNEL, session)
    engine.notify_outbox()


def create_blueprint(
    turns: Callable[[Request], TurnEngine], sessions: WebChatSessions
) -> Blueprint:
    bp = Blueprint("webchat_channel", url_prefix="/webhooks/webchat")

    @bp.websocket("/ws")
    async def chat_socket(request: Request, socket: WebsocketImplProtocol) -> None:
        engine = turns(request)
        try:
            session = parse_session(parse_frame(await asyncio.wait_for(socket.recv(), timeout=30)))
        except (BadInput, TimeoutError) as exc:
            await _send_error(socket, exc if isinstance(exc, BadInput) else BadInput("no hello"))
            return
        sessions.attach(session, socket)
        try:
            await socket.send(json.dumps({"type": "ready"}))
            await _deliver_waiting(engine, session)
            await _serve_session(engine, socket, session)
        finally:
            sessions.detach(session, socket)

    return bp


async def _serve_session(engine: TurnEngine, socket: WebsocketImplProtocol, session: str) -> None:
    while True:
        raw = await socket.recv()
        if raw is None:
            return
        frame: dict[str, Any] = {}
        try:
            frame = parse_frame(raw)
            inbound = parse_message(frame, session)
        except BadInput as exc:
            await _send_error(socket, exc, frame.get("id"))
            continue
        # A dropped connection cancels this handler; the turn must still finish.
        try:
            await asyncio.shield(engine.handle(inbound))
        except TooManyRequests as exc:
            await _send_error(socket, exc, frame.get("id"))
            continue
        if inbound.platform_message_id:
            await socket.send(
                json.dumps({"type": "ack", "id": inbound.platform_message_id.split(":", 1)[1]})
            )
