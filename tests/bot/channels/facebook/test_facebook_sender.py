"""``FacebookSender`` against the fake Graph Send API, without a server: the body
Messenger gets (recipient, messaging type, text, quick replies), buttons that do not fit
as numbered text, long replies in parts, the HUMAN_AGENT tag for late counsellor
replies, the page token as ``access_token``, and how Graph errors become retryable or
final ``DeliveryError``s for the outbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx
import pytest
from conftest import free_port
from platform_fakes import FakePlatform

from bot.channels.common import CHOOSE_BY_NUMBER, RateLimiter, numbered_text
from bot.channels.facebook.sender import FacebookSender
from bot.domain import Button, Delivery, DeliveryError, Reply

PAGE_TOKEN = "fb-page-token"
PSID = "7245019384688001"
SEND = "/me/messages"
_outbox_ids = count(1)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePlatform]:
    platform = FakePlatform()
    yield platform
    platform.close()


@pytest.fixture
def platform(fake: FakePlatform) -> FakePlatform:
    """The module's fake, with no calls or scripted failures left from another test."""
    fake.calls.clear()
    fake.failures.clear()
    return fake


def fast() -> RateLimiter:
    return RateLimiter(1000.0, burst=100)


@pytest.fixture
async def sender(platform: FakePlatform) -> AsyncIterator[FacebookSender]:
    made = FacebookSender(platform.graph_url, PAGE_TOKEN, human_agent=False, rate=fast())
    yield made
    await made.close()


@pytest.fixture
async def agent_sender(platform: FakePlatform) -> AsyncIterator[FacebookSender]:
    made = FacebookSender(platform.graph_url, PAGE_TOKEN, human_agent=True, rate=fast())
    yield made
    await made.close()


def delivery(
    reply: Reply,
    *,
    author: str = "bot",
    last_seen: datetime | None = None,
    recipient: str = PSID,
) -> Delivery:
    return Delivery(
        outbox_id=next(_outbox_ids),
        channel="facebook",
        recipient_id=recipient,
        pseudonym="p-facebook-test",
        reply=reply,
        attempts=0,
        author=author,
        person_last_seen_at=last_seen,
    )


def sent(platform: FakePlatform) -> list[dict[str, Any]]:
    return platform.delivered("facebook", PSID)


GREETING = Reply(
    "Xin chào, mình là Đồng Hành.",
    (
        Button("Gặp tư vấn viên", "/request_counsellor"),
        Button("Tìm nơi hỗ trợ", "/find_service"),
    ),
)


# -- the body --------------------------------------------------------------------------------


async def test_a_reply_goes_to_the_person_as_a_response_with_quick_replies(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    await sender.send(delivery(GREETING))
    assert sent(platform) == [
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "Xin chào, mình là Đồng Hành.",
                "quick_replies": [
                    {
                        "content_type": "text",
                        "title": "Gặp tư vấn viên",
                        "payload": "/request_counsellor",
                    },
                    {"content_type": "text", "title": "Tìm nơi hỗ trợ", "payload": "/find_service"},
                ],
            },
        }
    ]


async def test_a_reply_without_buttons_has_no_quick_replies(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    await sender.send(delivery(Reply("Gọi 111: miễn phí, 24/7.")))
    assert sent(platform) == [
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {"text": "Gọi 111: miễn phí, 24/7."},
        }
    ]


