"""Messenger end to end: one real server configured for Messenger only (without the
HUMAN_AGENT tag) against the fake Graph Send API, with a counsellor on the console.

The issue's "done means" for Messenger: the subscription check; a signed message
answered in Vietnamese at ``/me/messages`` for that PSID; a badly signed one neither
stored nor answered; a redelivery answered once; a Send API failure retried into
exactly one delivery; a counsellor's console reply reaching the person (as a
``RESPONSE``, the person having just written); typing "1" picking the first numbered
choice; and a server log that holds neither what people wrote, nor their PSIDs, nor
the app secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import REPO, LiveServer, create_staff, make_settings, sqlite_only
from console_client import Counsellor
from platform_fakes import FakePlatform
from sqlalchemy import text

from bot.config import Settings
from bot.storage.crypto import Vault, pseudonymise
from bot.storage.db import create_engine

pytestmark = pytest.mark.slow

APP_SECRET = "fb-app-secret"
VERIFY_TOKEN = "fb-verify-token"
PAGE_TOKEN = "fb-page-token"
PAGE_ID = "104732915820467"
WEBHOOK = "/webhooks/facebook/webhook"
SEND = "/me/messages"
PASSWORD = "mật khẩu tư vấn 2026 đủ dài"
COUNSELLOR = "tuvan_messenger"
QUIET_SECONDS = 0.5  # no further reply for this long: the turn is over
RESPONSES = {
    name: variants[0]["text"]
    for name, variants in yaml.safe_load(
        (REPO / "data" / "responses.yml").read_text(encoding="utf-8")
    )["responses"].items()
}

_psids = itertools.count(7245019384655001)
_mids = itertools.count(1)
# what this module's people wrote and who they are: none of it may reach the log
WRITTEN: set[str] = set()
PSIDS: set[str] = set()


# -- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, platform: FakePlatform
) -> Iterator[LiveServer]:
    with sqlite_only(tmp_path_factory) as database_url:
        settings = make_settings(tmp_path_factory.mktemp("messenger"), database_url, model_dir)
        env = {
            "DONGHANH_FACEBOOK_APP_SECRET": APP_SECRET,
            "DONGHANH_FACEBOOK_PAGE_TOKEN": PAGE_TOKEN,
            "DONGHANH_FACEBOOK_VERIFY_TOKEN": VERIFY_TOKEN,
            "DONGHANH_FACEBOOK_GRAPH_URL": platform.graph_url,
            "DONGHANH_OUTBOX_RETRY_BASE_SECONDS": "0.05",
            "DONGHANH_SERVICE_HOURS": "mon-sun 00:00-24:00",
        }
        live = LiveServer(settings, env)
        for name in list(live.env):  # Messenger only, and without the HUMAN_AGENT tag
            if name.startswith(("DONGHANH_TELEGRAM_", "DONGHANH_ZALO_")) or name in (
                "DONGHANH_FACEBOOK_HUMAN_AGENT",
                "DONGHANH_CALLBACK_URL",
            ):
                del live.env[name]
        live.start()
        asyncio.run(create_staff(settings, [(COUNSELLOR, "counsellor")], PASSWORD))
        yield live
        live.stop()


@pytest.fixture
def counsellor(server: LiveServer) -> Iterator[Counsellor]:
    member = Counsellor(server, COUNSELLOR, PASSWORD)
    available = member.post("/me/availability", {"available": True})
    assert available.json() == {"available": True}, available.text
    yield member
    member.close()


# -- reading the database --------------------------------------------------------------------


async def _stored(settings: Settings, psid: str) -> tuple[list[str], list[str]]:
    """What the person wrote (decrypted, in order), and their outbox items' statuses."""
    pseudonym = pseudonymise(settings.pseudonym_secret, "facebook", psid)
    vault = Vault(settings.encryption_keys)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            inbound = await connection.execute(
                text(
                    "SELECT m.text_enc FROM messages m JOIN conversations c"
                    " ON c.id = m.conversation_id JOIN contacts p ON p.id = c.contact_id"
                    " WHERE p.pseudonym = :p AND m.direction = 'in' ORDER BY m.id"
                ),
                {"p": pseudonym},
            )
            texts = [vault.decrypt(row[0]) for row in inbound]
            outbox = await connection.execute(
                text(
                    "SELECT o.status FROM outbox o JOIN contacts p ON p.id = o.contact_id"
                    " WHERE p.pseudonym = :p ORDER BY o.id"
                ),
                {"p": pseudonym},
            )
            return texts, [str(row[0]) for row in outbox]
    finally:
        await engine.dispose()


