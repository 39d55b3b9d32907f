"""The Telegram channel end to end: a real ``donghanh serve`` configured for Telegram
against a fake Bot API, and a counsellor on the console API.

What "done" means for Telegram: an update with the right secret token carrying
"tôi bị giữ hộ chiếu" is answered in Vietnamese through ``sendMessage`` to that chat; a
wrong or missing secret stores and sends nothing; a redelivered update (one after the
other, or both at once) is answered once; a ``sendMessage`` failure is retried without
a duplicate; a counsellor's console reply reaches the person's Telegram chat after a
handoff done by typing and tapping; typing "2" after a message with buttons picks the
second button; the server's log holds neither what people wrote nor their chat ids.

The one server is ``donghanh serve --telegram-polling`` with a webhook secret token as
well, so it also shows polling: deleteWebhook first, then getUpdates feeding the same
path, the offset moving on. Also: the polling loop surviving an update it cannot store
(in process), and ``donghanh telegram set-webhook`` (https only, a new secret token kept
in ``<instance>/secrets.yml`` with mode 600, the command menu published).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from conftest import REPO, LiveServer, create_staff, make_settings, sqlite_only
from console_client import Counsellor
from platform_fakes import TELEGRAM_TOKEN, FakePlatform
from sqlalchemy import text

from bot.app import register_telegram_webhook
from bot.channels.common import InboundRelay
from bot.channels.telegram.handler import (
    ALLOWED_UPDATES,
    COMMAND_MENU,
    WEBHOOK_PATH,
    TelegramInbound,
    poll_forever,
)
from bot.channels.telegram.sender import make_bot
from bot.config import load_settings
from bot.engine.turns import TurnEngine
from bot.errors import ConfigError
from bot.storage.crypto import Vault, pseudonymise
from bot.storage.db import create_engine

pytestmark = pytest.mark.slow

SECRET = "tg-secret-token-e2e"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PASSWORD = "mật khẩu tư vấn telegram đủ dài"
COUNSELLOR = "tuvan_telegram"
QUIET_SECONDS = 0.5  # no further reply after this long: the turn's replies are all out
RESPONSES = {
    name: variants[0]["text"]
    for name, variants in yaml.safe_load(
        (REPO / "data" / "responses.yml").read_text(encoding="utf-8")
    )["responses"].items()
}
VIETNAMESE = set("ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ")
_chat_ids = itertools.count(7391846501)
_update_ids = itertools.count(815240001)
_query_ids = itertools.count(3162734563232166001)
SAID: list[str] = []  # what people wrote in this module, none of which may be logged
CHATS: list[int] = []


# -- the server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePlatform]:
    platform = FakePlatform()
    yield platform
    platform.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, fake: FakePlatform
) -> Iterator[LiveServer]:
    """``donghanh serve --telegram-polling`` with a webhook secret token too: both ways
    in are served by this one process (a deployment uses one or the other), so the
    module needs one server."""
    with sqlite_only(tmp_path_factory) as url:
        settings = make_settings(tmp_path_factory.mktemp("telegram"), url, model_dir)
        env = {
            "DONGHANH_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "DONGHANH_TELEGRAM_SECRET_TOKEN": SECRET,
            "DONGHANH_TELEGRAM_BASE_URL": fake.telegram_base_url,
            "DONGHANH_SERVICE_HOURS": "mon-sun 00:00-24:00",
            "DONGHANH_OUTBOX_RETRY_BASE_SECONDS": "0.05",
            "DONGHANH_LOGIN_ATTEMPTS_PER_WINDOW": "1000",
        }
        live = LiveServer(settings, env)
        start_with_polling(live)
        try:
            asyncio.run(create_staff(settings, [(COUNSELLOR, "counsellor")], PASSWORD))
            yield live
        finally:
            live.stop()


def start_with_polling(live: LiveServer, timeout: float = 90.0) -> None:
    """What ``LiveServer.start`` does, with ``--telegram-polling`` on the command line."""
    donghanh = REPO / ".venv" / "bin" / "donghanh"
    command = [str(donghanh)] if donghanh.exists() else [sys.executable, "-m", "bot"]
    log = live.log_path.open("ab")
    live.process = subprocess.Popen(
        [*command, "serve", "--port", str(live.port), "--telegram-polling"],
        env=live.env,
        stdout=log,
        stderr=log,
        cwd=REPO,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert live.process.poll() is None, f"the server exited early:\n{live.log_text()}"
        try:
            if httpx.get(f"{live.base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    live.stop()
    raise AssertionError(f"the server did not become healthy:\n{live.log_text()}")


async def _stored(settings: Any, chat: int) -> tuple[list[str], int]:
    """What was stored for ``chat``: its inbound texts, and its outbox items."""
    pseudonym = pseudonymise(settings.pseudonym_secret, "telegram", str(chat))
    vault = Vault(settings.encryption_keys)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT m.text_enc FROM messages m JOIN conversations c"
                    " ON c.id = m.conversation_id JOIN contacts p ON p.id = c.contact_id"
                    " WHERE p.pseudonym = :p AND m.direction = 'in' ORDER BY m.id"
                ),
                {"p": pseudonym},
            )
            texts = [vault.decrypt(row[0]) for row in rows]
            outbox = await connection.scalar(
                text(
                    "SELECT count(*) FROM outbox o JOIN contacts p ON p.id = o.contact_id"
                    " WHERE p.pseudonym = :p"
                ),
                {"p": pseudonym},
            )
            return texts, int(outbox or 0)
    finally:
        await engine.dispose()


# -- a person on Telegram --------------------------------------------------------------------------


class TelegramPerson:
    """Someone in a private chat with the bot: their updates go to the webhook as
    Telegram sends them; what the bot sends them is read from the fake Bot API."""

    def __init__(self, server: LiveServer, fake: FakePlatform) -> None:
        self.server = server
        self.fake = fake
        self.chat_id = next(_chat_ids)
        self.chat = str(self.chat_id)
        CHATS.append(self.chat_id)
        self.user = {
            "id": self.chat_id,
            "is_bot": False,
            "first_name": "Lan",
            "language_code": "vi",
        }

    def text_update(self, words: str) -> dict[str, Any]:
        SAID.append(words)
        update_id = next(_update_ids)
        message: dict[str, Any] = {
            "message_id": update_id % 100000,
            "from": self.user,
            "chat": {"id": self.chat_id, "first_name": "Lan", "type": "private"},
            "date": int(time.time()),
            "text": words,
        }
        if words.startswith("/"):
            message["entities"] = [
                {"offset": 0, "length": len(words.split()[0]), "type": "bot_command"}
            ]
        return {"update_id": update_id, "message": message}

    def tap_update(self, data: str) -> dict[str, Any]:
        return {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": str(next(_query_ids)),
                "from": self.user,
                "message": {
                    "message_id": 1,
                    "from": {"id": 123456, "is_bot": True, "first_name": "Đồng Hành"},
                    "chat": {"id": self.chat_id, "first_name": "Lan", "type": "private"},
                    "date": int(time.time()),
                    "text": "…",
                },
                "chat_instance": "-7234551234567890123",
                "data": data,
            },
        }

    def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return httpx.post(
            self.server.base_url + WEBHOOK_PATH, json=update, headers=headers, timeout=30
        )

    def received(self) -> list[dict[str, Any]]:
        return self.fake.delivered("telegram", self.chat)

    def sends_and_settles(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        """Every reply to ``update``: once one has come, until none comes for a while."""
        before = len(self.received())
        response = self.post(update)
        assert response.status_code == 200, response.text
        assert response.json() == {"ok": True}
        self.fake.wait_delivered("telegram", self.chat, before + 1)
        self.settle()
        return self.received()[before:]

    def says(self, words: str) -> list[str]:
        return [body["text"] for body in self.sends_and_settles(self.text_update(words))]

    def settle(self) -> None:
        """Wait until no further message has come for ``QUIET_SECONDS``."""
        count = len(self.received())
        deadline = time.monotonic() + QUIET_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if len(self.received()) != count:
                count, deadline = len(self.received()), time.monotonic() + QUIET_SECONDS

    def stored(self) -> tuple[list[str], int]:
        return asyncio.run(_stored(self.server.settings, self.chat_id))

    def all_answered(self) -> list[dict[str, Any]]:
        """Wait until everything in this person's outbox was delivered; then nothing more
        may come."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            _, queued = self.stored()
            if queued and len(self.received()) >= queued:
                self.settle()
                delivered = self.received()
                assert len(delivered) == self.stored()[1], "more deliveries than replies"
                return delivered
            time.sleep(0.05)
        raise AssertionError(f"the replies to chat {self.chat} were not all delivered")


