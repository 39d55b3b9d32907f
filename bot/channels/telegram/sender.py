"""Replies out to Telegram through python-telegram-bot's ``Bot.send_message``.

Buttons become an inline keyboard (one button a row). Telegram's callback data holds
at most 64 bytes: a longer payload is sent as the button's number, which the engine
resolves against the buttons it last sent. Texts over 4,096 characters are split.
"""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.channels.common import PlatformSender, RateLimiter
from bot.channels.telegram import CHANNEL
from bot.channels.telegram.handler import INDEX_PREFIX, retry_seconds
from bot.channels.text import CHANNEL_TEXT_LIMITS
from bot.domain import Button, Delivery, DeliveryError, Reply

CALLBACK_DATA_BYTES = 64
SENDS_PER_SECOND = 25.0  # Telegram allows about 30 a second in all


def make_bot(token: str, base_url: str) -> Bot:
    request = HTTPXRequest(connection_pool_size=8, connect_timeout=5.0, read_timeout=10.0)
    polling = HTTPXRequest(connection_pool_size=1, connect_timeout=5.0, read_timeout=40.0)
    return Bot(token=token, base_url=base_url, request=request, get_updates_request=polling)


def callback_data(button: Button, index: int) -> str:
    if len(button.payload.encode("utf-8")) <= CALLBACK_DATA_BYTES:
        return button.payload
    return f"{INDEX_PREFIX}{index}"


def inline_keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(button.title, callback_data=callback_data(button, index))]
        for index, button in enumerate(buttons, start=1)
    ]
    return InlineKeyboardMarkup(rows)


class TelegramSender(PlatformSender):
    channel = CHANNEL
    limit = CHANNEL_TEXT_LIMITS[CHANNEL]

    def __init__(self, bot: Bot, rate: RateLimiter | None = None) -> None:
        super().__init__(rate or RateLimiter(SENDS_PER_SECOND, burst=10))
        self.bot = bot

    async def send_part(self, delivery: Delivery, part: Reply) -> None:
        try:
            chat_id = int(delivery.recipient_id)
        except ValueError as exc:
            raise DeliveryError("telegram: not a chat id", retryable=False) from exc
        markup = inline_keyboard(part.buttons) if part.buttons else None
        try:
            await self.bot.send_message(chat_id=chat_id, text=part.text, reply_markup=markup)
        except RetryAfter as exc:
            raise DeliveryError(
                "telegram flood control", retry_after=retry_seconds(exc.retry_after)
            ) from exc
        except Forbidden as exc:
            raise DeliveryError("telegram: the person blocked the bot", retryable=False) from exc
        except BadRequest as exc:
            raise DeliveryError("telegram refused the message", retryable=False) from exc
        except InvalidToken as exc:
            raise DeliveryError("telegram rejected the bot token", retryable=False) from exc
        except (TimedOut, NetworkError) as exc:
            raise DeliveryError(f"telegram unreachable: {type(exc).__name__}") from exc
        except TelegramError as exc:
            raise DeliveryError(f"telegram error: {type(exc).__name__}") from exc

    async def close(self) -> None:
        await self.bot.shutdown()
