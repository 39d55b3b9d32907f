"""Replies out to Telegram (``bot.channels.telegram.sender``), against the fake Bot API
directly, without a server of ours.

Buttons as an inline keyboard (one a row), a payload over Telegram's 64-byte callback
data as ``#<n>`` (and that number leading back to the payload), a long reply split
within 4,096 UTF-16 units with the buttons under the last part, Telegram's answers
turned into what the outbox needs (429 with its ``retry_after``, a blocked bot, a bad
request, a server error, no connection), and a retry after a failure mid-way through a
split reply that does not send the parts already delivered again.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from platform_fakes import TELEGRAM_TOKEN, FakePlatform
from telegram import Bot

from bot.channels.common import RateLimiter
from bot.channels.telegram.handler import parse_update
from bot.channels.telegram.sender import (
    CALLBACK_DATA_BYTES,
    TelegramSender,
    callback_data,
    make_bot,
)
from bot.channels.text import CHANNEL_TEXT_LIMITS, text_length
from bot.domain import Button, Delivery, DeliveryError, Reply
from bot.engine.choices import resolve_choice

LIMIT = CHANNEL_TEXT_LIMITS["telegram"]
GREETING_BUTTONS = (
    Button("Tôi đang gặp nguy hiểm", "/emergency"),
    Button("Gặp tư vấn viên", "/request_counsellor"),
)
LONG_PAYLOAD = '/handoff_consent{"consent": "from_now", "ghi_chu": "chỉ từ bây giờ, không xem lại"}'
_outbox_ids = itertools.count(1)
_chats = itertools.count(7391846401)


@pytest.fixture(scope="module")
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()
    yield fake
    fake.close()


@pytest.fixture
def fake(platform: FakePlatform) -> FakePlatform:
    """The module's fake, with no calls recorded and no failures scripted."""
    platform.calls.clear()
    platform.failures.clear()
    return platform


@pytest.fixture
async def sender(fake: FakePlatform) -> AsyncIterator[TelegramSender]:
    telegram = TelegramSender(make_bot(TELEGRAM_TOKEN, fake.telegram_base_url))
    yield telegram
    await telegram.close()


def delivery(reply: Reply, chat: str | None = None, outbox_id: int | None = None) -> Delivery:
    return Delivery(
        outbox_id=outbox_id if outbox_id is not None else next(_outbox_ids),
        channel="telegram",
        recipient_id=chat or str(next(_chats)),
        pseudonym="p-test",
        reply=reply,
        attempts=0,
    )


def sent_to(fake: FakePlatform, chat: str) -> list[dict[str, Any]]:
    """Every sendMessage call for ``chat``, accepted or not."""
    return [c.body for c in fake.calls_to("/sendMessage") if str(c.body.get("chat_id")) == chat]


def long_text(chars: int) -> str:
    """Numbered Vietnamese sentences with emoji, so that no two parts are alike."""
    sentences = (
        f"Điều {n}: bạn có quyền giữ hộ chiếu của mình 🙏, không ai được giữ giấy tờ của bạn. "
        for n in itertools.count(1)
    )
    text = ""
    while len(text) < chars:
        text += next(sentences)
    return text[:chars].strip()


# -- buttons ---------------------------------------------------------------------------------


async def test_a_plain_reply_is_one_message_without_a_keyboard(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    chat = str(next(_chats))
    await sender.send(delivery(Reply("Cần gấp: gọi 111 (miễn phí, 24/7)."), chat))
    [body] = fake.delivered("telegram", chat)
    assert body["text"] == "Cần gấp: gọi 111 (miễn phí, 24/7)."
    assert "reply_markup" not in body


async def test_buttons_are_an_inline_keyboard_one_a_row(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    chat = str(next(_chats))
    await sender.send(delivery(Reply("Bạn cần mình giúp gì?", GREETING_BUTTONS), chat))
    [body] = fake.delivered("telegram", chat)
    assert body["text"] == "Bạn cần mình giúp gì?"
    assert body["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Tôi đang gặp nguy hiểm", "callback_data": "/emergency"}],
            [{"text": "Gặp tư vấn viên", "callback_data": "/request_counsellor"}],
        ]
    }


