"""Messenger's webhook read without a server: ``check_signature`` (X-Hub-Signature-256
over the raw body with the app secret), ``parse_event`` (one ``messaging`` item: text,
quick reply, postback, attachments, echoes and receipts) and ``parse_body`` (the whole
``{"object": "page", "entry": [...]}`` batch)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.channels.common import media_text
from bot.channels.facebook.handler import (
    CHANNEL,
    GET_STARTED,
    MAX_TEXT_CHARS,
    check_signature,
    parse_body,
    parse_event,
)
from bot.domain import InboundMessage

APP_SECRET = "fb-app-secret"
PAGE_ID = "104732915820467"
PSID = "7245019384699001"
TIMESTAMP_MS = 1767600000000
MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP"


def signed(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event(**fields: Any) -> dict[str, Any]:
    """One ``messaging`` item from the person ``PSID`` to the page."""
    return {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": TIMESTAMP_MS,
        **fields,
    }


def page_body(*events: dict[str, Any], obj: str = "page") -> dict[str, Any]:
    return {
        "object": obj,
        "entry": [{"id": PAGE_ID, "time": TIMESTAMP_MS + 50, "messaging": list(events)}],
    }


BODY = json.dumps(
    page_body(event(message={"mid": MID, "text": "tôi bị giữ hộ chiếu"})), ensure_ascii=False
).encode("utf-8")


# -- check_signature --------------------------------------------------------------------------


def test_a_body_signed_with_the_app_secret_passes() -> None:
    assert check_signature(APP_SECRET, BODY, signed(BODY)) is None


def test_a_signature_made_with_another_secret_is_forbidden() -> None:
    assert check_signature(APP_SECRET, BODY, signed(BODY, "another-app-secret")) == 403


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_signature_is_unauthorised(header: str | None) -> None:
    assert check_signature(APP_SECRET, BODY, header) == 401


@pytest.mark.parametrize(
    "header",
    [
        signed(BODY).removeprefix("sha256="),  # the digest without its prefix
        "sha1=" + hmac.new(APP_SECRET.encode(), BODY, hashlib.sha1).hexdigest(),  # old header
        signed(BODY).replace("sha256=", "sha512="),
        signed(BODY).replace("sha256=", "SHA256="),
        " " + signed(BODY),
    ],
    ids=["no-prefix", "sha1", "sha512-label", "uppercase-prefix", "leading-space"],
)
def test_a_signature_without_the_sha256_prefix_is_forbidden(header: str) -> None:
    assert check_signature(APP_SECRET, BODY, header) == 403


def test_the_hex_digest_may_be_uppercase() -> None:
    header = "sha256=" + signed(BODY).removeprefix("sha256=").upper()
    assert check_signature(APP_SECRET, BODY, header) is None


def test_a_signature_of_a_different_body_is_forbidden() -> None:
    other = BODY.replace("hộ chiếu".encode(), "giấy tờ".encode())
    assert other != BODY
    assert check_signature(APP_SECRET, BODY, signed(other)) == 403


def test_the_signature_covers_the_raw_bytes_not_the_json_they_mean() -> None:
    """The same JSON written with other spacing is another body: its signature differs."""
    respaced = json.dumps(json.loads(BODY), ensure_ascii=False, indent=1).encode("utf-8")
    assert json.loads(respaced) == json.loads(BODY)
    assert check_signature(APP_SECRET, BODY, signed(respaced)) == 403
    assert check_signature(APP_SECRET, respaced, signed(respaced)) is None


@pytest.mark.parametrize(
    "header",
    [signed(BODY)[:-1], signed(BODY) + "0", "sha256=", "sha256=" + "0" * 64],
    ids=["truncated", "extended", "empty-digest", "zeros"],
)
def test_a_damaged_digest_is_forbidden(header: str) -> None:
    assert check_signature(APP_SECRET, BODY, header) == 403


def test_an_empty_body_still_needs_its_own_signature() -> None:
    assert check_signature(APP_SECRET, b"", signed(b"")) is None
    assert check_signature(APP_SECRET, b"", signed(BODY)) == 403


# -- parse_event: messages --------------------------------------------------------------------


def test_a_text_message_becomes_an_inbound_message() -> None:
    parsed = parse_event(event(message={"mid": MID, "text": "tôi bị giữ hộ chiếu"}))
    assert parsed == InboundMessage(
        CHANNEL,
        PSID,
        "tôi bị giữ hộ chiếu",
        MID,
        datetime.fromtimestamp(TIMESTAMP_MS / 1000, tz=UTC),
    )
    assert parsed.channel == "facebook"
    assert parsed.received_at == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_a_quick_reply_tap_counts_as_its_payload_not_its_title() -> None:
    parsed = parse_event(
        event(
            message={
                "mid": MID,
                "text": "Gặp tư vấn viên",
                "quick_reply": {"payload": "/request_counsellor"},
            }
        )
    )
    assert parsed is not None
    assert parsed.text == "/request_counsellor"
    assert parsed.platform_message_id == MID


@pytest.mark.parametrize("quick_reply", [{"payload": ""}, {}, "not-a-dict", {"payload": 5}])
def test_a_quick_reply_without_a_usable_payload_falls_back_to_the_text(
    quick_reply: Any,
) -> None:
    parsed = parse_event(event(message={"mid": MID, "text": "1", "quick_reply": quick_reply}))
    assert parsed is not None and parsed.text == "1"


def test_a_very_long_text_is_cut_to_the_limit() -> None:
    parsed = parse_event(event(message={"mid": MID, "text": "a" * (MAX_TEXT_CHARS + 500)}))
    assert parsed is not None
    assert len(parsed.text) == MAX_TEXT_CHARS


def test_an_echo_of_the_pages_own_message_is_ignored() -> None:
    echo = {
        "sender": {"id": PAGE_ID},
        "recipient": {"id": PSID},
        "timestamp": TIMESTAMP_MS,
        "message": {
            "is_echo": True,
            "app_id": 1517776481860111,
            "mid": MID,
            "text": "Xin chào, mình là Đồng Hành",
        },
    }
    assert parse_event(echo) is None


@pytest.mark.parametrize(
    "message",
    [{"text": "xin chào"}, {"mid": "", "text": "xin chào"}, {"mid": 42, "text": "xin chào"}],
    ids=["no-mid", "empty-mid", "numeric-mid"],
)
def test_a_message_without_a_mid_is_not_taken(message: dict[str, Any]) -> None:
    """Without its id a redelivery could not be recognised."""
    assert parse_event(event(message=message)) is None


@pytest.mark.parametrize("message", [{"mid": MID}, {"mid": MID, "text": ""}])
def test_a_message_with_nothing_to_read_is_not_taken(message: dict[str, Any]) -> None:
    assert parse_event(event(message=message)) is None


@pytest.mark.parametrize(
    "sender",
    [None, {}, {"id": ""}, {"id": 7245019384699001}, "7245019384699001"],
    ids=["none", "empty", "empty-id", "numeric-id", "string"],
)
def test_an_event_without_a_sender_id_string_is_not_taken(sender: Any) -> None:
    item = event(message={"mid": MID, "text": "xin chào"})
    item["sender"] = sender
    assert parse_event(item) is None


@pytest.mark.parametrize(
    "raw",
    ["1767600000000", -1, 0, 10**15, None],
    ids=["string", "negative", "zero", "too-large", "none"],
)
def test_an_unusable_timestamp_leaves_the_time_to_the_server(raw: Any) -> None:
    item = event(message={"mid": MID, "text": "xin chào"})
    item["timestamp"] = raw
    parsed = parse_event(item)
    assert parsed is not None
    assert parsed.text == "xin chào" and parsed.received_at is None


# -- parse_event: attachments -----------------------------------------------------------------


def _attachment(kind: str, **payload: Any) -> dict[str, Any]:
    return {"type": kind, "payload": {"url": "https://scontent.xx.fbcdn.net/x.jpg", **payload}}


def test_a_sticker_is_a_sticker_not_an_image() -> None:
    sticker_id = 369239263222822
    parsed = parse_event(
        event(
            message={
                "mid": MID,
                "attachments": [_attachment("image", sticker_id=sticker_id)],
                "sticker_id": sticker_id,
            }
        )
    )
    assert parsed is not None
    assert parsed.text == media_text("sticker") == '/user_sent_media{"kind": "sticker"}'


@pytest.mark.parametrize("kind", ["image", "audio", "video", "file", "fallback"])
def test_an_attachment_becomes_the_media_payload_of_its_kind(kind: str) -> None:
    parsed = parse_event(event(message={"mid": MID, "attachments": [_attachment(kind)]}))
    assert parsed is not None
    assert parsed.text == f'/user_sent_media{{"kind": "{kind}"}}'


def test_a_location_is_stored_as_media_never_as_coordinates() -> None:
    location = {
        "type": "location",
        "title": "Vị trí của Lan",
        "payload": {"coordinates": {"lat": 21.0285, "long": 105.8542}},
    }
    parsed = parse_event(event(message={"mid": MID, "attachments": [location]}))
    assert parsed is not None
    assert parsed.text == '/user_sent_media{"kind": "location"}'
    assert "21.0285" not in parsed.text and "Lan" not in parsed.text


def test_only_the_first_of_several_attachments_names_the_kind() -> None:
    parsed = parse_event(
        event(message={"mid": MID, "attachments": [_attachment("audio"), _attachment("image")]})
    )
    assert parsed is not None and parsed.text == media_text("audio")


def test_text_sent_with_an_attachment_wins_over_the_attachment() -> None:
    parsed = parse_event(
        event(message={"mid": MID, "text": "xem ảnh này", "attachments": [_attachment("image")]})
    )
    assert parsed is not None and parsed.text == "xem ảnh này"


@pytest.mark.parametrize(
    ("attachments", "kind"),
    [
        (["not-a-dict"], "other"),
        ([{"payload": {}}], "other"),
        ([{"type": 'x"}, "evil": {"'}], "xevil"),
        ([{"type": "a" * 100}], "a" * 32),
    ],
    ids=["not-a-dict", "no-type", "quotes", "too-long"],
)
def test_an_odd_attachment_type_cannot_break_out_of_the_media_payload(
    attachments: list[Any], kind: str
) -> None:
    parsed = parse_event(event(message={"mid": MID, "attachments": attachments}))
    assert parsed is not None
    assert parsed.text == f'/user_sent_media{{"kind": "{kind}"}}'
    assert json.loads(parsed.text.removeprefix("/user_sent_media")) == {"kind": kind}


@pytest.mark.parametrize("attachments", [[], "image", None])
def test_no_usable_attachments_means_nothing_to_take(attachments: Any) -> None:
    assert parse_event(event(message={"mid": MID, "attachments": attachments})) is None


# -- parse_event: postbacks -------------------------------------------------------------------


def test_the_get_started_postback_is_a_greeting() -> None:
    parsed = parse_event(
        event(postback={"mid": MID, "title": "Get Started", "payload": "GET_STARTED"})
    )
    assert parsed is not None
    assert parsed.text == GET_STARTED == "/greet"
    assert parsed.platform_message_id == MID


def test_a_postback_with_an_intent_payload_is_that_intent() -> None:
    parsed = parse_event(
        event(postback={"mid": MID, "title": "Gặp tư vấn viên", "payload": "/request_counsellor"})
    )
    assert parsed is not None and parsed.text == "/request_counsellor"


@pytest.mark.parametrize("postback", [{"title": "Bắt đầu"}, {"payload": ""}, {"payload": 7}])
def test_a_postback_without_our_payload_is_a_greeting(postback: dict[str, Any]) -> None:
    parsed = parse_event(event(postback=postback))
    assert parsed is not None and parsed.text == "/greet"


def test_a_postback_without_a_mid_gets_an_id_stable_across_redeliveries() -> None:
    first = parse_event(event(postback={"payload": "GET_STARTED"}))
    again = parse_event(event(postback={"payload": "GET_STARTED"}))
    later = parse_event({**event(postback={"payload": "GET_STARTED"}), "timestamp": 1767600009999})
    assert first is not None and again is not None and later is not None
    assert first.platform_message_id == again.platform_message_id
    assert first.platform_message_id != later.platform_message_id
    assert first.platform_message_id != MID


# -- parse_event: what is only acknowledged ---------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"delivery": {"mids": [MID], "watermark": TIMESTAMP_MS}},
        {"read": {"watermark": TIMESTAMP_MS}},
        {"reaction": {"reaction": "love", "emoji": "❤️", "action": "react", "mid": MID}},
        {"optin": {"type": "notification_messages", "payload": "/greet"}},
        {"referral": {"ref": "poster-2026", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
        {"pass_thread_control": {"new_owner_app_id": "263902037430900", "metadata": "x"}},
        {"message": "tôi bị giữ hộ chiếu"},
        {"postback": "GET_STARTED"},
        {},
    ],
    ids=[
        "delivery",
        "read",
        "reaction",
        "optin",
        "referral",
        "handover",
        "message-not-a-dict",
        "postback-not-a-dict",
        "nothing",
    ],
)
def test_receipts_reactions_and_other_events_are_only_acknowledged(
    fields: dict[str, Any],
) -> None:
    assert parse_event(event(**fields)) is None


# -- parse_body --------------------------------------------------------------------------------


def test_every_message_of_every_entry_is_read_in_order() -> None:
    second_psid = "7245019384699002"
    body = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": TIMESTAMP_MS,
                "messaging": [
                    event(message={"mid": "m_1", "text": "xin chào"}),
                    event(message={"mid": "m_2", "text": "tôi bị giữ hộ chiếu"}),
                ],
            },
            {
                "id": PAGE_ID,
                "time": TIMESTAMP_MS,
                "messaging": [
                    {
                        **event(postback={"mid": "m_3", "payload": "GET_STARTED"}),
                        "sender": {"id": second_psid},
                    }
                ],
            },
        ],
    }
    parsed = list(parse_body(body))
    assert [(m.sender_id, m.text, m.platform_message_id) for m in parsed] == [
        (PSID, "xin chào", "m_1"),
        (PSID, "tôi bị giữ hộ chiếu", "m_2"),
        (second_psid, "/greet", "m_3"),
    ]


def test_echoes_and_receipts_in_a_batch_are_skipped() -> None:
    echo = event(message={"is_echo": True, "mid": "m_echo", "text": "Xin chào"})
    body = page_body(
        echo,
        event(delivery={"mids": ["m_echo"], "watermark": TIMESTAMP_MS}),
        event(message={"mid": "m_real", "text": "cứu tôi"}),
        event(read={"watermark": TIMESTAMP_MS}),
    )
    assert [m.platform_message_id for m in parse_body(body)] == ["m_real"]


@pytest.mark.parametrize("obj", ["instagram", "user", "whatsapp_business_account", "", None])
def test_a_body_that_is_not_about_a_page_is_ignored(obj: Any) -> None:
    body = page_body(event(message={"mid": MID, "text": "tôi bị giữ hộ chiếu"}), obj=obj)
    assert list(parse_body(body)) == []


@pytest.mark.parametrize(
    "body",
    [
        {"object": "page"},
        {"object": "page", "entry": None},
        {"object": "page", "entry": {"id": PAGE_ID}},
        {"object": "page", "entry": ["x", 3, None]},
        {"object": "page", "entry": [{"id": PAGE_ID}]},
        {"object": "page", "entry": [{"id": PAGE_ID, "messaging": {"sender": {"id": PSID}}}]},
        {"object": "page", "entry": [{"id": PAGE_ID, "messaging": ["x", None, 1]}]},
        # Messenger sends "changes" (feed, comments) to the same webhook: not chat messages
        {"object": "page", "entry": [{"id": PAGE_ID, "changes": [{"field": "feed"}]}]},
    ],
    ids=[
        "no-entry",
        "entry-null",
        "entry-object",
        "entry-items-not-objects",
        "no-messaging",
        "messaging-object",
        "messaging-items-not-objects",
        "feed-changes",
    ],
)
def test_a_malformed_batch_yields_nothing_and_raises_nothing(body: dict[str, Any]) -> None:
    assert list(parse_body(body)) == []


def test_a_malformed_entry_does_not_hide_the_good_ones() -> None:
    body = {
        "object": "page",
        "entry": [
            "x",
            {"id": PAGE_ID, "messaging": None},
            {"id": PAGE_ID, "messaging": ["x", event(message={"mid": MID, "text": "xin chào"})]},
        ],
    }
    assert [m.text for m in parse_body(body)] == ["xin chào"]
