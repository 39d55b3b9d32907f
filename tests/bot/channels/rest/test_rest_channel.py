"""The REST channel (``POST /webhooks/rest/webhook``) against a real ``donghanh serve``.

One server per module (and per database): every test uses its own random sender ids, so
the tests don't need separate servers and the module stays fast.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml
from conftest import (
    REPO,
    LiveServer,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

WEBHOOK = "/webhooks/rest/webhook"
REQUEST_MAX_BYTES = 256 * 1024  # Settings.request_max_bytes
MAX_MESSAGE_CHARS = 20_000  # the REST channel's field limit
GIBBERISH = "qwzx plorf vbnm"  # far below the NLU threshold: always nlu_fallback

RESPONSES: dict[str, str] = {
    name: variants[0]["text"]
    for name, variants in yaml.safe_load(
        (REPO / "data" / "responses.yml").read_text(encoding="utf-8")
    )["responses"].items()
}
ALL_REPLY_TEXTS = frozenset(RESPONSES.values())


# -- one server for the module (conftest's module_server) ------------------------------------


@pytest.fixture(scope="module")
def server(module_server: LiveServer) -> LiveServer:
    assert module_server.settings.request_max_bytes == REQUEST_MAX_BYTES
    return module_server


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


def new_sender(label: str = "rest") -> str:
    return f"{label}-{uuid.uuid4().hex}"


def say(client: httpx.Client, sender: str, message: str) -> list[dict[str, Any]]:
    response = client.post(WEBHOOK, json={"sender": sender, "message": message})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    replies = response.json()
    assert isinstance(replies, list)
    for reply in replies:
        assert reply["recipient_id"] == sender
        assert isinstance(reply["text"], str) and reply["text"].strip()
    return replies


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [reply["text"] for reply in replies]


def assert_answered_normally(client: httpx.Client, sender: str) -> None:
    """The next ordinary message from ``sender`` gets the ordinary greeting."""
    assert texts(say(client, sender, "xin chào")) == [RESPONSES["utter_greet"]]


# -- a conversation ---------------------------------------------------------------------------


def test_greeting_is_a_rasa_reply_list_with_buttons(client: httpx.Client) -> None:
    sender = new_sender()
    replies = say(client, sender, "xin chào")

    assert len(replies) == 1
    (greeting,) = replies
    assert set(greeting) == {"recipient_id", "text", "buttons"}
    assert greeting["recipient_id"] == sender
    assert greeting["text"].startswith("Xin chào")
    assert greeting["buttons"], "the greeting offers buttons"
    for button in greeting["buttons"]:
        assert set(button) == {"title", "payload"}
        assert button["title"].strip() and button["payload"].startswith("/")
    assert "/request_counsellor" in [b["payload"] for b in greeting["buttons"]]


def test_a_button_payload_sent_back_is_understood(client: httpx.Client) -> None:
    sender = new_sender()
    greeting = say(client, sender, "xin chào")[0]
    payload = next(b["payload"] for b in greeting["buttons"] if "tư vấn" in b["title"])
    assert payload == "/request_counsellor"

    replies = say(client, sender, payload)

    assert texts(replies) == [RESPONSES["utter_handoff_consent"]]
    assert "111" in replies[0]["text"]


@pytest.mark.parametrize(
    "message",
    ["cứu tôi với tôi bị nhốt", "cuu toi voi toi bi nhot"],
    ids=["with-diacritics", "without-diacritics"],
)
def test_danger_gets_113_and_111_at_once(client: httpx.Client, message: str) -> None:
    replies = say(client, new_sender(), message)

    assert replies, "a person in danger must get an answer"
    first = replies[0]["text"]
    assert "113" in first and "111" in first


def test_two_stage_fallback_rephrase_then_counsellor_and_111(client: httpx.Client) -> None:
    sender = new_sender()

    first = say(client, sender, GIBBERISH)
    second = say(client, sender, GIBBERISH)

    assert texts(first) == [RESPONSES["utter_rephrase"]]
    assert "nói lại" in first[0]["text"]
    assert texts(second) == [RESPONSES["utter_fallback_handoff"]]
    assert "111" in second[0]["text"]
    assert [b["payload"] for b in second[0]["buttons"]] == ["/request_counsellor"]


def test_channel_health_route(client: httpx.Client) -> None:
    response = client.get("/webhooks/rest/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# -- bad input: a clear 4xx JSON error, and the sender is still answered afterwards -----------


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


BodyFor = Callable[[str], bytes]

BAD_INPUT: list[Any] = [
    pytest.param(
        lambda s: b'{"sender": "' + s.encode() + b'", "message": "xin ch', 400, id="invalid-json"
    ),
    pytest.param(lambda s: b"", 400, id="empty-body"),
    pytest.param(lambda s: _json([{"sender": s, "message": "xin chào"}]), 400, id="json-array"),
    pytest.param(lambda s: _json("xin chào"), 400, id="json-string"),
    pytest.param(lambda s: _json(42), 400, id="json-number"),
    pytest.param(lambda s: b"null", 400, id="json-null"),
    pytest.param(lambda s: _json({"message": "xin chào"}), 400, id="missing-sender"),
    pytest.param(lambda s: _json({"sender": s}), 400, id="missing-message"),
    pytest.param(
        lambda s: _json({"sender": 8888777766, "message": "xin chào"}), 400, id="sender-number"
    ),
    pytest.param(lambda s: _json({"sender": None, "message": "xin chào"}), 400, id="sender-null"),
    pytest.param(lambda s: _json({"sender": [s], "message": "xin chào"}), 400, id="sender-list"),
    pytest.param(
        lambda s: _json({"sender": {"id": s}, "message": "xin chào"}), 400, id="sender-object"
    ),
    pytest.param(lambda s: _json({"sender": s, "message": 42}), 400, id="message-number"),
    pytest.param(lambda s: _json({"sender": s, "message": None}), 400, id="message-null"),
    pytest.param(
        lambda s: _json({"sender": s, "message": {"text": "xin chào"}}), 400, id="message-object"
    ),
    pytest.param(lambda s: _json({"sender": s, "message": True}), 400, id="message-bool"),
    pytest.param(lambda s: _json({"sender": "", "message": "xin chào"}), 400, id="empty-sender"),
    pytest.param(
        lambda s: _json({"sender": " \t\n", "message": "xin chào"}), 400, id="blank-sender"
    ),
    pytest.param(
        lambda s: _json({"sender": s + "x" * 256, "message": "xin chào"}), 400, id="sender-too-long"
    ),
    pytest.param(
        lambda s: b'\xff\xfe{"sender": "' + s.encode() + b'", "message": "hi"}',
        400,
        id="non-utf8-bytes",
    ),
    pytest.param(
        lambda s: b'{"sender": "' + s.encode() + b'", "message": "xin ch\xe0o"}',
        400,
        id="latin1-bytes",
    ),
    pytest.param(
        lambda s: b'{"sender": "' + s.encode() + b'", "message": "\\ud800"}',
        400,
        id="lone-surrogate-in-message",
    ),
    pytest.param(
        lambda s: b'{"sender": "' + s.encode() + b'\\udfff", "message": "hi"}',
        400,
        id="lone-surrogate-in-sender",
    ),
    pytest.param(
        lambda s: _json({"sender": s, "message": "x" * REQUEST_MAX_BYTES}),
        413,
        id="body-over-size-limit",
    ),
    # Python's json module raises RecursionError (not ValueError) past ~1000 levels.
    pytest.param(lambda s: b"[" * 100_000 + b"]" * 100_000, 400, id="deeply-nested-json"),
    pytest.param(
        lambda s: (
            b'{"sender": "'
            + s.encode()
            + b'", "message": "hi", "metadata": '
            + b"[" * 5_000
            + b"]" * 5_000
            + b"}"
        ),
        400,
        id="deeply-nested-extra-field",
    ),
]


@pytest.mark.parametrize(("body_for", "status"), BAD_INPUT)
def test_bad_input_is_a_clear_json_error_and_harmless(
    client: httpx.Client, body_for: BodyFor, status: int
) -> None:
    sender = new_sender("bad")
    response = client.post(
        WEBHOOK,
        content=body_for(sender),
        # The server may drop a connection after rejecting a body: don't reuse this one.
        headers={"Content-Type": "application/json", "Connection": "close"},
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str) and body["error"].strip()
    assert "Traceback" not in response.text
    assert_answered_normally(client, sender)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"],
    ids=["no-content-type", "text-plain", "form-urlencoded", "octet-stream"],
)
def test_valid_body_with_another_content_type_still_works(
    client: httpx.Client, content_type: str | None
) -> None:
    # Rasa's REST channel reads the body with Sanic's request.json, which ignores the
    # Content-Type header; clients written for Rasa rely on that, so we accept it too.
    sender = new_sender("ctype")
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(
        WEBHOOK, content=_json({"sender": sender, "message": "xin chào"}), headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            "recipient_id": sender,
            "text": RESPONSES["utter_greet"],
            "buttons": [
                {"title": "Tôi đang gặp nguy hiểm", "payload": "/emergency"},
                {"title": "Gặp tư vấn viên", "payload": "/request_counsellor"},
            ],
        }
    ]


# -- odd but valid messages: always a polite reply, never a 500 -------------------------------


POLITE: list[Any] = [
    pytest.param("", "utter_empty", id="empty-string"),
    pytest.param(" \t\n  ", "utter_empty", id="whitespace-only"),
    pytest.param("\u200b\u200d\x00", "utter_empty", id="invisible-only"),
    pytest.param("🙏🙏😭", None, id="emoji-only"),
    pytest.param("<script>alert(1)</script>", None, id="html-script"),
    pytest.param("'; DROP TABLE messages; --", None, id="sql-looking"),
    pytest.param("a\x00b\x01\x07\x1b[31mc\x7f\r\n", None, id="control-characters"),
    pytest.param("你好 สวัสดี xin chào", None, id="mixed-scripts"),
    pytest.param("x" * MAX_MESSAGE_CHARS, "utter_too_long", id="20000-chars"),
]


@pytest.mark.parametrize(("message", "expected_first"), POLITE)
def test_odd_messages_get_a_polite_reply(
    client: httpx.Client, message: str, expected_first: str | None
) -> None:
    sender = new_sender("odd")
    replies = say(client, sender, message)

    assert replies, "every message gets an answer"
    assert set(texts(replies)) <= ALL_REPLY_TEXTS, "only the bot's own Vietnamese replies"
    if expected_first is not None:
        assert replies[0]["text"] == RESPONSES[expected_first]
    if expected_first == "utter_too_long":
        assert replies[0]["text"].startswith("Tin nhắn hơi dài")
        assert len(replies) == 2, "the note, then the answer to the first part"
    assert_answered_normally(client, sender)


def test_sql_looking_text_is_only_text(client: httpx.Client) -> None:
    sender = new_sender("sql")

    first = say(client, sender, "'; DROP TABLE messages; DELETE FROM contacts; --")
    second = say(client, sender, GIBBERISH)

    # Not understood, so the fallback counter went to 1 and was stored in the context;
    # the second miss reads it back and hands over: the tables and the row are intact.
    assert texts(first) == [RESPONSES["utter_rephrase"]]
    assert texts(second) == [RESPONSES["utter_fallback_handoff"]]


def test_a_message_one_char_over_the_field_limit_is_a_clear_4xx(client: httpx.Client) -> None:
    sender = new_sender("long")
    response = client.post(WEBHOOK, json={"sender": sender, "message": "x" * 20_001})

    assert 400 <= response.status_code < 500
    assert response.status_code == 400
    error = response.json()["error"]
    assert "message" in error and "20000" in error
    assert_answered_normally(client, sender)


# -- fuzzing -----------------------------------------------------------------------------------

_json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)
)
_json_values = st.recursive(
    _json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_rest_shaped = st.fixed_dictionaries(
    {"sender": st.one_of(st.text(max_size=40), _json_values)},
    optional={"message": st.one_of(st.text(max_size=200), _json_values), "extra": _json_values},
)
_bodies = st.one_of(
    _json_values.map(_json),
    _rest_shaped.map(_json),
    st.binary(max_size=300),
)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(body=_bodies)
def test_arbitrary_bodies_never_cause_a_server_error(client: httpx.Client, body: bytes) -> None:
    response = client.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code < 500, (body, response.status_code, response.text)
    data = response.json()
    if response.status_code == 200:
        assert isinstance(data, list) and data
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(data["error"], str)


# -- many people at once ----------------------------------------------------------------------

# Each sender's conversation depends on that sender's own state (the fallback counter),
# so mixed-up contexts or replies show as wrong texts, not only as wrong recipient ids.
_SCRIPTS: list[list[tuple[str, str]]] = [
    [("xin chào", "utter_greet"), (GIBBERISH, "utter_rephrase"),
     (GIBBERISH, "utter_fallback_handoff")],
    [(GIBBERISH, "utter_rephrase"), ("/emergency", "utter_emergency"),
     (GIBBERISH, "utter_rephrase")],
    [("/request_counsellor", "utter_handoff_consent"), (GIBBERISH, "utter_rephrase"),
     ("/goodbye", "utter_goodbye")],
]  # fmt: skip


async def test_twenty_senders_in_parallel_each_get_their_own_replies(server: LiveServer) -> None:
    senders = [new_sender(f"par{i}") for i in range(20)]
    limits = httpx.Limits(max_connections=40)

    async def conversation(http: httpx.AsyncClient, index: int) -> list[tuple[int, Any]]:
        results = []
        for message, _ in _SCRIPTS[index % len(_SCRIPTS)]:
            response = await http.post(WEBHOOK, json={"sender": senders[index], "message": message})
            results.append((response.status_code, response.json()))
        return results

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
        outcomes = await asyncio.gather(*(conversation(http, i) for i in range(len(senders))))

    for index, results in enumerate(outcomes):
        script = _SCRIPTS[index % len(_SCRIPTS)]
        assert len(results) == len(script)
        for (status, replies), (message, expected) in zip(results, script, strict=True):
            assert status == 200, replies
            assert isinstance(replies, list), "one reply list per request"
            assert [r["recipient_id"] for r in replies] == [senders[index]]
            assert texts(replies) == [RESPONSES[expected]], (senders[index], message)


async def test_concurrent_messages_from_one_sender_each_get_their_own_reply(
    server: LiveServer,
) -> None:
    """Rasa's REST channel answers each request with the replies to *its* message.

    A person who taps two buttons quickly, or a bridge that forwards messages in
    parallel, must not get an empty answer to one message and both answers on the other.
    """
    payloads = {
        "/greet": RESPONSES["utter_greet"],
        "/emergency": RESPONSES["utter_emergency"],
        "/request_counsellor": RESPONSES["utter_handoff_consent"],
    }
    senders = [new_sender(f"same{i}") for i in range(10)]
    limits = httpx.Limits(max_connections=40)

    async def post(http: httpx.AsyncClient, sender: str, message: str) -> Any:
        response = await http.post(WEBHOOK, json={"sender": sender, "message": message})
        assert response.status_code == 200, response.text
        return response.json()

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
        answers = await asyncio.gather(
            *(post(http, sender, message) for sender in senders for message in payloads)
        )

    by_request = iter(answers)
    misrouted = []
    for sender in senders:
        all_texts = []
        for message, expected in payloads.items():
            replies = next(by_request)
            assert all(r["recipient_id"] == sender for r in replies)
            all_texts.extend(texts(replies))
            if texts(replies) != [expected]:
                misrouted.append((message, texts(replies)))
        # Whatever happens, every message is answered exactly once.
        assert sorted(all_texts) == sorted(payloads.values())
    assert not misrouted, f"replies landed on another request of the same sender: {misrouted}"
