"""``POST /webhooks/telegram/webhook`` and polling: Telegram updates in.

The webhook checks ``X-Telegram-Bot-Api-Secret-Token`` (set by ``donghanh telegram
set-webhook``) in constant time before reading the body. Updates are read with
python-telegram-bot's ``Update``; only private chats are answered. Text, the bot's
commands (``/start``, ``/help``, ``/xoa``, ``/tuvan``) and inline-keyboard taps become
messages; stickers, photos, voice notes and the like become a "text only, please" turn;
every other update is acknowledged and ignored. Polling (``donghanh serve
--telegram-polling``) feeds the same parser from ``getUpdates``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from telegram import Bot, BotCommand, CallbackQuery, Message, Update
from telegram.constants import ChatType
from telegram.error import RetryAfter, TelegramError

from bot.bodies import decode_json_object
from bot.channels.common import InboundRelay, media_text, refuse, same_secret
from bot.channels.telegram import CHANNEL
from bot.domain import InboundMessage
from bot.engine.turns import TurnEngine
from bot.errors import BadInput, ConfigError

WEBHOOK_PATH = "/webhooks/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ALLOWED_UPDATES = ("message", "callback_query")
COMMANDS = {
    "start": "/greet",
    "help": "/help",
    "xoa": "/delete_my_data",
    "tuvan": "/request_counsellor",
}
COMMAND_MENU = (
    ("start", "Bắt đầu"),
    ("tuvan", "Gặp tư vấn viên"),
    ("help", "Mình giúp được gì"),
    ("xoa", "Xóa dữ liệu của tôi"),
)
MEDIA_FIELDS = (
    "sticker",
    "photo",
    "voice",
    "audio",
    "video",
    "video_note",
    "animation",
    "document",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
)
INDEX_PREFIX = "#"  # callback data too long for Telegram's 64 bytes: the button's number
POLL_TIMEOUT_SECONDS = 25
logger = logging.getLogger("donghanh.channels.telegram")


def command_text(text: str) -> str:
    """``/start``, ``/tuvan@DongHanhBot`` ... as the payload the engine understands."""
    if not text.startswith("/"):
        return text
    words = text[1:].split(maxsplit=1)
    name = words[0].split("@", 1)[0].lower() if words else ""
    return COMMANDS.get(name, text)


def _message_text(message: Message) -> str | None:
    if isinstance(message.text, str):
        return command_text(message.text)
    if isinstance(message.caption, str) and message.caption:  # a photo with words
        return message.caption
    for field in MEDIA_FIELDS:
        if getattr(message, field, None):
            return media_text(field)
    return None


def _from_message(message: Message) -> InboundMessage | None:
    if message.chat.type != ChatType.PRIVATE:
        return None  # groups and channels: not a confidential conversation
    text = _message_text(message)
    if text is None:
        return None
    return InboundMessage(
        channel=CHANNEL,
        sender_id=str(message.chat.id),
        text=text,
        platform_message_id=f"m:{message.chat.id}:{message.message_id}",
        received_at=message.date,
    )


def _from_callback(query: CallbackQuery) -> InboundMessage | None:
    chat = query.message.chat if query.message is not None else None
    if chat is not None and chat.type != ChatType.PRIVATE:
        return None
    data = query.data or ""
    if data.startswith(INDEX_PREFIX) and data[1:].isdigit():
        data = data[1:]  # the engine picks the button by its number
    if not data:
        return None
    return InboundMessage(
        channel=CHANNEL,
        sender_id=str(chat.id if chat is not None else query.from_user.id),
        text=data,
        platform_message_id=f"cb:{query.id}",
    )


def parse_update(data: dict[str, Any], bot: Bot) -> tuple[InboundMessage | None, str | None]:
    """The message an update carries (or None), and a callback query id to answer."""
    try:
        update = Update.de_json(data, bot)
        if update is None:
            return None, None
        if update.callback_query is not None:
            return _from_callback(update.callback_query), update.callback_query.id
        if update.message is not None:
            return _from_message(update.message), None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None, None  # not a shape Telegram sends: acknowledged, ignored
    return None, None  # edits, channel posts, membership changes ...


class TelegramInbound:
    """Turns updates (from the webhook or from polling) into stored, answered turns."""

    def __init__(self, bot: Bot, relay: InboundRelay) -> None:
        self.bot = bot
        self.relay = relay

    async def take(self, engine: TurnEngine, data: dict[str, Any]) -> int:
        inbound, callback_id = parse_update(data, self.bot)
        if callback_id is not None:
            self.relay.run_in_background(self._answer_callback(callback_id))
        if inbound is None:
            logger.info("update ignored", extra={"event": "update_ignored", "channel": CHANNEL})
            return 0
        return await self.relay.take(engine, [inbound])

    async def _answer_callback(self, callback_id: str) -> None:
        """Stops the spinner on the tapped button; failing that is harmless."""
        try:
            await self.bot.answer_callback_query(callback_id)
        except TelegramError as exc:
            logger.info(
                "callback answer failed",
                extra={"event": "callback_answer_failed", "error": type(exc).__name__},
            )


def create_blueprint(
    inbound_of: Callable[[Request], TelegramInbound],
    turns: Callable[[Request], TurnEngine],
    *,
    secret_token: str,
    max_bytes: int,
) -> Blueprint:
    bp = Blueprint("telegram_channel", url_prefix="/webhooks/telegram")

    @bp.get("/")
    async def health(_request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return refuse(401, CHANNEL, "missing secret token")
        if not same_secret(secret_token, given):
            return refuse(403, CHANNEL, "wrong secret token")
        data = decode_json_object(request.body, max_bytes=max_bytes)
        await inbound_of(request).take(turns(request), data)
        return json({"ok": True})

    return bp


async def poll_forever(inbound: TelegramInbound, engine: TurnEngine) -> None:
    """``getUpdates`` in a loop, for setups without a public URL. Telegram refuses
    polling while a webhook is set, so the webhook is removed first."""
    bot = inbound.bot
    offset: int | None = None
    pause = 1.0
    webhook_removed = False
    while True:
        try:
            if not webhook_removed:
                await bot.delete_webhook(drop_pending_updates=False)
                webhook_removed = True
            updates = await bot.get_updates(
                offset=offset, timeout=POLL_TIMEOUT_SECONDS, allowed_updates=list(ALLOWED_UPDATES)
            )
            pause = 1.0
        except RetryAfter as exc:
            await asyncio.sleep(retry_seconds(exc.retry_after))
            continue
        except TelegramError as exc:
            logger.warning(
                "polling failed", extra={"event": "polling_error", "error": type(exc).__name__}
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)
            continue
        for update in updates:
            # stored before the offset moves on: a failure here means a redelivery
            try:
                await inbound.take(engine, update.to_dict())
            except Exception as exc:
                logger.warning(
                    "polled update not stored",
                    extra={"event": "polling_error", "error": type(exc).__name__},
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
                break
            offset = update.update_id + 1


def webhook_url(address: str) -> str:
    """``https://host`` or the full webhook address, as the full webhook address."""
    url = address.strip().rstrip("/")
    if not url.endswith(WEBHOOK_PATH):
        url += WEBHOOK_PATH
    if not url.startswith("https://"):
        raise BadInput("Telegram only calls https:// addresses")
    return url


async def register_webhook(bot: Bot, url: str, secret: str) -> None:
    """Point Telegram at ``url`` with ``secret`` and publish the command menu."""
    try:
        await bot.set_webhook(url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES))
        await bot.set_my_commands([BotCommand(name, text) for name, text in COMMAND_MENU])
    except TelegramError as exc:
        raise ConfigError(
            f"Telegram refused the webhook ({type(exc).__name__}): check the token and the "
            "https address"
        ) from exc


def retry_seconds(value: Any) -> float:
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)
