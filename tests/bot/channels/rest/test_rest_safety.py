"""Screening and the safety rules, through the REST channel of a real server.

Scenarios: all yes, all no, mixed, skip all, stop midway, danger mid-questionnaire, a
person under 18, answers typed without diacritics; "xóa dữ liệu" checked in the
database itself; the danger reply for many ways of saying it, with and without
diacritics, in the middle of anything.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from conftest import REPO, LiveServer
from sqlalchemy import text

from bot.nlu.normalize import strip_diacritics
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.repository import Store

pytestmark = pytest.mark.slow

WEBHOOK = "/webhooks/rest/webhook"
RESPONSES = {
    name: variants[0]["text"].strip()
    for name, variants in yaml.safe_load(
        (REPO / "data" / "responses.yml").read_text(encoding="utf-8")
    )["responses"].items()
}
QUESTIONNAIRE = yaml.safe_load(
    (REPO / "data" / "screening" / "questionnaire.yml").read_text(encoding="utf-8")
)
QUESTIONS = [q["text"] for q in QUESTIONNAIRE["questions"]]
EMERGENCY = " ".join(RESPONSES["utter_emergency"].split())


@pytest.fixture(scope="module")
def server(module_server: LiveServer) -> LiveServer:
    return module_server


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


def new_sender() -> str:
    return f"safety-{uuid.uuid4().hex}"


def say(client: httpx.Client, sender: str, message: str) -> list[dict[str, Any]]:
    response = client.post(WEBHOOK, json={"sender": sender, "message": message})
    assert response.status_code == 200, response.text
    replies: list[dict[str, Any]] = response.json()
    assert replies, f"no answer to {message!r}"
    return replies


def flat(text: str) -> str:
    return " ".join(text.split())


def payload(reply: dict[str, Any], title: str) -> str:
    return next(b["payload"] for b in reply.get("buttons", []) if b["title"] == title)


def start(client: httpx.Client, sender: str) -> dict[str, Any]:
    (intro,) = say(client, sender, "kiểm tra giúp tôi")
    assert flat(intro["text"]) == flat(QUESTIONNAIRE["intro"])
    (first,) = say(client, sender, payload(intro, QUESTIONNAIRE["consent_yes"]))
    assert first["text"] == QUESTIONS[0]
    return first


def answer_all(
    client: httpx.Client, sender: str, answers: list[str], *, typed: bool = False
) -> list[dict[str, Any]]:
    """Answer question after question (button titles, or typed words); the replies to
    the last answer."""
    question = start(client, sender)
    replies: list[dict[str, Any]] = [question]
    for answer in answers:
        message = answer if typed else payload(replies[-1], answer)
        replies = say(client, sender, message)
    return replies


def result_text(replies: list[dict[str, Any]]) -> str:
    return next(r["text"] for r in replies if r["text"].startswith("Kết quả"))


# -- scenarios -----------------------------------------------------------------------------

COUNT = len(QUESTIONS)


def test_all_yes_stops_at_danger_with_113_first(client: httpx.Client) -> None:
    replies = answer_all(client, new_sender(), ["Có"])
    assert flat(result_text(replies)) == flat(QUESTIONNAIRE["results"]["danger_now"])
    assert "113" in replies[0]["text"]
    assert not any(r["text"] in QUESTIONS for r in replies), "no further question"


def test_yes_to_everything_but_danger_shows_many_signs(client: httpx.Client) -> None:
    replies = answer_all(client, new_sender(), ["Không"] + ["Có"] * (COUNT - 1))
    text = result_text(replies)
    assert text.startswith(flat(QUESTIONNAIRE["results"]["many_signs"])[:60])
    assert "111" in text
    assert "Điều 37" in text and "khoản 10 Điều 3" in text  # the rights that apply
    buttons = [b["payload"] for r in replies for b in r.get("buttons", [])]
    assert "/request_counsellor" in buttons


async def _risk_level(server: LiveServer, sender: str) -> str | None:
    settings = server.settings
    engine = create_engine(settings.database_url)
    try:
        store = Store(
            session_factory(engine), Vault(settings.encryption_keys), settings.pseudonym_secret
        )
        async with store.sessions() as session:
            level = await session.scalar(
                text(
                    "SELECT risk_level FROM conversations JOIN contacts"
                    " ON contacts.id = conversations.contact_id WHERE pseudonym = :p"
                ),
                {"p": store.pseudonym_for("rest", sender)},
            )
            return None if level is None else str(level)
    finally:
        await engine.dispose()


def test_the_risk_level_is_kept_on_the_conversation(
    client: httpx.Client, server: LiveServer
) -> None:
    sender = new_sender()
    answer_all(client, sender, ["Không"] + ["Có"] * (COUNT - 1))
    assert asyncio.run(_risk_level(server, sender)) == "many_signs"


def test_all_no_shows_low(client: httpx.Client) -> None:
    replies = answer_all(client, new_sender(), ["Không"] * COUNT)
    assert flat(result_text(replies)) == flat(QUESTIONNAIRE["results"]["low"])


def test_skip_all_is_allowed_and_shows_low(client: httpx.Client) -> None:
    replies = answer_all(client, new_sender(), ["Bỏ qua"] * COUNT)
    assert flat(result_text(replies)) == flat(QUESTIONNAIRE["results"]["low"])


def test_mixed_answers_show_some_signs(client: httpx.Client) -> None:
    ids = [q["id"] for q in QUESTIONNAIRE["questions"]]
    plan = dict.fromkeys(ids, "Không")
    plan["wages_withheld"] = "Có"  # medium: 1 point
    plan["excessive_hours"] = "Không chắc"  # strong, unsure: 1 point
    replies = answer_all(client, new_sender(), [plan[qid] for qid in ids])
    assert flat(result_text(replies)).startswith(flat(QUESTIONNAIRE["results"]["some_signs"])[:60])


def test_answers_typed_without_diacritics(client: httpx.Client) -> None:
    typed = ["khong", "ko", "co", "k chac", "bo qua"] + ["k"] * (COUNT - 5)
    replies = answer_all(client, new_sender(), typed, typed=True)
    assert result_text(replies).startswith("Kết quả")


def test_minor_is_told_about_111_and_the_child_rule(client: httpx.Client) -> None:
    ids = [q["id"] for q in QUESTIONNAIRE["questions"]]
    plan = dict.fromkeys(ids, "Không")
    plan["minor"] = "Có"
    plan["deception_lure"] = "Có"  # one sign of recruitment: enough for a child
    replies = answer_all(client, new_sender(), [plan[qid] for qid in ids])
    text = flat(result_text(replies))
    assert text.startswith(flat(QUESTIONNAIRE["results"]["many_signs"])[:60])
    assert flat(QUESTIONNAIRE["results"]["minor_note"]) in text


def test_a_stated_age_under_18_gets_111_outside_screening(client: httpx.Client) -> None:
    replies = say(client, new_sender(), "em năm nay 15 tuổi, có người rủ đi làm ở Trung Quốc")
    assert "111 cũng là tổng đài bảo vệ trẻ em" in replies[0]["text"]


def test_stop_midway_keeps_nothing_unless_asked(client: httpx.Client) -> None:
    sender = new_sender()
    answer_all(client, sender, ["Không", "Không", "Có"])
    replies = say(client, sender, "dừng")
    assert flat(replies[0]["text"]) == flat(QUESTIONNAIRE["stopped"])
    assert flat(replies[1]["text"]) == flat(QUESTIONNAIRE["keep_question"])
    (after,) = say(client, sender, payload(replies[1], "Không giữ"))
    assert flat(after["text"]) == flat(QUESTIONNAIRE["not_kept"])
    (normal,) = say(client, sender, "xin chào")  # the flow is over
    assert normal["text"].startswith("Xin chào")


def test_danger_in_the_middle_of_the_questionnaire_comes_first(client: httpx.Client) -> None:
    sender = new_sender()
    answer_all(client, sender, ["Không", "Không"])
    replies = say(client, sender, "cuu toi voi, ho dang danh toi")
    assert flat(replies[0]["text"]) == EMERGENCY
    assert not any(r["text"] in QUESTIONS for r in replies), "never a screening question first"


def test_a_risk_cue_is_acknowledged_with_a_right_and_an_offer(client: httpx.Client) -> None:
    sender = new_sender()
    replies = say(client, sender, "họ giữ hộ chiếu của tôi")
    first = replies[0]
    assert first["text"].startswith("Cảm ơn bạn đã kể cho mình.")
    assert "hộ chiếu" in first["text"] and "111" in first["text"]
    assert [b["payload"] for b in first["buttons"]] == ["/start_screening", "/request_counsellor"]
    again = say(client, sender, "họ giữ hộ chiếu của tôi")  # acknowledged once, not every time
    assert not again[0]["text"].startswith("Cảm ơn bạn đã kể cho mình.")


def test_a_cue_in_a_request_to_screen_is_acknowledged_before_the_intro(
    client: httpx.Client,
) -> None:
    replies = say(client, new_sender(), "công ty giữ hộ chiếu của tôi, tôi có bị lừa không")
    assert replies[0]["text"].startswith("Cảm ơn bạn đã kể cho mình.")
    assert not replies[0].get("buttons"), "the intro that follows makes the offer"
    assert flat(replies[-1]["text"]) == flat(QUESTIONNAIRE["intro"])


def test_an_expiring_passport_is_not_a_risk_cue(client: httpx.Client) -> None:
    replies = say(client, new_sender(), "hộ chiếu của tôi sắp hết hạn, gia hạn ở đâu")
    assert not replies[0]["text"].startswith("Cảm ơn bạn đã kể cho mình.")


# -- danger now: 113 and 111 at once ---------------------------------------------------------

DANGER = [
    "giúp tôi với, họ đang đánh tôi",
    "tôi bị nhốt ở đây, cứu tôi",
    "cứu em với, em không thoát ra được",
    "họ đang kéo tôi lên xe",
    "bọn nó đang đánh em gái tôi, cứu nó với",
    "em bị giữ trong công ty không cho ra ngoài, họ đánh em hoài, cứu em",
    "con trai tôi vừa gọi bảo đang bị bọn nó đánh",
    "đang bị khóa trong kho, điện thoại sắp hết pin",
    "họ dọa nếu trốn sẽ giết, giúp tôi với",
    "tôi đang gặp nguy hiểm",
    "cứu tôi, họ giữ tôi lại đòi tiền chuộc",
    "bây giờ tôi bị nhốt trong phòng",
]


@pytest.mark.parametrize("diacritics", [True, False], ids=["with-diacritics", "without"])
@pytest.mark.parametrize("message", DANGER)
def test_danger_now_gets_113_and_111_first(
    client: httpx.Client, message: str, diacritics: bool
) -> None:
    replies = say(client, new_sender(), message if diacritics else strip_diacritics(message))
    assert flat(replies[0]["text"]) == EMERGENCY
    assert "113" in replies[0]["text"] and "111" in replies[0]["text"]
    assert any(b["payload"] == "/request_counsellor" for b in replies[0].get("buttons", []))


def test_danger_in_the_middle_of_the_province_question(client: httpx.Client) -> None:
    sender = new_sender()
    say(client, sender, "/find_service")
    assert flat(say(client, sender, "cuu toi, ho dang danh toi")[0]["text"]) == EMERGENCY


# -- "xóa dữ liệu", checked in the database ------------------------------------------------


async def _rows_of(server: LiveServer, sender: str) -> dict[str, int]:
    settings = server.settings
    engine = create_engine(settings.database_url)
    try:
        store = Store(
            session_factory(engine), Vault(settings.encryption_keys), settings.pseudonym_secret
        )
        pseudonym = store.pseudonym_for("rest", sender)
        async with store.sessions() as session:
            contact = (
                await session.execute(
                    text("SELECT id FROM contacts WHERE pseudonym = :p"), {"p": pseudonym}
                )
            ).scalar()
            if contact is None:
                return {"contacts": 0, "messages": 0, "events": 0, "outbox": 0}
            count = {}
            for table, where in (
                (
                    "messages",
                    "conversation_id IN (SELECT id FROM conversations WHERE contact_id = :c)",
                ),
                (
                    "conversation_events",
                    "conversation_id IN (SELECT id FROM conversations WHERE contact_id = :c)",
                ),
                ("outbox", "contact_id = :c"),
            ):
                count[table] = (
                    await session.execute(
                        text(f"SELECT COUNT(*) FROM {table} WHERE {where}"), {"c": contact}
                    )
                ).scalar_one()
            return {
                "contacts": 1,
                "messages": count["messages"],
                "events": count["conversation_events"],
                "outbox": count["outbox"],
            }
    finally:
        await engine.dispose()


async def _erasures(server: LiveServer) -> int:
    engine = create_engine(server.settings.database_url)
    try:
        async with engine.connect() as connection:
            total = await connection.scalar(
                text(
                    "SELECT COALESCE(SUM(count), 0) FROM anonymous_counts WHERE metric = 'erasures'"
                )
            )
            return int(total or 0)
    finally:
        await engine.dispose()


def test_delete_my_data_erases_the_person_from_the_database(
    client: httpx.Client, server: LiveServer
) -> None:
    sender = new_sender()
    say(client, sender, "họ giữ hộ chiếu của tôi")
    answer_all(client, sender, ["Không", "Có"])
    before = asyncio.run(_rows_of(server, sender))
    assert before["contacts"] == 1 and before["messages"] > 5
    erasures = asyncio.run(_erasures(server))

    (confirm,) = say(client, sender, "xoa het du lieu cua toi di")
    assert flat(confirm["text"]) == flat(RESPONSES["utter_delete_confirm"])
    (done,) = say(client, sender, payload(confirm, "Xóa dữ liệu"))
    assert done["text"].startswith("Đã xóa")
    assert "Zalo" in done["text"] and "Messenger" in done["text"] and "Telegram" in done["text"]

    after = asyncio.run(_rows_of(server, sender))
    assert after == {"contacts": 0, "messages": 0, "events": 0, "outbox": 0}
    assert asyncio.run(_erasures(server)) == erasures + 1  # only an anonymous count stays

    (again,) = say(client, sender, "xin chào")  # a new start, nothing remembered
    assert again["text"].startswith("Xin chào")


def test_delete_can_be_cancelled_and_nothing_goes(client: httpx.Client, server: LiveServer) -> None:
    sender = new_sender()
    say(client, sender, "xin chào")
    (confirm,) = say(client, sender, "tôi muốn xóa dữ liệu")
    (kept,) = say(client, sender, payload(confirm, "Không xóa"))
    assert flat(kept["text"]) == flat(RESPONSES["utter_delete_cancelled"])
    assert asyncio.run(_rows_of(server, sender))["messages"] >= 6


def test_delete_works_in_the_middle_of_screening(client: httpx.Client, server: LiveServer) -> None:
    sender = new_sender()
    answer_all(client, sender, ["Không"])
    (confirm,) = say(client, sender, "xóa dữ liệu")
    assert flat(confirm["text"]) == flat(RESPONSES["utter_delete_confirm"])
    say(client, sender, "có")
    assert asyncio.run(_rows_of(server, sender))["contacts"] == 0


def test_stop_ends_any_flow(client: httpx.Client) -> None:
    sender = new_sender()
    say(client, sender, "/find_service")
    (stopped,) = say(client, sender, "dừng lại")
    assert flat(stopped["text"]) == flat(RESPONSES["utter_stop"])
    # "không" no longer answers the province question (which would list national services)
    replies = say(client, sender, "không")
    assert not replies[0]["text"].startswith("Mình chưa nhận ra tên tỉnh")