async def test_a_payload_over_64_bytes_goes_as_its_number(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    assert len(LONG_PAYLOAD.encode("utf-8")) > CALLBACK_DATA_BYTES
    buttons = (
        Button("Đồng ý", '/handoff_consent{"consent": "full"}'),
        Button("Chỉ từ bây giờ", LONG_PAYLOAD),
        Button("Hủy", "/cancel_handoff"),
    )
    chat = str(next(_chats))
    await sender.send(delivery(Reply("Bạn chọn nhé?", buttons), chat))
    [body] = fake.delivered("telegram", chat)
    rows = body["reply_markup"]["inline_keyboard"]
    assert [row[0]["callback_data"] for row in rows] == [
        '/handoff_consent{"consent": "full"}',
        "#2",
        "/cancel_handoff",
    ]
    assert [row[0]["text"] for row in rows] == ["Đồng ý", "Chỉ từ bây giờ", "Hủy"]
    for row in rows:
        assert len(row[0]["callback_data"].encode("utf-8")) <= CALLBACK_DATA_BYTES

    # the tap comes back as "#2", which the engine resolves against these buttons
    tap = {
        "update_id": 1,
        "callback_query": {
            "id": "1",
            "from": {"id": int(chat), "is_bot": False, "first_name": "Lan"},
            "chat_instance": "1",
            "data": rows[1][0]["callback_data"],
        },
    }
    inbound, _ = parse_update(tap, Bot(TELEGRAM_TOKEN))
    assert inbound is not None
    assert resolve_choice(inbound.text, buttons) == LONG_PAYLOAD


@pytest.mark.parametrize(
    ("payload", "kept"),
    [
        ("/" + "a" * 63, True),  # exactly 64 bytes
        ("/" + "a" * 64, False),  # 65 bytes
        ("/" + "ệ" * 21, True),  # 22 characters, 64 bytes
        ("/" + "ệ" * 22, False),  # 23 characters, 67 bytes: counted in bytes, not characters
    ],
)
def test_the_64_byte_limit_counts_utf8_bytes(payload: str, kept: bool) -> None:
    assert callback_data(Button("Chọn", payload), 3) == (payload if kept else "#3")


# -- long replies -----------------------------------------------------------------------------


async def test_a_long_reply_is_split_with_the_buttons_on_the_last_part(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    text = long_text(9000)
    chat = str(next(_chats))
    await sender.send(delivery(Reply(text, GREETING_BUTTONS), chat))
    bodies = fake.delivered("telegram", chat)
    assert len(bodies) == 3
    for body in bodies:
        assert 0 < text_length(body["text"]) <= LIMIT
    assert [("reply_markup" in body) for body in bodies] == [False, False, True]
    assert len(bodies[-1]["reply_markup"]["inline_keyboard"]) == 2
    assert " ".join(" ".join(body["text"] for body in bodies).split()) == " ".join(text.split())


async def test_a_failure_on_part_two_resumes_there_on_retry(
    fake: FakePlatform,
) -> None:
    """Part 1 is delivered, part 2 meets a 500: the outbox retries the delivery, and
    the person gets parts 2 and 3, not part 1 a second time."""

    class FailSecondPart(RateLimiter):
        waits = 0

        async def wait(self) -> None:
            self.waits += 1
            if self.waits == 2:  # just before part 2 is sent
                fake.fail_next("/sendMessage", 500, {"ok": False, "error_code": 500})
            await super().wait()

    telegram = TelegramSender(
        make_bot(TELEGRAM_TOKEN, fake.telegram_base_url), FailSecondPart(100, burst=10)
    )
    chat = str(next(_chats))
    item = delivery(Reply(long_text(9000), GREETING_BUTTONS), chat)
    try:
        with pytest.raises(DeliveryError) as failed:
            await telegram.send(item)
        assert failed.value.retryable
        assert len(fake.delivered("telegram", chat)) == 1
        assert len(sent_to(fake, chat)) == 2  # part 1 accepted, part 2 refused

        await telegram.send(item)  # the outbox's retry of the same item
    finally:
        await telegram.close()
    texts = [body["text"] for body in fake.delivered("telegram", chat)]
    assert len(texts) == 3
    assert len(set(texts)) == 3, "a part was delivered twice"
    assert len(sent_to(fake, chat)) == 4
    assert "reply_markup" in fake.delivered("telegram", chat)[-1]


async def test_a_failure_on_the_first_part_sends_it_again(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    chat = str(next(_chats))
    item = delivery(Reply(long_text(5000)), chat)
    fake.fail_next("/sendMessage", 502, {"ok": False, "error_code": 502})
    with pytest.raises(DeliveryError):
        await sender.send(item)
    assert fake.delivered("telegram", chat) == []
    await sender.send(item)
    assert len(fake.delivered("telegram", chat)) == 2


# -- Telegram's answers -------------------------------------------------------------------------

FLOOD = {
    "ok": False,
    "error_code": 429,
    "description": "Too Many Requests: retry after 3",
    "parameters": {"retry_after": 3},
}
BLOCKED = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
BAD_REQUEST = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
SERVER_ERROR = {"ok": False, "error_code": 500, "description": "Internal Server Error"}


async def test_flood_control_asks_to_wait_the_seconds_telegram_gave(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    chat = str(next(_chats))
    fake.fail_next("/sendMessage", 429, FLOOD)
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào"), chat))
    assert failed.value.retry_after == 3
    assert failed.value.retryable and not failed.value.deferred
    assert fake.delivered("telegram", chat) == []


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (403, BLOCKED, False),
        (400, BAD_REQUEST, False),
        (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, False),
        (500, SERVER_ERROR, True),
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, True),
        (500, None, True),  # an empty error body
    ],
    ids=["blocked", "bad_request", "bad_token", "server_error", "bad_gateway", "empty_500"],
)
async def test_telegram_errors_say_whether_to_retry(
    sender: TelegramSender,
    fake: FakePlatform,
    status: int,
    body: dict[str, Any] | None,
    retryable: bool,
) -> None:
    chat = str(next(_chats))
    fake.fail_next("/sendMessage", status, body)
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào"), chat))
    assert failed.value.retryable is retryable
    assert failed.value.retry_after is None
    assert not failed.value.deferred
    assert chat not in failed.value.reason  # the reason is stored and logged: no chat id


async def test_the_message_goes_through_after_a_server_error(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    chat = str(next(_chats))
    fake.fail_next("/sendMessage", 500, SERVER_ERROR)
    with pytest.raises(DeliveryError):
        await sender.send(delivery(Reply("Xin chào"), chat))
    await sender.send(delivery(Reply("Xin chào"), chat))
    assert [b["text"] for b in fake.delivered("telegram", chat)] == ["Xin chào"]


async def test_no_connection_is_retryable() -> None:
    closed = FakePlatform()
    base_url = closed.telegram_base_url
    closed.close()  # nothing listens there any more
    telegram = TelegramSender(make_bot(TELEGRAM_TOKEN, base_url))
    try:
        with pytest.raises(DeliveryError) as failed:
            await telegram.send(delivery(Reply("Xin chào")))
    finally:
        await telegram.close()
    assert failed.value.retryable


async def test_a_recipient_that_is_not_a_chat_id_is_not_retried(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào"), "not-a-chat"))
    assert not failed.value.retryable
    assert fake.calls_to("/sendMessage") == []


async def test_sends_use_the_bot_token_in_the_path(
    sender: TelegramSender, fake: FakePlatform
) -> None:
    chat = str(next(_chats))
    await sender.send(delivery(Reply("Xin chào"), chat))
    [call] = fake.calls_to("/sendMessage")
    assert call.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert int(call.body["chat_id"]) == int(chat)