# -- a person on Messenger -------------------------------------------------------------------


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(
    server: LiveServer, body: bytes, sign: str = "valid", secret: str = APP_SECRET
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if sign == "valid":
        headers["X-Hub-Signature-256"] = signature(body, secret)
    elif sign == "bad":
        headers["X-Hub-Signature-256"] = signature(body, "another-app-secret")
    return httpx.post(server.base_url + WEBHOOK, content=body, headers=headers, timeout=30)


class Person:
    """Someone writing to the page; what the page sends them is read at the fake."""

    def __init__(self, server: LiveServer, platform: FakePlatform) -> None:
        self.server = server
        self.platform = platform
        self.psid = str(next(_psids))
        PSIDS.add(self.psid)

    def event_body(
        self,
        words: str,
        *,
        quick_reply: str | None = None,
        timestamp_ms: int | None = None,
    ) -> bytes:
        WRITTEN.add(words)
        now = timestamp_ms or int(time.time() * 1000)
        message: dict[str, Any] = {"mid": f"m_e2e{next(_mids):06d}_{self.psid}", "text": words}
        if quick_reply is not None:
            message["quick_reply"] = {"payload": quick_reply}
        body = {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "time": now + 40,
                    "messaging": [
                        {
                            "sender": {"id": self.psid},
                            "recipient": {"id": PAGE_ID},
                            "timestamp": now,
                            "message": message,
                        }
                    ],
                }
            ],
        }
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def send(self, body: bytes, sign: str = "valid") -> httpx.Response:
        return post_signed(self.server, body, sign)

    def say(self, words: str, **options: Any) -> None:
        response = self.send(self.event_body(words, **options))
        assert response.status_code == 200, response.text
        assert response.text == "EVENT_RECEIVED"

    def received(self) -> list[dict[str, Any]]:
        """The bodies the Send API accepted for this person, in order."""
        return self.platform.delivered("facebook", self.psid)

    def texts(self) -> list[str]:
        return [body["message"]["text"] for body in self.received()]

    def settle(self, before: int) -> list[dict[str, Any]]:
        """Once a reply has come after ``before``, wait until nothing more arrives."""
        self.platform.wait_delivered("facebook", self.psid, before + 1)
        seen = len(self.received())
        deadline = time.monotonic() + QUIET_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if len(self.received()) != seen:
                seen, deadline = len(self.received()), time.monotonic() + QUIET_SECONDS
        return self.received()[before:]

    def says_and_settles(self, words: str, **options: Any) -> list[dict[str, Any]]:
        before = len(self.received())
        self.say(words, **options)
        return self.settle(before)

    def stored(self) -> tuple[list[str], list[str]]:
        return asyncio.run(_stored(self.server.settings, self.psid))

    def all_delivered(self) -> None:
        """Every reply in the outbox reached the fake, each exactly once."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            _, outbox = self.stored()
            if outbox and all(status == "sent" for status in outbox):
                break
            time.sleep(0.05)
        _, outbox = self.stored()
        assert outbox and set(outbox) == {"sent"}, outbox
        assert len(self.received()) == len(outbox)


@pytest.fixture
def person(server: LiveServer, platform: FakePlatform) -> Person:
    return Person(server, platform)


def quick_reply_titles(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(q["title"], q["payload"]) for q in body["message"].get("quick_replies", [])]


# -- the subscription check ------------------------------------------------------------------


def test_the_subscription_check_answers_the_challenge(server: LiveServer) -> None:
    response = httpx.get(
        server.base_url + WEBHOOK,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "not-the-token", "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.challenge": "42"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
    ],
    ids=["wrong-token", "empty-token", "no-token", "no-mode", "other-mode"],
)
def test_a_failed_subscription_check_is_forbidden(
    server: LiveServer, params: dict[str, str]
) -> None:
    response = httpx.get(server.base_url + WEBHOOK, params=params)
    assert response.status_code == 403
    assert "42" not in response.text


# -- (a) a signed message is answered ---------------------------------------------------------


def test_a_signed_message_is_answered_in_vietnamese_for_that_psid(
    person: Person, platform: FakePlatform
) -> None:
    replies = person.says_and_settles("tôi bị giữ hộ chiếu")
    assert replies, "no reply reached the Send API"
    assert any("111" in body["message"]["text"] for body in replies), replies
    for body in replies:
        assert body["recipient"] == {"id": person.psid}
        assert body["messaging_type"] == "RESPONSE"
        assert "tag" not in body
    mine = [c for c in platform.calls_to(SEND) if c.body["recipient"]["id"] == person.psid]
    assert mine and all(c.query == {"access_token": PAGE_TOKEN} for c in mine)
    person.all_delivered()
    texts, outbox = person.stored()
    assert texts == ["tôi bị giữ hộ chiếu"]
    assert len(outbox) == len(replies)


def test_a_quick_reply_tap_is_taken_as_its_payload(person: Person) -> None:
    replies = person.says_and_settles("Gặp tư vấn viên", quick_reply="/request_counsellor")
    assert [body["message"]["text"].split("\n\n")[0] for body in replies] == [
        RESPONSES["utter_handoff_consent"]
    ]
    assert person.stored()[0] == ["/request_counsellor"]


# -- (b) a bad signature ---------------------------------------------------------------------


@pytest.mark.parametrize(("sign", "status"), [("bad", 403), ("missing", 401)])
def test_an_unsigned_or_badly_signed_event_is_neither_stored_nor_answered(
    person: Person, platform: FakePlatform, sign: str, status: int
) -> None:
    response = person.send(person.event_body("tôi bị giữ hộ chiếu"), sign=sign)
    assert response.status_code == status
    assert "Traceback" not in response.text
    time.sleep(QUIET_SECONDS)
    assert person.received() == []
    assert person.stored() == ([], [])
    assert all(c.body["recipient"]["id"] != person.psid for c in platform.calls_to(SEND))


def test_a_body_signed_with_the_page_token_instead_of_the_app_secret_is_refused(
    person: Person,
) -> None:
    response = post_signed(person.server, person.event_body("cứu tôi với"), secret=PAGE_TOKEN)
    assert response.status_code == 403
    time.sleep(QUIET_SECONDS)
    assert person.received() == []
    assert person.stored() == ([], [])


# -- (c) a redelivery ------------------------------------------------------------------------


def test_a_redelivered_event_is_stored_and_answered_once(person: Person) -> None:
    body = person.event_body("xin chào")
    for _ in range(3):
        response = person.send(body)
        assert response.status_code == 200, response.text
    replies = person.settle(0)
    person.all_delivered()
    texts, outbox = person.stored()
    assert texts == ["xin chào"]
    assert len(replies) == len(outbox) == 1
    assert replies[0]["message"]["text"].startswith(RESPONSES["utter_greet"])


# -- (d) a Send API failure --------------------------------------------------------------------


def test_a_failed_send_is_retried_into_exactly_one_delivery(
    person: Person, platform: FakePlatform
) -> None:
    platform.fail_next(SEND, 500, {"error": {"message": "An unexpected error", "code": 2}})
    replies = person.says_and_settles("xin chào")
    person.all_delivered()
    mine = [c for c in platform.calls_to(SEND) if c.body["recipient"]["id"] == person.psid]
    assert [c.status for c in mine] == [500, 200]
    assert len(replies) == 1
    assert replies[0] == mine[0].body, "the retry is not the same message"
    assert replies[0]["message"]["text"].startswith(RESPONSES["utter_greet"])


def test_a_failed_send_is_retried_when_its_backoff_ends_not_at_the_next_idle_tick(
    person: Person, platform: FakePlatform
) -> None:
    """With DONGHANH_OUTBOX_RETRY_BASE_SECONDS=0.05 the first retry is due 0.05 s after
    the failure; the person should not wait for the dispatcher's 5-second idle poll."""
    platform.fail_next(SEND, 500, {"error": {"message": "An unexpected error", "code": 2}})
    person.say("xin chào")

    def mine() -> list[Any]:
        return [c for c in platform.calls_to(SEND) if c.body["recipient"]["id"] == person.psid]

    deadline = time.monotonic() + 15
    while not mine() and time.monotonic() < deadline:
        time.sleep(0.01)
    failed_at = time.monotonic()
    assert [c.status for c in mine()] == [500]
    person.platform.wait_delivered("facebook", person.psid, 1)
    waited = time.monotonic() - failed_at
    assert waited < 2.0, f"the retry came {waited:.1f} s after the failure"


