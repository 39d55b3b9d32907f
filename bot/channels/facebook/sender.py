"""Replies out through Messenger's Send API with the page access token.

Bot replies go as ``messaging_type: RESPONSE``. A counsellor's reply more than 24 hours
after the person last wrote goes with the ``HUMAN_AGENT`` tag when the page is approved
for it (``DONGHANH_FACEBOOK_HUMAN_AGENT``); the console refuses such replies otherwise.
Buttons become quick replies: with their titles when every title fits Messenger's 20
characters, else as a numbered list in the text with quick replies "1", "2" ...
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.channels.common import (
    PlatformSender,
    RateLimiter,
    error_for_status,
    numbered_text,
    retry_after_seconds,
)
from bot.channels.facebook.handler import CHANNEL
from bot.channels.text import CHANNEL_TEXT_LIMITS
from bot.domain import AuthorKind, Button, Delivery, DeliveryError, Reply

QUICK_REPLY_TITLE_CHARS = 20
MAX_QUICK_REPLIES = 13
STANDARD_WINDOW = timedelta(hours=24)
# Graph API error codes that mean "later": temporary, throttled, rate limited
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613, 1200})
SENDS_PER_SECOND = 40.0


def quick_replies(buttons: tuple[Button, ...]) -> list[dict[str, str]]:
    return [
        {"content_type": "text", "title": button.title, "payload": button.payload}
        for button in buttons[:MAX_QUICK_REPLIES]
    ]


def fit_buttons(reply: Reply) -> Reply:
    """Titles that fit stay; otherwise the choices are numbered in the text."""
    buttons = reply.buttons
    if not buttons:
        return reply
    if len(buttons) <= MAX_QUICK_REPLIES and all(
        len(b.title) <= QUICK_REPLY_TITLE_CHARS for b in buttons
    ):
        return reply
    numbered = tuple(
        Button(title=str(index), payload=button.payload)
        for index, button in enumerate(buttons[:MAX_QUICK_REPLIES], start=1)
    )
    return Reply(numbered_text(reply.text, buttons), numbered)


class FacebookSender(PlatformSender):
    channel = CHANNEL
    limit = CHANNEL_TEXT_LIMITS[CHANNEL]

    def __init__(
        self,
        graph_url: str,
        page_token: str,
        *,
        human_agent: bool,
        rate: RateLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(rate or RateLimiter(SENDS_PER_SECOND, burst=20))
        self._url = graph_url.rstrip("/") + "/me/messages"
        self._token = page_token
        self._human_agent = human_agent
        self._client = httpx.AsyncClient(timeout=10.0, transport=transport)

    def prepare(self, reply: Reply) -> Reply:
        return fit_buttons(reply)

    def _messaging_type(self, delivery: Delivery) -> dict[str, str]:
        last_seen = delivery.person_last_seen_at
        late = last_seen is not None and datetime.now(UTC) - last_seen > STANDARD_WINDOW
        if delivery.author == AuthorKind.COUNSELLOR.value and late and self._human_agent:
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        return {"messaging_type": "RESPONSE"}

    def body(self, delivery: Delivery, part: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"text": part.text}
        if part.buttons:
            message["quick_replies"] = quick_replies(part.buttons)
        return {
            "recipient": {"id": delivery.recipient_id},
            **self._messaging_type(delivery),
            "message": message,
        }

    async def send_part(self, delivery: Delivery, part: Reply) -> None:
        try:
            response = await self._client.post(
                self._url, params={"access_token": self._token}, json=self.body(delivery, part)
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"facebook unreachable: {type(exc).__name__}") from exc
        if response.status_code < 300:
            return
        raise self._error(response)

    def _error(self, response: httpx.Response) -> DeliveryError:
        code, subcode, transient = _graph_error(response)
        detail = f"code {code}" + (f"/{subcode}" if subcode else "")
        if code in RETRYABLE_CODES or transient:
            return DeliveryError(
                f"facebook answered {response.status_code} ({detail})",
                retry_after=retry_after_seconds(response.headers),
            )
        error = error_for_status(CHANNEL, response.status_code, response.headers, detail)
        assert error is not None
        return error

    async def close(self) -> None:
        await self._client.aclose()


def _graph_error(response: httpx.Response) -> tuple[int | None, int | None, bool]:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return None, None, False
    if not isinstance(error, dict):
        return None, None, False
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    return code, subcode, bool(error.get("is_transient"))