def button(body: dict[str, Any], title: str) -> str:
    """The callback data of the button titled ``title`` under a delivered message."""
    rows = body.get("reply_markup", {}).get("inline_keyboard", [])
    return next(str(row[0]["callback_data"]) for row in rows if row[0]["text"] == title)


@pytest.fixture
def person(server: LiveServer, fake: FakePlatform) -> TelegramPerson:
    return TelegramPerson(server, fake)


# -- (a) a Vietnamese message gets a Vietnamese answer ---------------------------------------------


def test_a_message_with_the_secret_is_answered_in_vietnamese_in_that_chat(
    person: TelegramPerson, fake: FakePlatform
) -> None:
    replies = person.says("tôi bị giữ hộ chiếu")
    assert replies
    assert any("111" in reply for reply in replies), replies
    assert all(VIETNAMESE & set(reply.lower()) for reply in replies), replies
    for call in fake.calls_to("/sendMessage"):
        if str(call.body.get("chat_id")) == person.chat:
            assert call.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert person.stored()[0] == ["tôi bị giữ hộ chiếu"]


# -- (b) a wrong or missing secret: nothing stored, nothing sent -----------------------------------


@pytest.mark.parametrize(
    ("secret", "status"),
    [("bad", 403), ("", 403), (None, 401), (SECRET + "x", 403), (SECRET[:-1], 403)],
    ids=["wrong", "empty", "missing", "longer", "shorter"],
)
def test_without_the_right_secret_nothing_is_stored_or_sent(
    person: TelegramPerson, secret: str | None, status: int
) -> None:
    response = person.post(person.text_update("tôi bị giữ hộ chiếu ở Nhật"), secret=secret)
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    time.sleep(QUIET_SECONDS)
    assert person.received() == []
    assert person.stored() == ([], 0)


