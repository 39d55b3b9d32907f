"""Replies out through the Zalo OA customer-service message API (``/v3.0/oa/message/cs``).

Buttons go as the message's template buttons (``oa.query.hide``: a tap sends the
payload back as a hidden message) when there are at most five with titles Zalo
accepts; otherwise they are numbered in the text. Zalo answers HTTP 200 with an
``error`` code in the body: 0 is success; an expired token is refreshed and the part
sent once more; rate limits and server errors are retried by the outbox; anything else
is recorded as failed.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.channels.common import (
    PlatformSender,
    RateLimiter,
    error_for_status,
    numbered_text,
)
from bot.channels.text import CHANNEL_TEXT_LIMITS
from bot.channels.zalo.handler import CHANNEL
from bot.channels.zalo.tokens import ZaloTokens
from bot.domain import Delivery, DeliveryError, Reply

SEND_PATH = "/v3.0/oa/message/cs"
MAX_BUTTONS = 5
MAX_TITLE_CHARS = 100
MAX_PAYLOAD_CHARS = 1000
TOKEN_ERRORS = frozenset({-216, -124})  # the access token is invalid or has expired
RETRYABLE_ERRORS = frozenset({-32, -1})  # rate limited; Zalo's own temporary error
SENDS_PER_SECOND = 10.0


def fit_buttons(reply: Reply) -> Reply:
    buttons = reply.buttons
    if not buttons:
        return reply
    fits = len(buttons) <= MAX_BUTTONS and all(
        len(b.title) <= MAX_TITLE_CHARS and len(b.payload) <= MAX_PAYLOAD_CHARS for b in buttons
    )
    return reply if fits else Reply(numbered_text(reply.text, buttons))


def message_body(user_id: str, part: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"text": part.text}
    if part.buttons:
        message["attachment"] = {
            "type": "template",
            "payload": {
                "buttons": [
                    {"title": b.title, "type": "oa.query.hide", "payload": b.payload}
                    for b in part.buttons
                ]
            },
        }
    return {"recipient": {"user_id": user_id}, "message": message}


class ZaloSender(PlatformSender):
    channel = CHANNEL
    limit = CHANNEL_TEXT_LIMITS[CHANNEL]

    def __init__(
        self,
        api_url: str,
        tokens: ZaloTokens,
        *,
        rate: RateLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(rate or RateLimiter(SENDS_PER_SECOND, burst=10))
        self._url = api_url.rstrip("/") + SEND_PATH
        self.tokens = tokens
        self._client = httpx.AsyncClient(timeout=10.0, transport=transport)

    def prepare(self, reply: Reply) -> Reply:
        return fit_buttons(reply)

    async def send_part(self, delivery: Delivery, part: Reply) -> None:
        body = message_body(delivery.recipient_id, part)
        token = await self.tokens.access_token()
        code = await self._post(body, token)
        if code in TOKEN_ERRORS:
            await self.tokens.refresh_after_rejection(token)
            code = await self._post(body, await self.tokens.access_token())
        if code == 0:
            return
        if code in TOKEN_ERRORS or code in RETRYABLE_ERRORS:
            raise DeliveryError(f"zalo error {code}")
        raise DeliveryError(f"zalo error {code}", retryable=False)

    async def _post(self, body: dict[str, Any], token: str) -> int:
        """Zalo's ``error`` code for the send (0: sent)."""
        try:
            response = await self._client.post(
                self._url, headers={"access_token": token}, json=body
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"zalo unreachable: {type(exc).__name__}") from exc
        failure = error_for_status(CHANNEL, response.status_code, response.headers)
        if failure is not None:
            raise failure
        try:
            data = response.json()
            code = data.get("error") if isinstance(data, dict) else None
        except ValueError:
            code = None
        if not isinstance(code, int):
            raise DeliveryError("zalo answered something unreadable")
        return code

    async def close(self) -> None:
        await self._client.aclose()
        await self.tokens.close()