def test_a_send_the_graph_api_refuses_for_good_is_not_retried(
    person: Person, platform: FakePlatform
) -> None:
    refusal = {
        "error": {
            "message": "(#551) This person isn't available right now.",
            "type": "OAuthException",
            "code": 551,
            "error_subcode": 1545041,
        }
    }
    platform.fail_next(SEND, 400, refusal)
    person.say("xin chào")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and person.stored()[1] != ["failed"]:
        time.sleep(0.05)
    assert person.stored()[1] == ["failed"]
    time.sleep(QUIET_SECONDS)
    mine = [c for c in platform.calls_to(SEND) if c.body["recipient"]["id"] == person.psid]
    assert [c.status for c in mine] == [400]
    assert person.received() == []


# -- (f) numbered choices --------------------------------------------------------------------


def test_typing_1_picks_the_first_of_the_numbered_choices(person: Person) -> None:
    [greeting] = person.says_and_settles("xin chào")
    text_ = greeting["message"]["text"]
    assert text_.startswith(RESPONSES["utter_greet"])
    assert "\n1. Tôi đang gặp nguy hiểm\n2. Gặp tư vấn viên\n" in text_
    assert quick_reply_titles(greeting) == [("1", "/emergency"), ("2", "/request_counsellor")]

    replies = person.says_and_settles("1")
    assert [body["message"]["text"].split("\n\n")[0] for body in replies] == [
        RESPONSES["utter_emergency"]
    ]
    assert "113" in replies[0]["message"]["text"]
    assert person.stored()[0] == ["xin chào", "1"]


