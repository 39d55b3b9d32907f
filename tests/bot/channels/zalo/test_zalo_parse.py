"""Zalo OA events in (``bot.channels.zalo.handler``), without a server.

The webhook signature (``mac=`` + SHA-256 of app id + raw body + the body's timestamp +
OA secret key), computed here independently; ``check_request`` on a missing, wrong,
stale (past and future), fresh, timestamp-less and non-JSON request; and
``parse_event`` on every kind of event: text, a tapped button, media, follow, the
events only acknowledged, and broken ones. The payload files of the table-driven
runner are parsed too, so each file's expectation agrees with the parser's.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.channels.common import media_text
from bot.channels.zalo.handler import (
    FOLLOW_TEXT,
    MAX_TEXT_CHARS,
    MEDIA_EVENTS,
    check_request,
    parse_event,
    signature_for,
)

APP_ID = "1234567890"
OA_SECRET = "zalo-oa-secret"
MAX_AGE = 900
USER = "2947018536199990001"
OA = "579745863508352884"
PAYLOADS = Path(__file__).resolve().parent / "payloads"


def expected_signature(app_id: str, body: bytes, timestamp: str, secret: str) -> str:
    """Zalo's documented MAC, written out here rather than taken from the handler."""
    raw = app_id.encode("utf-8") + body + timestamp.encode("utf-8") + secret.encode("utf-8")
    return "mac=" + hashlib.sha256(raw).hexdigest()


def now_ms(offset_seconds: float = 0.0) -> str:
    return str(int((time.time() + offset_seconds) * 1000))


def text_event(text: str = "tôi bị giữ hộ chiếu", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "app_id": APP_ID,
        "user_id_by_app": "5521772797199990001",
        "event_name": "user_send_text",
        "timestamp": now_ms(),
        "sender": {"id": USER},
        "recipient": {"id": OA},
        "message": {"msg_id": "a7c1e3f5b9d29990001", "text": text},
    }
    event.update(overrides)
    return event


def encoded(event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


def signed(event: dict[str, Any], secret: str = OA_SECRET) -> tuple[bytes, str]:
    body = encoded(event)
    return body, expected_signature(APP_ID, body, str(event["timestamp"]), secret)


def check(body: bytes, header: str | None) -> tuple[int, str] | None:
    return check_request(body, header, app_id=APP_ID, secret_key=OA_SECRET, max_age_seconds=MAX_AGE)


# -- the signature ---------------------------------------------------------------------------


def test_signature_matches_zalos_formula_on_vietnamese_bytes() -> None:
    body = encoded(text_event())
    assert "giữ".encode() in body  # raw UTF-8, as Zalo sends it
    timestamp = "1767600001000"
    got = signature_for(APP_ID, body, timestamp, OA_SECRET)
    assert got == expected_signature(APP_ID, body, timestamp, OA_SECRET)
    assert got.startswith("mac=") and len(got) == len("mac=") + 64


@pytest.mark.parametrize(
    "changed",
    [
        ("9876543210", b'{"a": 1}', "1767600001000", OA_SECRET),
        (APP_ID, b'{"a": 2}', "1767600001000", OA_SECRET),
        (APP_ID, b'{"a": 1}', "1767600002000", OA_SECRET),
        (APP_ID, b'{"a": 1}', "1767600001000", "another-oa-secret"),
    ],
    ids=["app_id", "body", "timestamp", "secret"],
)
def test_each_input_changes_the_signature(changed: tuple[str, bytes, str, str]) -> None:
    base = signature_for(APP_ID, b'{"a": 1}', "1767600001000", OA_SECRET)
    assert signature_for(*changed) != base
    assert signature_for(*changed) == expected_signature(*changed)


# -- check_request ----------------------------------------------------------------------------


def test_a_fresh_correctly_signed_event_passes() -> None:
    body, header = signed(text_event())
    assert check(body, header) is None


def test_the_header_is_read_case_and_space_insensitively() -> None:
    body, header = signed(text_event())
    assert check(body, f"  {header.upper()} ") is None


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_signature_is_401(header: str | None) -> None:
    body, _ = signed(text_event())
    assert check(body, header) == (401, "missing signature")


def test_a_missing_signature_is_401_even_for_a_body_that_is_not_json() -> None:
    assert check(b"not json at all", None) == (401, "missing signature")


@pytest.mark.parametrize(
    "header",
    [
        "mac=" + "0" * 64,
        "not-a-mac",
        "mac=",
    ],
)
def test_a_wrong_signature_is_403(header: str) -> None:
    body, _ = signed(text_event())
    assert check(body, header) == (403, "bad signature")


def test_a_signature_made_with_another_secret_is_403() -> None:
    body, header = signed(text_event(), secret="another-oa-secret")
    assert check(body, header) == (403, "bad signature")


def test_a_signature_made_with_another_app_id_is_403() -> None:
    event = text_event()
    body = encoded(event)
    header = expected_signature("9876543210", body, event["timestamp"], OA_SECRET)
    assert check(body, header) == (403, "bad signature")


def test_the_body_cannot_be_changed_under_a_signature() -> None:
    body, header = signed(text_event("xin chào"))
    tampered = body.replace("xin chào".encode(), "tôi bị giữ hộ chiếu".encode())
    assert check(tampered, header) == (403, "bad signature")


def test_the_timestamp_cannot_be_changed_under_a_signature() -> None:
    """A replay with a fresh timestamp in the body no longer matches the signature."""
    old = text_event(timestamp=now_ms(-3600))
    _, header = signed(old)
    refreshed = encoded({**old, "timestamp": now_ms()})
    assert check(refreshed, header) == (403, "bad signature")


@pytest.mark.parametrize("age_seconds", [MAX_AGE + 60, 3600, 30 * 86400])
def test_a_signed_event_from_long_ago_is_refused_as_stale(age_seconds: int) -> None:
    body, header = signed(text_event(timestamp=now_ms(-age_seconds)))
    assert check(body, header) == (403, "stale event")


@pytest.mark.parametrize("ahead_seconds", [MAX_AGE + 60, 3600])
def test_a_signed_event_dated_in_the_future_is_refused(ahead_seconds: int) -> None:
    body, header = signed(text_event(timestamp=now_ms(ahead_seconds)))
    assert check(body, header) == (403, "stale event")


@pytest.mark.parametrize("offset_seconds", [-(MAX_AGE - 60), -5, 5, MAX_AGE - 60])
def test_a_signed_event_within_the_window_passes(offset_seconds: int) -> None:
    body, header = signed(text_event(timestamp=now_ms(offset_seconds)))
    assert check(body, header) is None


def test_a_timestamp_sent_as_a_number_is_verified_the_same() -> None:
    event = text_event()
    event["timestamp"] = int(event["timestamp"])
    body, header = signed(event)
    assert check(body, header) is None


@pytest.mark.parametrize(
    "timestamp",
    [None, "", "soon", "-1767600001000", "1767600001000.5", True, 1.5, {"ms": 1}],
    ids=["absent", "empty", "word", "negative", "fraction", "bool", "float", "object"],
)
def test_a_body_without_a_usable_timestamp_cannot_be_verified(timestamp: Any) -> None:
    event = text_event()
    if timestamp is None:
        del event["timestamp"]
    else:
        event["timestamp"] = timestamp
    body = encoded(event)
    header = expected_signature(APP_ID, body, "" if timestamp is None else str(timestamp), "x")
    assert check(body, header) == (403, "unverifiable body")
    # not even with the signature the sender would have made with our secret
    header = expected_signature(APP_ID, body, "", OA_SECRET)
    assert check(body, header) == (403, "unverifiable body")


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"timestamp": "1767600001000"', b"[1, 2]", b'"1767600001000"', b"\xff"],
    ids=["empty", "text", "truncated", "array", "string", "not-utf8"],
)
def test_a_body_that_is_not_a_json_object_cannot_be_verified(body: bytes) -> None:
    header = expected_signature(APP_ID, body, "", OA_SECRET)
    assert check(body, header) == (403, "unverifiable body")


