"""Reading Telegram updates without a server (``bot.channels.telegram.handler``).

``parse_update`` on the Bot API's real update shapes: private texts, the bot's commands,
inline-keyboard taps (including the ``#<n>`` form of payloads too long for callback
data), stickers, photos and the like as the "text only" payload (never a phone number
or coordinates), and every update that must be ignored (edits, groups, channels,
membership changes, kinds the bot does not know, malformed bodies). Also
``command_text``, ``webhook_url``, and a cross-check that every payload file the
table-driven runner sends parses to what that file expects to be stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from platform_fakes import TELEGRAM_TOKEN
from telegram import Bot

from bot.channels.common import media_text
from bot.channels.telegram.handler import (
    COMMAND_MENU,
    COMMANDS,
    WEBHOOK_PATH,
    command_text,
    parse_update,
    webhook_url,
)
from bot.errors import BadInput

PAYLOADS = Path(__file__).resolve().parent / "payloads"
DATE = 1767600000
PERSON = 7391846301


@pytest.fixture(scope="module")
def bot() -> Bot:
    """Only for ``de_json``: nothing here reaches the network."""
    return Bot(TELEGRAM_TOKEN)


def user(uid: int = PERSON) -> dict[str, Any]:
    return {"id": uid, "is_bot": False, "first_name": "Lan", "language_code": "vi"}


def private_chat(uid: int = PERSON) -> dict[str, Any]:
    return {"id": uid, "first_name": "Lan", "type": "private"}


def message(
    message_id: int = 1, chat: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from": user(),
        "chat": chat or private_chat(),
        "date": DATE,
        **fields,
    }


def text_update(text: str, message_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {"update_id": 900000 + message_id, "message": message(message_id, text=text, **fields)}


def callback_update(
    data: str | None, query_id: str = "3162734563232165432", **fields: Any
) -> dict[str, Any]:
    query: dict[str, Any] = {
        "id": query_id,
        "from": user(),
        "message": {
            "message_id": 77,
            "from": {"id": 123456, "is_bot": True, "first_name": "Đồng Hành"},
            "chat": private_chat(),
            "date": DATE,
            "text": "Bạn cần mình giúp gì?",
        },
        "chat_instance": "-7234551234567890123",
        **fields,
    }
    if data is not None:
        query["data"] = data
    return {"update_id": 910000, "callback_query": query}


# -- texts -----------------------------------------------------------------------------


def test_a_private_text_becomes_a_message_from_the_chat(bot: Bot) -> None:
    inbound, callback_id = parse_update(text_update("tôi bị giữ hộ chiếu", 42), bot)
    assert callback_id is None
    assert inbound is not None
    assert inbound.channel == "telegram"
    assert inbound.sender_id == str(PERSON)
    assert inbound.text == "tôi bị giữ hộ chiếu"
    assert inbound.platform_message_id == f"m:{PERSON}:42"
    assert inbound.received_at == datetime.fromtimestamp(DATE, tz=UTC)


def test_the_same_message_id_in_two_chats_is_two_messages(bot: Bot) -> None:
    first, _ = parse_update(text_update("xin chào", 5), bot)
    other = {
        "update_id": 900099,
        "message": {**message(5, chat=private_chat(PERSON + 1)), "text": "xin chào"},
    }
    second, _ = parse_update(other, bot)
    assert first is not None and second is not None
    assert first.platform_message_id != second.platform_message_id
    assert second.sender_id == str(PERSON + 1)


def test_a_text_keeps_its_words_exactly(bot: Bot) -> None:
    words = "Tôi cần giúp 🙏\n\nCông ty ở Đài Loan giữ hộ chiếu, không trả lương."
    inbound, _ = parse_update(text_update(words), bot)
    assert inbound is not None and inbound.text == words


# -- commands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("/start", "/greet"),
        ("/START", "/greet"),
        ("/start ref-zalo-2026", "/greet"),  # a deep link's parameter
        ("/start@DongHanhBot", "/greet"),
        ("/tuvan", "/request_counsellor"),
        ("/tuvan@DongHanhBot", "/request_counsellor"),
        ("/xoa", "/delete_my_data"),
        ("/help", "/help"),
        ("/lenh_khac", "/lenh_khac"),  # not one of the bot's commands: as typed
        ("/", "/"),
        ('/handoff_consent{"consent": "full"}', '/handoff_consent{"consent": "full"}'),
        ("xin chào /start", "xin chào /start"),  # a command not at the start is just words
        ("tôi bị giữ hộ chiếu", "tôi bị giữ hộ chiếu"),
    ],
)
def test_command_text(typed: str, expected: str) -> None:
    assert command_text(typed) == expected


def test_every_command_in_the_published_menu_is_understood() -> None:
    assert {name for name, _ in COMMAND_MENU} == set(COMMANDS)
    for name, payload in COMMANDS.items():
        assert command_text(f"/{name}") == payload
        assert command_text(f"/{name}@DongHanhBot") == payload


@pytest.mark.parametrize("typed", ["/ ", "/\u00a0"])
def test_a_slash_followed_only_by_spaces_does_not_crash(bot: Bot, typed: str) -> None:
    assert command_text(typed) == typed
    inbound, _ = parse_update(text_update(typed), bot)
    assert inbound is not None and inbound.text == typed


def test_a_command_message_with_its_entity_becomes_the_payload(bot: Bot) -> None:
    entities = [{"offset": 0, "length": 6, "type": "bot_command"}]
    inbound, _ = parse_update(text_update("/tuvan", entities=entities), bot)
    assert inbound is not None and inbound.text == "/request_counsellor"


# -- inline keyboard taps --------------------------------------------------------------


def test_a_button_tap_is_its_payload_and_its_query_is_answered(bot: Bot) -> None:
    inbound, callback_id = parse_update(
        callback_update("/request_counsellor", "3162734563232165001"), bot
    )
    assert callback_id == "3162734563232165001"
    assert inbound is not None
    assert inbound.text == "/request_counsellor"
    assert inbound.sender_id == str(PERSON)
    assert inbound.platform_message_id == "cb:3162734563232165001"


@pytest.mark.parametrize(
    ("data", "expected"),
    [("#2", "2"), ("#12", "12"), ("#", "#"), ("#x", "#x"), ("#2a", "#2a")],
)
def test_the_index_form_becomes_the_buttons_number(bot: Bot, data: str, expected: str) -> None:
    inbound, _ = parse_update(callback_update(data), bot)
    assert inbound is not None and inbound.text == expected


def test_a_tap_without_data_is_answered_but_not_a_message(bot: Bot) -> None:
    """A game's button carries game_short_name, not data: nothing to say, but the
    spinner on the button must still be stopped."""
    inbound, callback_id = parse_update(
        callback_update(None, "3162734563232165009", game_short_name="quiz"), bot
    )
    assert inbound is None
    assert callback_id == "3162734563232165009"


def test_a_tap_on_a_message_too_old_to_include_still_counts(bot: Bot) -> None:
    update = callback_update("/help")
    update["callback_query"]["message"] = {"chat": private_chat(), "message_id": 77, "date": 0}
    inbound, _ = parse_update(update, bot)
    assert inbound is not None and inbound.text == "/help"
    assert inbound.sender_id == str(PERSON)


def test_a_tap_on_an_inline_mode_message_comes_from_the_user(bot: Bot) -> None:
    update = callback_update("/help")
    del update["callback_query"]["message"]
    update["callback_query"]["inline_message_id"] = "BAAAAJ8-AAB6Y2Q2YjBlZDE"
    inbound, _ = parse_update(update, bot)
    assert inbound is not None and inbound.sender_id == str(PERSON)


def test_a_tap_in_a_group_is_answered_but_ignored(bot: Bot) -> None:
    update = callback_update("/request_counsellor", "3162734563232165010")
    update["callback_query"]["message"]["chat"] = {
        "id": -4012345678,
        "title": "Nhóm",
        "type": "group",
    }
    inbound, callback_id = parse_update(update, bot)
    assert inbound is None
    assert callback_id == "3162734563232165010"


# -- what is not text --------------------------------------------------------------------

FILE = {"file_id": "AwACAgUAAxkBAAIBZWZ1aGVsbG8", "file_unique_id": "AgADrA0AAk"}
MEDIA: list[tuple[str, dict[str, Any], str]] = [
    (
        "sticker",
        {
            "sticker": {
                **FILE,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "👍",
            }
        },
        "sticker",
    ),
    ("photo", {"photo": [{**FILE, "width": 90, "height": 67, "file_size": 1234}]}, "photo"),
    ("voice", {"voice": {**FILE, "duration": 3, "mime_type": "audio/ogg"}}, "voice"),
    ("audio", {"audio": {**FILE, "duration": 180, "title": "Bài hát"}}, "audio"),
    ("video", {"video": {**FILE, "width": 640, "height": 360, "duration": 12}}, "video"),
    ("video_note", {"video_note": {**FILE, "length": 240, "duration": 8}}, "video_note"),
    ("document", {"document": {**FILE, "file_name": "hop-dong.pdf"}}, "document"),
    (
        "animation",  # a GIF: Telegram sends document too, animation is checked first
        {
            "animation": {**FILE, "width": 320, "height": 240, "duration": 2},
            "document": {**FILE, "file_name": "a.mp4"},
        },
        "animation",
    ),
    ("location", {"location": {"latitude": 21.028511, "longitude": 105.804817}}, "location"),
    (
        "venue",  # a venue comes with its location
        {
            "location": {"latitude": 10.7769, "longitude": 106.7009},
            "venue": {
                "location": {"latitude": 10.7769, "longitude": 106.7009},
                "title": "Bến xe Miền Đông",
                "address": "292 Đinh Bộ Lĩnh, Bình Thạnh",
            },
        },
        "location",
    ),
    (
        "contact",
        {"contact": {"phone_number": "+84912345678", "first_name": "Lan", "user_id": PERSON}},
        "contact",
    ),
    ("dice", {"dice": {"emoji": "🎲", "value": 4}}, "dice"),
    (
        "poll",
        {
            "poll": {
                "id": "5839165464410636297",
                "question": "Bạn ở đâu?",
                "options": [
                    {"persistent_id": "0", "text": "Hà Nội", "voter_count": 0},
                    {"persistent_id": "1", "text": "TP.HCM", "voter_count": 0},
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
        "poll",
    ),
]


@pytest.mark.parametrize(
    ("fields", "kind"), [(m[1], m[2]) for m in MEDIA], ids=[m[0] for m in MEDIA]
)
def test_media_becomes_the_text_only_payload(bot: Bot, fields: dict[str, Any], kind: str) -> None:
    inbound, _ = parse_update({"update_id": 920000, "message": message(9, **fields)}, bot)
    assert inbound is not None
    assert inbound.text == media_text(kind) == f'/user_sent_media{{"kind": "{kind}"}}'
    assert inbound.platform_message_id == f"m:{PERSON}:9"


def test_a_shared_contact_never_stores_the_phone_number(bot: Bot) -> None:
    contact = {"phone_number": "+84912345678", "first_name": "Lan", "user_id": PERSON}
    inbound, _ = parse_update({"update_id": 920001, "message": message(10, contact=contact)}, bot)
    assert inbound is not None
    assert "912345678" not in inbound.text and "Lan" not in inbound.text
    assert inbound.metadata == {}


def test_a_shared_location_never_stores_the_coordinates(bot: Bot) -> None:
    location = {"latitude": 21.028511, "longitude": 105.804817}
    inbound, _ = parse_update({"update_id": 920002, "message": message(11, location=location)}, bot)
    assert inbound is not None
    assert "21.02" not in inbound.text and "105.8" not in inbound.text


def test_a_photo_with_a_caption_is_its_caption(bot: Bot) -> None:
    photo = [{**FILE, "width": 1280, "height": 960}]
    caption = "hợp đồng của tôi, công ty giữ hộ chiếu"
    inbound, _ = parse_update(
        {"update_id": 920003, "message": message(12, photo=photo, caption=caption)}, bot
    )
    assert inbound is not None and inbound.text == caption


# -- what is ignored ---------------------------------------------------------------------


def test_an_edited_message_is_ignored(bot: Bot) -> None:
    edited = {**message(13, text="tôi bị giữ hộ chiếu ở Đài Loan"), "edit_date": DATE + 60}
    assert parse_update({"update_id": 930000, "edited_message": edited}, bot) == (None, None)


@pytest.mark.parametrize(
    "chat",
    [
        {"id": -4012345678, "title": "Nhóm bạn", "type": "group"},
        {"id": -1001234567890, "title": "Nhóm lớn", "type": "supergroup", "is_forum": False},
        {"id": -1001234567891, "title": "Kênh tin", "type": "channel"},
    ],
    ids=["group", "supergroup", "channel"],
)
def test_a_message_outside_a_private_chat_is_ignored(bot: Bot, chat: dict[str, Any]) -> None:
    update = {"update_id": 930001, "message": message(14, chat=chat, text="tôi bị giữ hộ chiếu")}
    assert parse_update(update, bot) == (None, None)


@pytest.mark.parametrize(
    "update",
    [
        {
            "update_id": 930002,
            "channel_post": {
                "message_id": 15,
                "chat": {"id": -1001234567891, "title": "Kênh tin", "type": "channel"},
                "date": DATE,
                "text": "tin mới",
            },
        },
        {
            "update_id": 930003,
            "my_chat_member": {
                "chat": private_chat(),
                "from": user(),
                "date": DATE,
                "old_chat_member": {
                    "user": {"id": 123456, "is_bot": True, "first_name": "Đồng Hành"},
                    "status": "member",
                },
                "new_chat_member": {
                    "user": {"id": 123456, "is_bot": True, "first_name": "Đồng Hành"},
                    "status": "kicked",
                    "until_date": 0,
                },
            },
        },
        {"update_id": 930004, "some_future_update": {"chat": private_chat(), "text": "xin chào"}},
        {"update_id": 930005},
    ],
    ids=["channel_post", "my_chat_member", "unknown_kind", "empty"],
)
def test_other_updates_are_ignored(bot: Bot, update: dict[str, Any]) -> None:
    assert parse_update(update, bot) == (None, None)


@pytest.mark.parametrize(
    "update",
    [
        {"message": message(16, text="thiếu update_id")},
        {"update_id": "không phải số"},
        {"update_id": 940001, "message": "chữ"},
        {"update_id": 940002, "message": []},
        {"update_id": 940003, "message": {"message_id": 17}},
        {"update_id": 940004, "callback_query": "chữ"},
    ],
    ids=[
        "no_update_id",
        "update_id_not_a_number",
        "message_text",
        "message_list",
        "no_chat",
        "query_text",
    ],
)
def test_a_malformed_update_is_ignored(bot: Bot, update: dict[str, Any]) -> None:
    assert parse_update(update, bot) == (None, None)


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 940010, "message": {**message(18), "text": 5}},
        {
            "update_id": 940011,
            "callback_query": {**callback_update("x")["callback_query"], "data": 5},
        },
        {"update_id": 940012, "message": {**message(19, text="x"), "date": 10**20}},
    ],
    ids=["text_is_a_number", "data_is_a_number", "date_out_of_range"],
)
def test_a_wrongly_typed_field_is_ignored_not_raised(bot: Bot, update: dict[str, Any]) -> None:
    assert parse_update(update, bot) == (None, None)


# -- the payload files the runner sends ------------------------------------------------------


def _payload_files() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in sorted(PAYLOADS.glob("*.json"))]


def test_there_are_payload_files_for_the_runner() -> None:
    assert len(_payload_files()) >= 20


@pytest.mark.parametrize("path", _payload_files())
def test_each_payload_file_parses_to_what_it_expects(bot: Bot, path: Path) -> None:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    expect = scenario["expect"]
    assert set(scenario) <= {
        "scenario",
        "sender",
        "sign",
        "body",
        "raw_body",
        "oversized_bytes",
        "times",
        "expect",
    }
    assert scenario["scenario"] and scenario["sender"]
    if "body" not in scenario or expect["status"] != 200:
        assert expect["stored"] == 0 and expect["replies"] == "none"
        return
    inbound, _ = parse_update(scenario["body"], bot)
    if expect["stored"] == 0:
        assert inbound is None
        assert expect["replies"] == "none"
        return
    assert inbound is not None
    assert inbound.sender_id == scenario["sender"]
    if "stored_text" in expect:
        assert inbound.text == expect["stored_text"]


def test_payload_files_use_distinct_senders_and_ids() -> None:
    senders: list[str] = []
    update_ids: list[int] = []
    for param in _payload_files():
        scenario = json.loads(param.values[0].read_text(encoding="utf-8"))
        senders.append(scenario["sender"])
        if isinstance(scenario.get("body"), dict) and "update_id" in scenario["body"]:
            update_ids.append(scenario["body"]["update_id"])
    assert len(senders) == len(set(senders))
    assert len(update_ids) == len(set(update_ids))


# -- the webhook address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.org", f"https://example.org{WEBHOOK_PATH}"),
        ("https://example.org/", f"https://example.org{WEBHOOK_PATH}"),
        ("  https://example.org  ", f"https://example.org{WEBHOOK_PATH}"),
        (f"https://example.org{WEBHOOK_PATH}", f"https://example.org{WEBHOOK_PATH}"),
        (f"https://example.org{WEBHOOK_PATH}/", f"https://example.org{WEBHOOK_PATH}"),
        ("https://example.org/donghanh", f"https://example.org/donghanh{WEBHOOK_PATH}"),
        ("https://example.org:8443", f"https://example.org:8443{WEBHOOK_PATH}"),
    ],
)
def test_webhook_url(given: str, expected: str) -> None:
    assert webhook_url(given) == expected


@pytest.mark.parametrize(
    "given", ["http://example.org", "example.org", "ftp://example.org", "https://", ""]
)
def test_webhook_url_refuses_anything_but_https(given: str) -> None:
    with pytest.raises(BadInput, match="https://"):
        webhook_url(given)
