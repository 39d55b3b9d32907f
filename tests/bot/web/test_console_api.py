"""The handoff from the bot to a counsellor, through the console API, with two clients:
a person on Rasa's callback channel (replies reach a recording server) and counsellors
with sessions, CSRF tokens and the live events socket — against a real server and
database. Consent, refusal, no counsellor, cancel, transfer, danger while held,
erasure, call-back numbers and the audit log each have a test."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import REPO, CallbackRecorder, LiveServer, create_staff, make_settings
from console_client import Counsellor
from sqlalchemy import text
from websockets.sync.client import connect

from bot.config import Settings
from bot.storage.db import create_engine

pytestmark = pytest.mark.slow

PASSWORD = "mật khẩu tư vấn 2026 đủ dài"
RESPONSES = {
    name: variants[0]["text"]
    for name, variants in yaml.safe_load(
        (REPO / "data" / "responses.yml").read_text(encoding="utf-8")
    )["responses"].items()
}
STAFF = (
    ("tuvan_a", "counsellor"),
    ("tuvan_b", "counsellor"),
    ("giamsat", "supervisor"),
    ("quantri", "admin"),
)
FULL = '/handoff_consent{"consent": "full"}'
FROM_NOW = '/handoff_consent{"consent": "from_now"}'


async def _query(settings: Settings, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(sql), params))
    finally:
        await engine.dispose()


def query(server: LiveServer, sql: str, **params: Any) -> list[Any]:
    return asyncio.run(_query(server.settings, sql, **params))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    model_dir: Path,
    module_database_url: str,
    callback_recorder: CallbackRecorder,
) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("console"), module_database_url, model_dir)
    env = {
        "DONGHANH_CALLBACK_URL": callback_recorder.url,
        "DONGHANH_SERVICE_HOURS": "mon-sun 00:00-24:00",
        "DONGHANH_LOGIN_ATTEMPTS_PER_WINDOW": "1000",
    }
    live = LiveServer(settings, env).start()
    asyncio.run(create_staff(settings, STAFF, PASSWORD))
    yield live
    live.stop()


# -- the two sides ---------------------------------------------------------------------------


class Person:
    """Someone writing on the callback channel; what they receive is recorded."""

    def __init__(self, server: LiveServer, recorder: CallbackRecorder) -> None:
        self.server = server
        self.recorder = recorder
        self.id = f"nguoi-{uuid.uuid4().hex[:12]}"

    def say(self, message: str) -> None:
        response = httpx.post(
            f"{self.server.base_url}/webhooks/callback/webhook",
            json={"sender": self.id, "message": message},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    def received(self) -> list[str]:
        return [b["text"] for b in self.recorder.bodies if b["recipient_id"] == self.id]

    def wait_for(self, count: int) -> list[str]:
        return [b["text"] for b in self.recorder.wait_for(self.id, count)]

    def says_and_settles(self, message: str, quiet: float = 0.5) -> list[str]:
        """All the replies to ``message``, however many: once one has come, wait until
        nothing more arrives for ``quiet`` seconds."""
        before = len(self.received())
        self.say(message)
        self.wait_for(before + 1)
        count = len(self.received())
        deadline = time.monotonic() + quiet
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if len(self.received()) != count:
                count, deadline = len(self.received()), time.monotonic() + quiet
        return self.received()[before:]

    def asks_for_counsellor(self, consent: str = FULL) -> list[str]:
        assert self.says_and_settles("tôi muốn nói chuyện với tư vấn viên") == [
            RESPONSES["utter_handoff_consent"]
        ]
        return self.says_and_settles(consent)


def newest_waiting_id(counsellor: Counsellor) -> int:
    waiting = counsellor.queue()["waiting"]
    assert waiting, "nothing is waiting"
    return int(max(waiting, key=lambda i: i["queued_at"])["id"])


@pytest.fixture
def person(server: LiveServer, callback_recorder: CallbackRecorder) -> Person:
    return Person(server, callback_recorder)


@pytest.fixture
def counsellor(server: LiveServer) -> Iterator[Counsellor]:
    member = Counsellor(server, "tuvan_a", PASSWORD)
    yield member
    member.close()


def _all_staff_off_duty(server: LiveServer) -> None:
    """Nobody has said they are available, and no console is open (a closed events
    socket takes the server a moment to notice)."""
    for username, role in STAFF:
        if role in ("counsellor", "supervisor"):
            member = Counsellor(server, username, PASSWORD)
            member.close()
    checker = Counsellor(server, "giamsat", PASSWORD)
    deadline = time.monotonic() + 10
    while checker.queue()["counsellors_available"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checker.queue()["counsellors_available"] == 0
    checker.http.close()


# -- the whole path --------------------------------------------------------------------------


def test_the_whole_path_from_request_to_close(
    server: LiveServer, person: Person, counsellor: Counsellor
) -> None:
    live = counsellor.events()
    try:
        assert person.says_and_settles("Tôi bị giữ hộ chiếu ở công ty")
        queued = person.asks_for_counsellor(FULL)
        assert queued == [RESPONSES["utter_handoff_queued"]]

        event = live.next(lambda e: e["type"] == "queue")
        assert event["urgent"] is False
        case_id = newest_waiting_id(counsellor)
        item = counsellor.waiting_item(case_id)
        assert item["channel"] == "callback" and item["consent"] == "full"
        assert item["priority"] == "normal" and item["state"] == "waiting"

        before_accept = len(person.received())
        accepted = counsellor.post(f"/conversations/{case_id}/accept")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["state"] == "counsellor"
        assert accepted.json()["reply_window"] == {"open": True, "reason": None}
        assert person.wait_for(before_accept + 1)[before_accept:] == [
            RESPONSES["utter_handoff_accepted"]
        ]
        assert case_id in [i["id"] for i in counsellor.queue()["mine"]]

        history = counsellor.get(f"/conversations/{case_id}/messages")
        assert history.status_code == 200, history.text
        texts = [(m["author"], m["text"]) for m in history.json()["messages"]]
        assert ("user", "Tôi bị giữ hộ chiếu ở công ty") in texts
        assert ("user", "tôi muốn nói chuyện với tư vấn viên") in texts
        assert texts[-1] == ("bot", RESPONSES["utter_handoff_accepted"])

        before = len(person.received())
        reply = counsellor.post(
            f"/conversations/{case_id}/messages", {"text": "Chào bạn, bạn đang ở đâu?"}
        )
        assert reply.status_code == 201, reply.text
        assert reply.json()["message"]["counsellor"] == "tuvan_a"
        assert person.wait_for(before + 1)[before:] == ["Chào bạn, bạn đang ở đâu?"]

        person.say("Mình ở Bắc Ninh, làm ở một xưởng may")
        heard = live.next(lambda e: e["type"] == "message" and e["message"]["author"] == "user")
        assert heard["conversation_id"] == case_id
        assert heard["message"]["text"] == "Mình ở Bắc Ninh, làm ở một xưởng may"
        time.sleep(1.0)  # give a (wrong) bot answer the time to arrive
        assert person.received()[before + 1 :] == [], "the bot spoke while a counsellor held it"

        closed = counsellor.post(f"/conversations/{case_id}/close", {"outcome": "resolved"})
        assert closed.status_code == 200, closed.text
        assert person.wait_for(before + 2)[-1] == RESPONSES["utter_handoff_closed"]
        assert case_id not in [i["id"] for i in counsellor.queue()["mine"]]
        assert person.says_and_settles("xin chào") == [RESPONSES["utter_greet"]]
        again = counsellor.post(f"/conversations/{case_id}/messages", {"text": "còn đó không?"})
        assert again.status_code == 409
    finally:
        live.close()


def test_two_counsellors_cannot_both_accept(server: LiveServer, person: Person) -> None:
    first, second = Counsellor(server, "tuvan_a", PASSWORD), Counsellor(server, "tuvan_b", PASSWORD)
    try:
        person.asks_for_counsellor(FULL)
        case_id = newest_waiting_id(first)
        assert first.post(f"/conversations/{case_id}/accept").status_code == 200
        taken = second.post(f"/conversations/{case_id}/accept")
        assert taken.status_code in (403, 409)
        assert second.get(f"/conversations/{case_id}/messages").status_code == 403
        assert (
            first.post(f"/conversations/{case_id}/close", {"outcome": "other"}).status_code == 200
        )
    finally:
        first.close()
        second.close()


# -- consent ---------------------------------------------------------------------------------


def test_refused_history_is_refused_by_the_api_and_audited(
    server: LiveServer, person: Person, counsellor: Counsellor
) -> None:
    person.says_and_settles("công ty môi giới giữ giấy tờ của tôi")
    queued = person.asks_for_counsellor(FROM_NOW)
    assert queued[0] == RESPONSES["utter_handoff_not_shared"]
    case_id = newest_waiting_id(counsellor)
    item = counsellor.waiting_item(case_id)
    assert item["consent"] == "from_now" and item["screening"] is None
    assert counsellor.post(f"/conversations/{case_id}/accept").status_code == 200

    refused = counsellor.get(f"/conversations/{case_id}/messages")
    assert refused.status_code == 403
    assert "không đồng ý" in refused.json()["error"]
    since = counsellor.get(f"/conversations/{case_id}/messages", **{"from": "handoff"})
    assert since.status_code == 200
    texts = [m["text"] for m in since.json()["messages"]]
    assert "công ty môi giới giữ giấy tờ của tôi" not in texts
    assert "tôi muốn nói chuyện với tư vấn viên" not in texts
    assert RESPONSES["utter_handoff_accepted"] in texts
    details = counsellor.get(f"/conversations/{case_id}").json()
    assert details["history_allowed"] is False and details["cues"] == []

    supervisor = Counsellor(server, "giamsat", PASSWORD)
    try:
        assert supervisor.get(f"/conversations/{case_id}/messages").status_code == 403
        log = supervisor.get("/audit", conversation_id=case_id).json()["entries"]
        refusals = [e for e in log if e["action"] == "history_refused"]
        assert {e["actor"] for e in refusals} == {"tuvan_a", "giamsat"}
    finally:
        supervisor.close()
    counsellor.post(f"/conversations/{case_id}/close", {"outcome": "other"})


def test_cancel_at_the_consent_question_queues_nothing(
    person: Person, counsellor: Counsellor
) -> None:
    before = {i["id"] for i in counsellor.queue()["waiting"]}
    replies = person.asks_for_counsellor('/handoff_consent{"consent": "cancel"}')
    assert replies == [RESPONSES["utter_handoff_cancelled"]]
    assert {i["id"] for i in counsellor.queue()["waiting"]} == before


# -- nobody on duty, cancel, call-back -------------------------------------------------------


def test_no_counsellor_gives_111_keeps_the_request_and_writes_back_later(
    server: LiveServer, person: Person
) -> None:
    _all_staff_off_duty(server)
    replies = person.asks_for_counsellor(FULL)
    assert replies == [RESPONSES["utter_handoff_no_counsellor"]]
    assert "111" in replies[0]

    later = Counsellor(server, "tuvan_b", PASSWORD)
    try:
        assert later.post("/me/availability", {"available": True}).json() == {"available": True}
        assert later.get("/me").json()["available"] is True
        case_id = newest_waiting_id(later)
        before = len(person.received())
        assert later.post(f"/conversations/{case_id}/accept").status_code == 200
        later.post(f"/conversations/{case_id}/messages", {"text": "Mình nhắn lại bạn đây."})
        assert person.wait_for(before + 2)[before:] == [
            RESPONSES["utter_handoff_accepted"],
            "Mình nhắn lại bạn đây.",
        ]
        later.post(f"/conversations/{case_id}/close", {"outcome": "resolved"})
    finally:
        later.close()


def test_the_person_can_cancel_while_waiting(server: LiveServer, person: Person) -> None:
    _all_staff_off_duty(server)
    person.asks_for_counsellor(FULL)
    watcher = Counsellor(server, "tuvan_a", PASSWORD)
    try:
        case_id = newest_waiting_id(watcher)
        live = watcher.events()
        try:
            assert person.says_and_settles("hủy") == [RESPONSES["utter_handoff_cancelled"]]
            live.next(lambda e: e["type"] == "queue")
        finally:
            live.close()
        assert case_id not in [i["id"] for i in watcher.queue()["waiting"]]
        assert watcher.post(f"/conversations/{case_id}/accept").status_code == 404
        assert person.says_and_settles("hủy") == [RESPONSES["utter_stop"]]
    finally:
        watcher.close()


def test_a_call_back_number_is_kept_encrypted_and_deleted_at_close(
    server: LiveServer, person: Person
) -> None:
    _all_staff_off_duty(server)
    person.asks_for_counsellor(FULL)
    assert person.says_and_settles("/request_callback") == [RESPONSES["utter_callback_ask_phone"]]
    assert person.says_and_settles("số mình là 0912 345 678") == [
        RESPONSES["utter_callback_ask_when"]
    ]
    assert person.says_and_settles("tối nay sau 8 giờ") == [RESPONSES["utter_callback_saved"]]

    counsellor = Counsellor(server, "tuvan_a", PASSWORD)
    try:
        case_id = newest_waiting_id(counsellor)
        assert counsellor.waiting_item(case_id)["callback_requested"] is True
        raw = query(server, "SELECT callback_phone_enc FROM conversations WHERE id = :i", i=case_id)
        assert raw[0][0] and "0912" not in raw[0][0]
        counsellor.post(f"/conversations/{case_id}/accept")
        details = counsellor.get(f"/conversations/{case_id}").json()
        assert details["callback"] == {"phone": "0912345678", "when": "tối nay sau 8 giờ"}
        texts = [
            m["text"]
            for m in counsellor.get(f"/conversations/{case_id}/messages").json()["messages"]
        ]
        assert not any("0912" in t for t in texts), "the number stays in the history"
        counsellor.post(f"/conversations/{case_id}/close", {"outcome": "resolved"})
        gone = query(
            server,
            "SELECT callback_phone_enc, callback_when_enc FROM conversations WHERE id = :i",
            i=case_id,
        )
        assert gone[0] == (None, None)
    finally:
        counsellor.close()


# -- while a counsellor holds it -------------------------------------------------------------


def _held_case(server: LiveServer, person: Person, counsellor: Counsellor) -> int:
    person.asks_for_counsellor(FULL)
    case_id = newest_waiting_id(counsellor)
    before = len(person.received())
    assert counsellor.post(f"/conversations/{case_id}/accept").status_code == 200
    person.wait_for(before + 1)
    return case_id


def test_danger_while_held_alerts_the_counsellor_and_gives_113_111(
    server: LiveServer, person: Person, counsellor: Counsellor
) -> None:
    case_id = _held_case(server, person, counsellor)
    live = counsellor.events()
    try:
        got = person.says_and_settles("cứu tôi với, họ đang đánh tôi")
        assert got == [RESPONSES["utter_emergency"]]
        alert = live.next(lambda e: e["type"] == "alert")
        assert alert == {"type": "alert", "conversation_id": case_id, "kind": "danger"}
    finally:
        live.close()
    counsellor.post(f"/conversations/{case_id}/close", {"outcome": "referred_police"})


def test_delete_my_data_still_works_while_held(
    server: LiveServer, person: Person, counsellor: Counsellor
) -> None:
    case_id = _held_case(server, person, counsellor)
    counsellor.post(f"/conversations/{case_id}/notes", {"text": "ghi chú riêng"})
    assert person.says_and_settles("xóa dữ liệu của tôi") == [RESPONSES["utter_delete_confirm"]]
    assert person.says_and_settles("đồng ý") == [RESPONSES["utter_deleted"]]
    assert (
        query(server, "SELECT count(*) FROM case_notes WHERE conversation_id = :i", i=case_id)[0][0]
        == 0
    )
    assert case_id not in [i["id"] for i in counsellor.queue()["mine"]]


def test_transfer_moves_the_conversation_and_its_access(
    server: LiveServer, person: Person, counsellor: Counsellor
) -> None:
    case_id = _held_case(server, person, counsellor)
    other = Counsellor(server, "tuvan_b", PASSWORD)
    try:
        moved = counsellor.post(f"/conversations/{case_id}/transfer", {"to": "tuvan_b"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["assigned_to"]["username"] == "tuvan_b"
        assert counsellor.get(f"/conversations/{case_id}/messages").status_code == 403
        assert (
            counsellor.post(f"/conversations/{case_id}/messages", {"text": "x"}).status_code == 403
        )
        before = len(person.received())
        sent = other.post(f"/conversations/{case_id}/messages", {"text": "Mình tiếp nhận nhé."})
        assert sent.status_code == 201
        assert person.wait_for(before + 1)[-1] == "Mình tiếp nhận nhé."
        assert (
            other.post(f"/conversations/{case_id}/transfer", {"to": "quantri"}).status_code == 400
        )
        referred = other.post(f"/conversations/{case_id}/refer", {"to": "111"})
        assert referred.status_code == 200
        assert person.wait_for(before + 2)[-1] == RESPONSES["utter_refer_111"]
        other.post(f"/conversations/{case_id}/close", {"outcome": "referred_111"})
    finally:
        other.close()


# -- notes, roles, audit ---------------------------------------------------------------------


def test_notes_are_private_encrypted_and_every_read_is_audited(
    server: LiveServer, person: Person, counsellor: Counsellor
) -> None:
    case_id = _held_case(server, person, counsellor)
    added = counsellor.post(f"/conversations/{case_id}/notes", {"text": "Cần gọi lại sáng mai"})
    assert added.status_code == 201
    notes = counsellor.get(f"/conversations/{case_id}/notes").json()["notes"]
    assert [(n["author"], n["text"]) for n in notes] == [("tuvan_a", "Cần gọi lại sáng mai")]
    raw = query(server, "SELECT text_enc FROM case_notes WHERE conversation_id = :i", i=case_id)
    assert "gọi lại" not in raw[0][0]
    counsellor.get(f"/conversations/{case_id}")
    counsellor.get(f"/conversations/{case_id}/messages")

    other = Counsellor(server, "tuvan_b", PASSWORD)
    admin = Counsellor(server, "quantri", PASSWORD)
    supervisor = Counsellor(server, "giamsat", PASSWORD)
    try:
        assert other.get(f"/conversations/{case_id}/notes").status_code == 403
        assert admin.get("/queue").status_code == 403
        assert admin.get(f"/conversations/{case_id}/messages").status_code == 403
        assert counsellor.get("/audit").status_code == 403
        log = supervisor.get("/audit", conversation_id=case_id).json()["entries"]
        seen = {(e["actor"], e["action"]) for e in log}
        for action in (
            "conversation_accepted",
            "note_added",
            "notes_read",
            "conversation_viewed",
            "messages_read",
        ):
            assert ("tuvan_a", action) in seen, action
        assert ("tuvan_b", "access_denied") in seen
        assert (
            supervisor.post(f"/conversations/{case_id}/close", {"outcome": "x"}).status_code == 400
        )
    finally:
        other.close()
        admin.close()
        supervisor.close()
    counsellor.post(f"/conversations/{case_id}/close", {"outcome": "resolved"})


def test_writes_need_csrf_and_bad_bodies_get_clear_errors(
    server: LiveServer, counsellor: Counsellor
) -> None:
    no_csrf = counsellor.http.post("/api/v1/me/availability", json={"available": True})
    assert no_csrf.status_code == 403
    assert counsellor.post("/me/availability", {"available": "có"}).status_code == 400
    assert counsellor.post("/conversations/999999/accept").status_code == 404
    bad = counsellor.http.post(
        "/api/v1/conversations/1/notes",
        content=b"{not json",
        headers={"X-CSRF-Token": counsellor.csrf, "Content-Type": "application/json"},
    )
    assert bad.status_code in (400, 403, 404)
    assert counsellor.get("/audit", limit="nhiều").status_code == 403


def test_the_events_socket_needs_a_session(server: LiveServer) -> None:
    url = server.base_url.replace("http://", "ws://") + "/api/v1/events"
    with connect(url, open_timeout=10) as socket, pytest.raises(Exception):  # noqa: B017
        socket.recv(timeout=5)
    assert socket.close_code == 4401
    with (
        connect(
            url,
            open_timeout=10,
            additional_headers={"Origin": "https://evil.example"},
        ) as foreign,
        pytest.raises(Exception),  # noqa: B017
    ):
        foreign.recv(timeout=5)
    assert foreign.close_code == 4403