def test_a_deeply_nested_body_is_refused_not_crashed() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    assert check(body, "mac=" + "0" * 64) == (403, "unverifiable body")


def test_a_signed_absurd_timestamp_is_refused_not_crashed() -> None:
    body, header = signed(text_event(timestamp="9" * 400))
    refused = check(body, header)
    assert refused is not None and refused[0] == 403


# -- parse_event ------------------------------------------------------------------------------


def test_a_text_message_becomes_an_inbound_message() -> None:
    event = text_event(timestamp="1767600001000")
    message = parse_event(event)
    assert message is not None
    assert message.channel == "zalo"
    assert message.sender_id == USER
    assert message.text == "tôi bị giữ hộ chiếu"
    assert message.platform_message_id == "a7c1e3f5b9d29990001"
    assert message.received_at == datetime(2026, 1, 5, 8, 0, 1, tzinfo=UTC)


def test_a_tapped_button_arrives_as_its_payload() -> None:
    message = parse_event(text_event('/handoff_consent{"consent": "full"}'))
    assert message is not None
    assert message.text == '/handoff_consent{"consent": "full"}'


def test_a_numeric_sender_id_is_kept_as_text() -> None:
    message = parse_event(text_event(sender={"id": 2947018536199990001}))
    assert message is not None
    assert message.sender_id == "2947018536199990001"


def test_a_very_long_text_is_cut_at_the_limit() -> None:
    message = parse_event(text_event("a" * (MAX_TEXT_CHARS + 500)))
    assert message is not None
    assert len(message.text) == MAX_TEXT_CHARS


def test_an_unreadable_timestamp_leaves_the_receipt_time_unknown() -> None:
    message = parse_event(text_event(timestamp="later"))
    assert message is not None
    assert message.received_at is None