# -- (c) a redelivered update is answered once -----------------------------------------------------


def test_the_same_update_twice_is_answered_once(person: TelegramPerson) -> None:
    update = person.text_update("tôi muốn đi làm ở Hàn Quốc")
    for _ in range(2):
        response = person.post(update)
        assert response.status_code == 200, response.text
    delivered = person.all_answered()
    texts = [body["text"] for body in delivered]
    assert texts and len(texts) == len(set(texts)), texts
    assert person.stored()[0] == ["tôi muốn đi làm ở Hàn Quốc"]


def test_the_same_update_twice_at_once_is_answered_once(person: TelegramPerson) -> None:
    update = person.text_update("xin chào, tôi cần hỏi về hợp đồng lao động")
    statuses: list[int] = []

    def deliver() -> None:
        statuses.append(person.post(update).status_code)

    senders = [threading.Thread(target=deliver) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert statuses == [200, 200]
    texts = [body["text"] for body in person.all_answered()]
    assert texts and len(texts) == len(set(texts)), texts
    assert len(person.stored()[0]) == 1


# -- (d) a failed sendMessage is retried, without a duplicate --------------------------------------


def test_a_failed_send_is_retried_once_and_delivered_once(
    person: TelegramPerson, fake: FakePlatform
) -> None:
    fake.fail_next("/sendMessage", 500, {"ok": False, "error_code": 500})
    response = person.post(person.text_update("tôi bị giữ hộ chiếu, công ty không trả lương"))
    assert response.status_code == 200, response.text
    delivered = person.all_answered()
    texts = [body["text"] for body in delivered]
    assert texts and len(texts) == len(set(texts)), texts
    tries = [c for c in fake.calls_to("/sendMessage") if str(c.body.get("chat_id")) == person.chat]
    assert [c.status for c in tries].count(500) == 1
    assert len(tries) == len(delivered) + 1  # the failed try, then each reply once


# -- (e) a counsellor's reply reaches the Telegram chat --------------------------------------------


def test_a_counsellors_console_reply_reaches_the_telegram_chat(
    server: LiveServer, person: TelegramPerson, fake: FakePlatform
) -> None:
    counsellor = Counsellor(server, COUNSELLOR, PASSWORD)
    try:
        available = counsellor.post("/me/availability", {"available": True})
        assert available.status_code == 200, available.text

        asked = person.sends_and_settles(person.text_update("gặp tư vấn viên"))
        assert asked[-1]["text"] == RESPONSES["utter_handoff_consent"]
        agree = button(asked[-1], "Đồng ý")
        assert agree == '/handoff_consent{"consent": "full"}'

        tap = person.tap_update(agree)
        queued = [body["text"] for body in person.sends_and_settles(tap)]
        assert queued and "tư vấn viên" in queued[-1], queued
        answered = fake.calls_to("/answerCallbackQuery")
        assert tap["callback_query"]["id"] in [
            str(c.body.get("callback_query_id")) for c in answered
        ]

        waiting = [i for i in counsellor.queue()["waiting"] if i["channel"] == "telegram"]
        assert waiting, counsellor.queue()
        case_id = int(max(waiting, key=lambda i: i["queued_at"])["id"])
        assert counsellor.waiting_item(case_id)["consent"] == "full"
        before = len(person.received())
        accepted = counsellor.post(f"/conversations/{case_id}/accept")
        assert accepted.status_code == 200, accepted.text
        fake.wait_delivered("telegram", person.chat, before + 1)
        assert person.received()[before]["text"] == RESPONSES["utter_handoff_accepted"]

        words = "Chào bạn, mình là tư vấn viên của Đồng Hành. Bạn đang ở đâu?"
        SAID.append(words)
        before = len(person.received())
        sent = counsellor.post(f"/conversations/{case_id}/messages", {"text": words})
        assert sent.status_code == 201, sent.text
        fake.wait_delivered("telegram", person.chat, before + 1)
        assert person.received()[before]["text"] == words

        # and what the person writes back reaches the counsellor
        person.post(person.text_update("em đang ở Đài Trung, cảm ơn chị"))
        deadline = time.monotonic() + 10
        history: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            messages = counsellor.get(f"/conversations/{case_id}/messages").json()["messages"]
            history = [(m["author"], m["text"]) for m in messages]
            if ("user", "em đang ở Đài Trung, cảm ơn chị") in history:
                break
            time.sleep(0.05)
        assert ("user", "em đang ở Đài Trung, cảm ơn chị") in history
        assert ("counsellor", words) in history
        before = len(person.received())
        closed = counsellor.post(f"/conversations/{case_id}/close", {"outcome": "information_only"})
        assert closed.status_code == 200, closed.text
        fake.wait_delivered("telegram", person.chat, before + 1)
        assert person.received()[before]["text"] == RESPONSES["utter_handoff_closed"]
    finally:
        counsellor.close()


# -- (f) typing a button's number picks it ---------------------------------------------------------


def test_typing_a_number_after_buttons_picks_that_button(person: TelegramPerson) -> None:
    greeting = person.sends_and_settles(person.text_update("/start"))
    assert greeting[-1]["text"] == RESPONSES["utter_greet"]
    assert button(greeting[-1], "Gặp tư vấn viên") == "/request_counsellor"
    assert person.says("2") == [RESPONSES["utter_handoff_consent"]]
    assert person.stored()[0] == ["/greet", "2"]  # stored as typed


def test_tapping_a_button_by_its_number_picks_it(person: TelegramPerson) -> None:
    """The ``#<n>`` callback data, as sent for payloads too long for Telegram."""
    greeting = person.sends_and_settles(person.text_update("/start"))
    assert greeting[-1]["text"] == RESPONSES["utter_greet"]
    replies = [b["text"] for b in person.sends_and_settles(person.tap_update("#1"))]
    assert replies == [RESPONSES["utter_emergency"]]


# -- polling ---------------------------------------------------------------------------------------


def _wait_for(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def test_polling_removes_the_webhook_then_answers_updates_from_get_updates(
    server: LiveServer, fake: FakePlatform
) -> None:
    methods = [c.path.rsplit("/", 1)[1] for c in fake.calls]
    assert "deleteWebhook" in methods and "getUpdates" in methods
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    [removed] = fake.calls_to("/deleteWebhook")
    assert removed.ok
    assert str(removed.body.get("drop_pending_updates")).lower() == "false"
    assert fake.calls_to("/getUpdates")[0].body.get("allowed_updates") == list(ALLOWED_UPDATES)

    person = TelegramPerson(server, fake)
    start = person.text_update("/start")
    fake.queue_update(start)
    [greeting] = fake.wait_delivered("telegram", person.chat, 1)
    assert greeting["text"] == RESPONSES["utter_greet"]
    after_start = str(start["update_id"] + 1)
    _wait_for(
        lambda: after_start in [str(c.body.get("offset")) for c in fake.calls_to("/getUpdates")],
        "the offset did not move past the update",
    )

    # a tap on the greeting's button comes by polling too, and its query is answered
    tap = person.tap_update(button(greeting, "Gặp tư vấn viên"))
    fake.queue_update(tap)
    replies = fake.wait_delivered("telegram", person.chat, 2)
    assert replies[1]["text"] == RESPONSES["utter_handoff_consent"]
    _wait_for(
        lambda: (
            tap["callback_query"]["id"]
            in [str(c.body.get("callback_query_id")) for c in fake.calls_to("/answerCallbackQuery")]
        ),
        "the tapped button's query was not answered",
    )
    after_tap = str(tap["update_id"] + 1)
    _wait_for(
        lambda: after_tap in [str(c.body.get("offset")) for c in fake.calls_to("/getUpdates")],
        "the offset did not move past the tap",
    )
    person.settle()
    assert len(person.received()) == 2  # each update answered once
    assert person.stored()[0] == ["/greet", "/request_counsellor"]


# -- (g) the log -----------------------------------------------------------------------------------


def test_the_log_holds_no_message_text_or_chat_id(server: LiveServer) -> None:
    log = server.log_text()
    assert "webhook_refused" in log  # the refusals above were logged: the log is read
    assert CHATS and SAID
    for chat in CHATS:
        assert str(chat) not in log
    for words in SAID:
        if len(words) > 5 and not words.startswith("/"):
            assert words not in log, words
    for secret in (SECRET, TELEGRAM_TOKEN):
        assert secret not in log


# -- the polling loop, in process ------------------------------------------------------------------


async def test_polling_goes_on_after_an_update_cannot_be_stored() -> None:
    platform = FakePlatform()
    taken: list[int] = []

    class FailsOnce(TelegramInbound):
        async def take(self, engine: TurnEngine, data: dict[str, Any]) -> int:
            taken.append(int(data["update_id"]))
            if len(taken) == 1:
                raise OSError("database unavailable")
            return 1

    bot = make_bot(TELEGRAM_TOKEN, platform.telegram_base_url)
    platform.queue_update(
        {
            "update_id": 815249101,
            "message": {
                "message_id": 21,
                "chat": {"id": 7391846999, "type": "private"},
                "date": int(time.time()),
                "text": "xin chào",
            },
        }
    )
    polling = asyncio.create_task(
        poll_forever(FailsOnce(bot, InboundRelay("telegram")), cast(TurnEngine, None))
    )
    try:
        for _ in range(100):  # up to 5 s
            if len(taken) >= 2 or polling.done():
                break
            await asyncio.sleep(0.05)
        assert not polling.done(), "the polling loop ended"
        assert taken[:2] == [815249101, 815249101]  # the update is taken again, not lost
    finally:
        polling.cancel()
        with contextlib.suppress(BaseException):
            await polling
        await bot.shutdown()
        platform.close()


# -- donghanh telegram set-webhook -----------------------------------------------------------------


def _cli_env(instance: Path, platform: FakePlatform) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DONGHANH_")}
    return env | {
        "DONGHANH_INSTANCE_DIR": str(instance),
        "DONGHANH_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "DONGHANH_TELEGRAM_BASE_URL": platform.telegram_base_url,
        "DONGHANH_LOG_LEVEL": "WARNING",
    }


def _set_webhook(url: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "telegram", "set-webhook", url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_set_webhook_registers_the_https_address_and_keeps_a_new_secret(
    tmp_path: Path,
) -> None:
    """Both commands run at once (each takes seconds to start): an https address is
    registered, an http one is refused."""
    good, refused = FakePlatform(), FakePlatform()
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secrets.yml").write_text(
        yaml.safe_dump({"pseudonym_secret": "kept-as-it-was"}), encoding="utf-8"
    )
    other_instance = tmp_path / "other"
    try:
        registering = _set_webhook("https://example.org", _cli_env(instance, good))
        refusing = _set_webhook("http://example.org", _cli_env(other_instance, refused))
        out, err = registering.communicate(timeout=120)
        refused_out, refused_err = refusing.communicate(timeout=120)

        assert registering.returncode == 0, err
        [registered] = good.calls_to("/setWebhook")
        assert registered.body["url"] == f"https://example.org{WEBHOOK_PATH}"
        secret = str(registered.body["secret_token"])
        assert len(secret) >= 32
        assert set(secret) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        )
        assert registered.body["allowed_updates"] == list(ALLOWED_UPDATES)
        [menu] = good.calls_to("/setMyCommands")
        assert [c["command"] for c in menu.body["commands"]] == [n for n, _ in COMMAND_MENU]
        methods = [c.path.rsplit("/", 1)[1] for c in good.calls]
        assert methods.index("setWebhook") < methods.index("setMyCommands")

        secrets_file = instance / "secrets.yml"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        stored = yaml.safe_load(secrets_file.read_text(encoding="utf-8"))
        # the secrets already there are kept; the ones a first run needs are added
        assert stored["pseudonym_secret"] == "kept-as-it-was"
        assert stored["telegram_secret_token"] == secret
        assert stored["encryption_keys"]
        assert f"https://example.org{WEBHOOK_PATH}" in out
        assert secret not in out + err and TELEGRAM_TOKEN not in out + err
        # the server started next reads the new secret
        assert load_settings(_cli_env(instance, good)).telegram_secret_token == secret

        assert refusing.returncode == 2, refused_out + refused_err
        assert "https://" in refused_err
        assert "Traceback" not in refused_err
        assert refused.calls == []
        assert not (other_instance / "secrets.yml").exists()
    finally:
        good.close()
        refused.close()


async def test_set_webhook_again_replaces_the_secret(tmp_path: Path) -> None:
    platform = FakePlatform()
    try:
        settings = load_settings(_cli_env(tmp_path / "instance", platform))
        url, path = await register_telegram_webhook(settings, "https://example.org/dh/")
        assert url == f"https://example.org/dh{WEBHOOK_PATH}"
        first = yaml.safe_load(path.read_text(encoding="utf-8"))["telegram_secret_token"]
        await register_telegram_webhook(settings, "https://example.org/dh")
        second = yaml.safe_load(path.read_text(encoding="utf-8"))["telegram_secret_token"]
        assert first != second
        sent = [str(c.body["secret_token"]) for c in platform.calls_to("/setWebhook")]
        assert sent == [first, second]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        platform.close()


async def test_set_webhook_refused_by_telegram_keeps_no_secret(tmp_path: Path) -> None:
    platform = FakePlatform()
    platform.fail_next(
        "/setWebhook",
        400,
        {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: bad webhook: HTTPS url must be provided",
        },
    )
    try:
        settings = load_settings(_cli_env(tmp_path / "instance", platform))
        with pytest.raises(ConfigError, match="Telegram refused the webhook"):
            await register_telegram_webhook(settings, "https://example.org")
        assert not (tmp_path / "instance" / "secrets.yml").exists()
        assert platform.calls_to("/setMyCommands") == []
    finally:
        platform.close()


async def test_set_webhook_without_a_token_says_so(tmp_path: Path) -> None:
    platform = FakePlatform()
    try:
        env = _cli_env(tmp_path / "instance", platform)
        del env["DONGHANH_TELEGRAM_TOKEN"]
        with pytest.raises(ConfigError, match="DONGHANH_TELEGRAM_TOKEN"):
            await register_telegram_webhook(load_settings(env), "https://example.org")
        assert platform.calls == []
    finally:
        platform.close()