async def test_the_page_token_goes_as_the_access_token_query_parameter(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    await sender.send(delivery(GREETING))
    [call] = platform.calls_to(SEND)
    assert call.path == "/graph/v21.0/me/messages"
    assert call.query == {"access_token": PAGE_TOKEN}
    assert call.headers["content-type"] == "application/json"
    assert PAGE_TOKEN not in str(call.body)
    assert "authorization" not in call.headers


async def test_a_trailing_slash_in_the_graph_url_is_harmless(platform: FakePlatform) -> None:
    made = FacebookSender(platform.graph_url + "/", PAGE_TOKEN, human_agent=False, rate=fast())
    try:
        await made.send(delivery(Reply("xin chào")))
    finally:
        await made.close()
    assert [c.path for c in platform.calls_to(SEND)] == ["/graph/v21.0/me/messages"]
    assert len(sent(platform)) == 1


# -- buttons ---------------------------------------------------------------------------------


async def test_titles_of_twenty_characters_stay_quick_replies(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    twenty = "Tôi cần giúp đỡ ngay"
    assert len(twenty) == 20
    await sender.send(delivery(Reply("Bạn chọn nhé", (Button(twenty, "/emergency"),))))
    [body] = sent(platform)
    assert body["message"]["text"] == "Bạn chọn nhé"
    assert body["message"]["quick_replies"] == [
        {"content_type": "text", "title": twenty, "payload": "/emergency"}
    ]


async def test_one_title_over_twenty_characters_numbers_every_choice(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    buttons = (
        Button("Tôi đang gặp nguy hiểm", "/emergency"),  # 22 characters
        Button("Gặp tư vấn viên", "/request_counsellor"),
    )
    await sender.send(delivery(Reply("Bạn cần mình giúp gì?", buttons)))
    [body] = sent(platform)
    text = body["message"]["text"]
    assert text == numbered_text("Bạn cần mình giúp gì?", buttons)
    assert text == (
        "Bạn cần mình giúp gì?\n\n1. Tôi đang gặp nguy hiểm\n2. Gặp tư vấn viên\n"
        + CHOOSE_BY_NUMBER
    )
    assert body["message"]["quick_replies"] == [
        {"content_type": "text", "title": "1", "payload": "/emergency"},
        {"content_type": "text", "title": "2", "payload": "/request_counsellor"},
    ]


async def test_more_than_thirteen_buttons_are_numbered_with_thirteen_quick_replies(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    provinces = [f"Tỉnh {n}" for n in range(1, 16)]
    buttons = tuple(
        Button(name, f'/inform{{"province": "p{n}"}}') for n, name in enumerate(provinces)
    )
    await sender.send(delivery(Reply("Bạn ở tỉnh nào?", buttons)))
    [body] = sent(platform)
    text = body["message"]["text"]
    for number, name in enumerate(provinces, start=1):
        assert f"{number}. {name}" in text
    quick = body["message"]["quick_replies"]
    assert len(quick) == 13
    assert [q["title"] for q in quick] == [str(n) for n in range(1, 14)]
    assert [q["payload"] for q in quick] == [b.payload for b in buttons[:13]]


async def test_thirteen_short_buttons_stay_quick_replies(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    buttons = tuple(Button(f"Tỉnh {n}", f"/p{n}") for n in range(13))
    await sender.send(delivery(Reply("Bạn ở tỉnh nào?", buttons)))
    [body] = sent(platform)
    assert body["message"]["text"] == "Bạn ở tỉnh nào?"
    assert [q["title"] for q in body["message"]["quick_replies"]] == [b.title for b in buttons]


# -- long replies -----------------------------------------------------------------------------


def long_text() -> str:
    """About 4,500 characters of numbered sentences (so every part differs)."""
    sentences = (f"Điều {n}: bạn có quyền giữ hộ chiếu của mình." for n in range(1, 200))
    text = " ".join(sentences)[:4500].rsplit(" ", 1)[0]
    assert 4450 <= len(text) <= 4500
    return text


async def test_a_long_reply_goes_in_parts_with_quick_replies_only_on_the_last(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    text = long_text()
    await sender.send(delivery(Reply(text, GREETING.buttons)))
    bodies = sent(platform)
    assert len(bodies) == 3
    assert all(len(b["message"]["text"]) <= 2000 for b in bodies)
    assert all("quick_replies" not in b["message"] for b in bodies[:-1])
    assert [q["title"] for q in bodies[-1]["message"]["quick_replies"]] == [
        "Gặp tư vấn viên",
        "Tìm nơi hỗ trợ",
    ]
    assert all(b["messaging_type"] == "RESPONSE" for b in bodies)
    # nothing lost, nothing cut inside a word
    assert " ".join(b["message"]["text"] for b in bodies).split() == text.split()


async def test_after_a_failed_part_only_the_rest_is_sent_again() -> None:
    graph = ScriptedGraph([(200, OK, {}), (500, {"error": {"code": 1}}, {})])
    made = graph.sender()
    item = delivery(Reply(long_text(), GREETING.buttons))
    try:
        with pytest.raises(DeliveryError) as failed:
            await made.send(item)  # part 1 delivered, part 2 refused
        assert failed.value.retryable
        await made.send(item)  # the outbox's retry
    finally:
        await made.close()
    texts = [body["message"]["text"] for body in graph.bodies]
    assert len(texts) == 4  # part 1, part 2 refused, then part 2 and part 3
    assert texts[1] == texts[2], "the retry did not start with the refused part"
    assert len(set(texts)) == 3, "a part was sent twice"
    assert "quick_replies" in graph.bodies[-1]["message"]


# -- the HUMAN_AGENT tag ---------------------------------------------------------------------


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


async def test_a_late_counsellor_reply_is_tagged_human_agent_when_approved(
    agent_sender: FacebookSender, platform: FakePlatform
) -> None:
    await agent_sender.send(
        delivery(Reply("Chào bạn, mình vẫn ở đây."), author="counsellor", last_seen=hours_ago(30))
    )
    [body] = sent(platform)
    assert body["messaging_type"] == "MESSAGE_TAG"
    assert body["tag"] == "HUMAN_AGENT"
    assert body["message"] == {"text": "Chào bạn, mình vẫn ở đây."}


async def test_a_late_counsellor_reply_is_a_plain_response_when_not_approved(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    await sender.send(
        delivery(Reply("Chào bạn, mình vẫn ở đây."), author="counsellor", last_seen=hours_ago(30))
    )
    [body] = sent(platform)
    assert body["messaging_type"] == "RESPONSE"
    assert "tag" not in body


@pytest.mark.parametrize(
    ("author", "last_seen"),
    [
        ("bot", 30.0),
        ("counsellor", 2.0),
        ("counsellor", 23.9),
        ("counsellor", None),
        ("user", 30.0),
    ],
    ids=[
        "bot-late",
        "counsellor-recent",
        "counsellor-just-inside",
        "counsellor-never-seen",
        "not-a-counsellor",
    ],
)
async def test_other_replies_are_responses_even_when_approved(
    agent_sender: FacebookSender, platform: FakePlatform, author: str, last_seen: float | None
) -> None:
    seen = hours_ago(last_seen) if last_seen is not None else None
    await agent_sender.send(delivery(Reply("Gọi 111 nhé."), author=author, last_seen=seen))
    [body] = sent(platform)
    assert body["messaging_type"] == "RESPONSE"
    assert "tag" not in body


async def test_every_part_of_a_late_counsellor_reply_is_tagged(
    agent_sender: FacebookSender, platform: FakePlatform
) -> None:
    await agent_sender.send(
        delivery(Reply(long_text()), author="counsellor", last_seen=hours_ago(30))
    )
    bodies = sent(platform)
    assert len(bodies) == 3
    assert all((b["messaging_type"], b["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT") for b in bodies)


# -- Graph errors -----------------------------------------------------------------------------


async def failure(
    sender: FacebookSender, platform: FakePlatform, status: int, body: Any
) -> DeliveryError:
    platform.fail_next(SEND, status, body)
    with pytest.raises(DeliveryError) as raised:
        await sender.send(delivery(Reply("xin chào")))
    assert sent(platform) == []
    assert PAGE_TOKEN not in raised.value.reason
    return raised.value


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, {"message": "Calls to this api have exceeded the rate limit.", "code": 613}),
        (400, {"message": "An unknown error occurred", "code": 1}),
        (400, {"message": "Application request limit reached", "code": 4}),
        (403, {"message": "User request limit reached", "code": 17}),
        (400, {"message": "Temporary send failure", "code": 2, "is_transient": True}),
        (400, {"message": "Something odd", "code": 123456, "is_transient": True}),
        (500, {"message": "Internal error", "code": 1200}),
    ],
    ids=["613", "1-unknown", "4-app-limit", "17-user-limit", "2-transient", "transient", "1200"],
)
async def test_temporary_graph_errors_are_retried(
    sender: FacebookSender, platform: FakePlatform, status: int, error: dict[str, Any]
) -> None:
    failed = await failure(sender, platform, status, {"error": {"type": "OAuthException", **error}})
    assert failed.retryable
    assert not failed.deferred
    assert f"code {error['code']}" in failed.reason


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, {"message": "(#100) The parameter recipient is required", "code": 100}),
        (
            400,
            {
                "message": "(#10) This message is sent outside of allowed window.",
                "code": 10,
                "error_subcode": 2018278,
            },
        ),
        (
            400,
            {
                "message": "(#551) This person isn't available right now.",
                "code": 551,
                "error_subcode": 1545041,
            },
        ),
        (401, {"message": "Error validating access token", "code": 190}),
    ],
    ids=["100-bad-parameter", "10-outside-window", "551-unavailable", "190-bad-token"],
)
async def test_permanent_graph_errors_are_not_retried(
    sender: FacebookSender, platform: FakePlatform, status: int, error: dict[str, Any]
) -> None:
    failed = await failure(sender, platform, status, {"error": {"type": "OAuthException", **error}})
    assert not failed.retryable
    assert f"code {error['code']}" in failed.reason
    if "error_subcode" in error:
        assert f"/{error['error_subcode']}" in failed.reason


@pytest.mark.parametrize(
    "body",
    [{}, {"error": "Service Unavailable"}, {"error": {"code": "1"}}, ["nope"]],
    ids=["empty", "error-string", "code-string", "list"],
)
async def test_a_server_error_is_retried_whatever_its_body(
    sender: FacebookSender, platform: FakePlatform, body: Any
) -> None:
    failed = await failure(sender, platform, 500, body)
    assert failed.retryable
    assert "500" in failed.reason


async def test_a_client_error_without_a_graph_code_is_not_retried(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    failed = await failure(sender, platform, 404, {"error": "no such endpoint"})
    assert not failed.retryable


async def test_a_page_without_an_access_token_is_refused_for_good(
    platform: FakePlatform,
) -> None:
    made = FacebookSender(platform.graph_url, "", human_agent=False, rate=fast())
    try:
        with pytest.raises(DeliveryError) as raised:
            await made.send(delivery(Reply("xin chào")))
    finally:
        await made.close()
    assert not raised.value.retryable  # the fake answers code 104: fix the configuration


OK = {"recipient_id": PSID, "message_id": "m_ok"}


class ScriptedGraph:
    """A Send API answering from a script, with headers (the fake platform cannot send
    Retry-After): each answer once, then 200s; every request is kept."""

    def __init__(self, answers: list[tuple[int, Any, dict[str, str]]]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body, headers = self.answers.pop(0) if self.answers else (200, OK, {})
        return httpx.Response(status, json=body, headers=headers)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    def sender(self, human_agent: bool = False) -> FacebookSender:
        return FacebookSender(
            "https://graph.example/v21.0",
            PAGE_TOKEN,
            human_agent=human_agent,
            rate=fast(),
            transport=httpx.MockTransport(self.handle),
        )


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, {}), (429, {"error": {"code": 613}}), (400, {"error": {"code": 4}})],
    ids=["429", "429-with-613", "400-code-4"],
)
async def test_a_throttled_send_waits_as_long_as_retry_after_says(
    status: int, body: dict[str, Any]
) -> None:
    graph = ScriptedGraph([(status, body, {"Retry-After": "7"})])
    made = graph.sender()
    try:
        with pytest.raises(DeliveryError) as raised:
            await made.send(delivery(Reply("xin chào")))
    finally:
        await made.close()
    assert raised.value.retryable
    assert raised.value.retry_after == 7
    [request] = graph.requests
    assert request.url.params["access_token"] == PAGE_TOKEN


async def test_a_429_without_retry_after_is_retried_at_the_outbox_pace() -> None:
    graph = ScriptedGraph([(429, {}, {})])
    made = graph.sender()
    try:
        with pytest.raises(DeliveryError) as raised:
            await made.send(delivery(Reply("xin chào")))
    finally:
        await made.close()
    assert raised.value.retryable and raised.value.retry_after is None


async def test_an_unreachable_graph_api_is_retried_without_leaking_the_token() -> None:
    closed = f"http://127.0.0.1:{free_port()}/graph/v21.0"  # nobody listens there
    made = FacebookSender(closed, PAGE_TOKEN, human_agent=False, rate=fast())
    try:
        with pytest.raises(DeliveryError) as raised:
            await made.send(delivery(Reply("xin chào")))
    finally:
        await made.close()
    assert raised.value.retryable
    assert raised.value.reason == "facebook unreachable: ConnectError"
    assert PAGE_TOKEN not in str(raised.value)


async def test_after_a_retryable_failure_the_same_delivery_goes_through(
    sender: FacebookSender, platform: FakePlatform
) -> None:
    item = delivery(GREETING)
    platform.fail_next(SEND, 500)
    with pytest.raises(DeliveryError):
        await sender.send(item)
    await sender.send(item)
    assert [c.status for c in platform.calls_to(SEND)] == [500, 200]
    assert len(sent(platform)) == 1