@pytest.mark.parametrize(("event_name", "kind"), sorted(MEDIA_EVENTS.items()))
def test_media_becomes_the_text_only_turn(event_name: str, kind: str) -> None:
    event = text_event(event_name=event_name)
    event["message"] = {
        "msg_id": "a7c1e3f5b9d29990002",
        "text": "ảnh hợp đồng",  # a caption is not taken as the person's message
        "attachments": [{"type": kind, "payload": {"url": "https://zalo.example/x"}}],
    }
    message = parse_event(event)
    assert message is not None
    assert message.text == media_text(kind)
    assert message.text.startswith("/user_sent_media")
    assert message.platform_message_id == "a7c1e3f5b9d29990002"


def test_a_follow_becomes_a_greeting_deduplicated_by_its_timestamp() -> None:
    event = {
        "app_id": APP_ID,
        "oa_id": OA,
        "event_name": "follow",
        "timestamp": "1767600009000",
        "source": "oa_profile",
        "follower": {"id": USER},
        "user_id_by_app": "5521772797199990001",
    }
    message = parse_event(event)
    assert message is not None
    assert (message.sender_id, message.text) == (USER, FOLLOW_TEXT)
    again = parse_event(dict(event))
    later = parse_event({**event, "timestamp": "1767600099000"})
    assert again is not None and later is not None
    assert again.platform_message_id == message.platform_message_id
    assert later.platform_message_id != message.platform_message_id


def test_a_follow_without_a_follower_is_ignored() -> None:
    assert parse_event({"app_id": APP_ID, "event_name": "follow", "timestamp": "1"}) is None
    assert parse_event({"event_name": "follow", "follower": {"id": ""}}) is None


@pytest.mark.parametrize(
    "event_name",
    [
        "unfollow",
        "oa_send_text",
        "oa_send_image",
        "user_received_message",
        "user_seen_message",
        "user_reacted_message",
        "anonymous_send_text",
        "user_submit_info",
        "user_send_hologram",
        "",
        None,
    ],
)
def test_events_that_are_only_acknowledged(event_name: str | None) -> None:
    assert parse_event(text_event(event_name=event_name)) is None


@pytest.mark.parametrize(
    "broken",
    [
        {"message": {"msg_id": "a7c1e3f5b9d29990003", "text": "   "}},
        {"message": {"msg_id": "a7c1e3f5b9d29990003", "text": ""}},
        {"message": {"msg_id": "a7c1e3f5b9d29990003"}},
        {"message": {"msg_id": "a7c1e3f5b9d29990003", "text": ["tôi"]}},
        {"message": {"text": "tôi bị giữ hộ chiếu"}},
        {"message": {"msg_id": "", "text": "tôi bị giữ hộ chiếu"}},
        {"message": {"msg_id": 12345, "text": "tôi bị giữ hộ chiếu"}},
        {"message": "tôi bị giữ hộ chiếu"},
        {"message": None},
        {"sender": {}},
        {"sender": {"id": ""}},
        {"sender": "2947018536199990001"},
        {"sender": {"id": None}},
    ],
    ids=[
        "blank-text",
        "empty-text",
        "no-text",
        "text-not-a-string",
        "no-msg-id",
        "empty-msg-id",
        "numeric-msg-id",
        "message-a-string",
        "message-null",
        "sender-without-id",
        "empty-sender-id",
        "sender-a-string",
        "sender-id-null",
    ],
)
def test_broken_text_events_are_ignored(broken: dict[str, Any]) -> None:
    assert parse_event(text_event(**broken)) is None


# -- the payload files agree with the parser ----------------------------------------------------


def _payload_files() -> list[Any]:
    return [
        pytest.param(json.loads(path.read_text(encoding="utf-8")), id=path.stem)
        for path in sorted(PAYLOADS.glob("*.json"))
    ]


def test_there_are_payload_files_for_every_required_scenario() -> None:
    names = {path.stem for path in PAYLOADS.glob("*.json")}
    required = {
        "text_with_diacritics",
        "text_without_diacritics",
        "button_request_counsellor",
        "image",
        "sticker",
        "audio",
        "location",
        "file",
        "follow",
        "unfollow",
        "oa_send_text",
        "user_received_message",
        "user_seen_message",
        "unknown_event",
        "another_app",
        "stale_event",
        "duplicate_delivery",
        "bad_signature",
        "missing_signature",
        "invalid_json",
        "oversized_body",
    }
    assert required <= names, required - names


@pytest.mark.parametrize("scenario", _payload_files())
def test_each_payload_file_is_parsed_as_it_expects(scenario: dict[str, Any]) -> None:
    expect = scenario["expect"]
    senders = [
        json.loads(path.read_text(encoding="utf-8"))["sender"] for path in PAYLOADS.glob("*.json")
    ]
    assert senders.count(scenario["sender"]) == 1, "each file needs its own sender"
    body = scenario.get("body")
    if body is None or expect["status"] != 200:
        return  # refused before parsing: the runner checks those against the server
    assert body["app_id"] == APP_ID
    assert body["timestamp"].isdigit(), "Zalo sends the timestamp in ms, as a string"
    message = parse_event(body)
    if expect["stored"] == 0:
        assert message is None
    else:
        assert message is not None
        assert message.sender_id == scenario["sender"]
        if "stored_text" in expect:
            assert message.text == expect["stored_text"]