# -- (e) a counsellor on the console ---------------------------------------------------------


def write(counsellor: Counsellor, case_id: int, words: str) -> httpx.Response:
    WRITTEN.add(words)
    return counsellor.post(f"/conversations/{case_id}/messages", {"text": words})


def _waiting_ids(counsellor: Counsellor) -> set[int]:
    return {int(item["id"]) for item in counsellor.queue()["waiting"]}


def _hand_over(person: Person, counsellor: Counsellor, **say: Any) -> int:
    """The person asks for a counsellor and consents by typing "1"; returns the case."""
    before = _waiting_ids(counsellor)
    [consent] = person.says_and_settles("tôi muốn nói chuyện với tư vấn viên", **say)
    assert consent["message"]["text"].startswith(RESPONSES["utter_handoff_consent"])
    assert [title for title, _ in quick_reply_titles(consent)] == ["1", "2", "3"]
    [queued] = person.says_and_settles("1", **say)
    assert queued["message"]["text"].startswith(RESPONSES["utter_handoff_queued"].split(".")[0]), (
        queued
    )
    [case_id] = _waiting_ids(counsellor) - before
    item = counsellor.waiting_item(case_id)
    assert item["channel"] == "facebook" and item["consent"] == "full"
    return case_id


def test_a_counsellors_console_reply_reaches_the_person_on_messenger(
    person: Person, counsellor: Counsellor
) -> None:
    case_id = _hand_over(person, counsellor)

    before = len(person.received())
    accepted = counsellor.post(f"/conversations/{case_id}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["reply_window"] == {"open": True, "reason": None}
    [hello] = person.settle(before)
    assert hello["message"]["text"] == RESPONSES["utter_handoff_accepted"]

    before = len(person.received())
    sent = write(counsellor, case_id, "Chào bạn, mình là tư vấn viên. Bạn ổn chứ?")
    assert sent.status_code == 201, sent.text
    [reply] = person.settle(before)
    assert reply == {
        "recipient": {"id": person.psid},
        "messaging_type": "RESPONSE",
        "message": {"text": "Chào bạn, mình là tư vấn viên. Bạn ổn chứ?"},
    }

    person.say("mình ở Bắc Ninh")
    history = counsellor.get(f"/conversations/{case_id}/messages")
    assert history.status_code == 200, history.text
    said = [(m["author"], m["text"]) for m in history.json()["messages"]]
    assert ("counsellor", "Chào bạn, mình là tư vấn viên. Bạn ổn chứ?") in said
    assert ("user", "mình ở Bắc Ninh") in said

    before = len(person.received())
    closed = counsellor.post(f"/conversations/{case_id}/close", {"outcome": "resolved"})
    assert closed.status_code == 200, closed.text
    assert person.settle(before)[-1]["message"]["text"] == RESPONSES["utter_handoff_closed"]
    person.all_delivered()


def test_without_human_agent_the_console_cannot_write_after_messengers_24_hours(
    person: Person, counsellor: Counsellor
) -> None:
    """The person last wrote 25 hours ago (Messenger's timestamps): the page may no
    longer write to them, and the console says so instead of sending."""
    long_ago = int((time.time() - 25 * 3600) * 1000)
    case_id = _hand_over(person, counsellor, timestamp_ms=long_ago)
    accepted = counsellor.post(f"/conversations/{case_id}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["reply_window"]["open"] is False
    assert "Messenger" in accepted.json()["reply_window"]["reason"]
    person.all_delivered()
    before = len(person.received())

    refused = write(counsellor, case_id, "Bạn còn đó không?")
    assert refused.status_code == 409, refused.text
    time.sleep(QUIET_SECONDS)
    assert len(person.received()) == before
    assert "Bạn còn đó không?" not in person.texts()

    # the person writes again: the window opens, and the reply goes as a RESPONSE
    person.say("mình vẫn ở đây")
    reopened = counsellor.get(f"/conversations/{case_id}")
    assert reopened.json()["reply_window"] == {"open": True, "reason": None}
    sent = write(counsellor, case_id, "Bạn còn đó không?")
    assert sent.status_code == 201, sent.text
    [reply] = person.settle(before)
    assert reply["message"] == {"text": "Bạn còn đó không?"}
    assert reply["messaging_type"] == "RESPONSE" and "tag" not in reply
    assert counsellor.post(f"/conversations/{case_id}/close", {"outcome": "resolved"}).is_success


# -- (g) the log -------------------------------------------------------------------------------


def test_the_log_holds_no_message_text_no_psid_and_no_secret(server: LiveServer) -> None:
    """Runs last: checks what every test above sent."""
    log = server.log_text()
    assert "webhook refused" in log, "the log is not the server's"
    assert PSIDS and WRITTEN
    for psid in PSIDS:
        assert psid not in log
    for words in WRITTEN:
        if len(words) > 3:  # not "1": a digit is in any log
            assert words not in log, words
    for secret in (APP_SECRET, PAGE_TOKEN, VERIFY_TOKEN):
        assert secret not in log
