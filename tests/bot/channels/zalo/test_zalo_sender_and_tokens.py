"""Replies out to Zalo (``bot.channels.zalo.sender``) and the OA access token kept
fresh (``bot.channels.zalo.tokens``, ``bot.storage.channel_state``), against the fake
Zalo API and OAuth server and a real SQLite database, without a server of ours.

The message body (recipient, text, ``oa.query.hide`` template buttons; more than five
buttons as a numbered list), long replies split within 2,000 characters, Zalo's error
codes turned into what the outbox needs; the token pair refreshed on first use and
stored encrypted, read by another worker or after a restart without refreshing again,
refreshed when Zalo rejects it, refreshed once when two workers race, replaced when an
admin configures new credentials, and a failed refresh raising an alert for admins
(with no token in it) that a later success resolves.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, sqlite_only
from cryptography.fernet import Fernet
from platform_fakes import FakePlatform
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.common import CHOOSE_BY_NUMBER, RateLimiter, numbered_text
from bot.channels.text import text_length
from bot.channels.zalo.sender import MAX_BUTTONS, ZaloSender
from bot.channels.zalo.tokens import ALERT_KIND, ZaloTokens
from bot.domain import Button, Delivery, DeliveryError, Reply
from bot.engine.choices import resolve_choice
from bot.storage.channel_state import ChannelStateStore
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import utcnow

APP_ID = "1234567890"
APP_SECRET = "zalo-app-secret"
ACCESS_0 = "zalo-access-0"
REFRESH_0 = "zalo-refresh-0"
SEND = "/v3.0/oa/message/cs"
OAUTH = "/v4/oa/access_token"
LIMIT = 2000
INVALID_REFRESH = {
    "error": -14014,
    "error_name": "Invalid refresh token",
    "error_description": "Refresh token is invalid or expired",
}
GREETING_BUTTONS = (
    Button("Tôi đang gặp nguy hiểm", "/emergency"),
    Button("Gặp tư vấn viên", "/request_counsellor"),
    Button("Hỏi về hộ chiếu", "/ask_passport"),
)
_outbox_ids = itertools.count(1)
_users = itertools.count(2947018536177770001)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One migrated SQLite file per module; each test works on its own copy."""
    with sqlite_only(tmp_path_factory) as url:
        yield Path(url.removeprefix("sqlite+aiosqlite:///"))


@pytest.fixture
def database_url(template_database: Path, tmp_path: Path) -> str:
    copy = tmp_path / "zalo.sqlite3"
    shutil.copyfile(template_database, copy)
    return f"sqlite+aiosqlite:///{copy}"


@pytest.fixture
def vault() -> Vault:
    return Vault([Fernet.generate_key().decode()])


class Stores:
    """ChannelStateStores on one database, each with its own engine (a worker each)."""

    def __init__(self, url: str, vault: Vault) -> None:
        self.url = url
        self.vault = vault
        self.engines: list[AsyncEngine] = []

    def new(self) -> ChannelStateStore:
        engine = create_engine(self.url)
        self.engines.append(engine)
        return ChannelStateStore(session_factory(engine), self.vault)

    async def rows(self, sql: str) -> list[Any]:
        engine = create_engine(self.url)
        try:
            async with engine.connect() as connection:
                return list(await connection.execute(text(sql)))
        finally:
            await engine.dispose()

    async def close(self) -> None:
        for engine in self.engines:
            await engine.dispose()


@pytest.fixture
async def stores(database_url: str, vault: Vault) -> AsyncIterator[Stores]:
    opened = Stores(database_url, vault)
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakePlatform]:
    platform = FakePlatform()
    yield platform
    platform.close()  # takes half a second: once per module, not per test


@pytest.fixture
def fake(module_fake: FakePlatform) -> FakePlatform:
    """The module's fake, as new: no calls, no scripted failures, pairs from 1 again."""
    with module_fake._lock:
        module_fake.calls.clear()
        module_fake.failures.clear()
        module_fake.zalo_pairs_issued = 0
        module_fake.zalo_refresh_answer = None
    return module_fake


class Zalo:
    """Builds ZaloTokens and ZaloSenders against the fake, and closes them."""

    def __init__(self, fake: FakePlatform, stores: Stores) -> None:
        self.fake = fake
        self.stores = stores
        self.closables: list[Any] = []

    def tokens(
        self,
        state: ChannelStateStore | None = None,
        *,
        app_secret: str = APP_SECRET,
        access_token: str = ACCESS_0,
        refresh_token: str = REFRESH_0,
        oauth_url: str | None = None,
    ) -> ZaloTokens:
        tokens = ZaloTokens(
            state or self.stores.new(),
            app_id=APP_ID,
            app_secret=app_secret,
            oauth_url=oauth_url or self.fake.zalo_oauth_url,
            access_token=access_token,
            refresh_token=refresh_token,
        )
        self.closables.append(tokens)
        return tokens

    def sender(self, tokens: ZaloTokens | None = None) -> ZaloSender:
        sender = ZaloSender(
            self.fake.zalo_api_url, tokens or self.tokens(), rate=RateLimiter(1000, burst=1000)
        )
        self.closables.append(sender)
        return sender

    async def close(self) -> None:
        for item in self.closables:
            await item.close()


@pytest.fixture
async def zalo(fake: FakePlatform, stores: Stores) -> AsyncIterator[Zalo]:
    made = Zalo(fake, stores)
    yield made
    await made.close()


def delivery(reply: Reply, user: str | None = None) -> Delivery:
    return Delivery(
        outbox_id=next(_outbox_ids),
        channel="zalo",
        recipient_id=user or str(next(_users)),
        pseudonym="p-test",
        reply=reply,
        attempts=0,
    )


def sends_to(fake: FakePlatform, user: str) -> list[Any]:
    """Every send call for ``user``, whatever Zalo answered."""
    return [c for c in fake.calls_to(SEND) if c.body.get("recipient", {}).get("user_id") == user]


def long_text(chars: int) -> str:
    sentence = "Không ai được giữ hộ chiếu của bạn, kể cả chủ sử dụng lao động. "
    return (sentence * (chars // len(sentence) + 1))[:chars].strip()


async def open_alerts(state: ChannelStateStore) -> list[dict[str, Any]]:
    return [a for a in await state.get_alerts() if a["resolved_at"] is None]


# -- the message body -----------------------------------------------------------------------


async def test_a_plain_reply_is_text_for_the_user_without_an_attachment(
    zalo: Zalo, fake: FakePlatform
) -> None:
    user = str(next(_users))
    await zalo.sender().send(delivery(Reply("Cần gấp: gọi 111 (miễn phí, 24/7)."), user))
    assert fake.delivered("zalo", user) == [
        {"recipient": {"user_id": user}, "message": {"text": "Cần gấp: gọi 111 (miễn phí, 24/7)."}}
    ]


async def test_buttons_go_as_template_buttons_that_send_their_payload_hidden(
    zalo: Zalo, fake: FakePlatform
) -> None:
    user = str(next(_users))
    await zalo.sender().send(delivery(Reply("Bạn cần mình giúp gì?", GREETING_BUTTONS), user))
    [body] = fake.delivered("zalo", user)
    assert body == {
        "recipient": {"user_id": user},
        "message": {
            "text": "Bạn cần mình giúp gì?",
            "attachment": {
                "type": "template",
                "payload": {
                    "buttons": [
                        {"title": b.title, "type": "oa.query.hide", "payload": b.payload}
                        for b in GREETING_BUTTONS
                    ]
                },
            },
        },
    }


async def test_five_buttons_still_go_as_template_buttons(zalo: Zalo, fake: FakePlatform) -> None:
    buttons = tuple(Button(f"Lựa chọn {n}", f"/choice_{n}") for n in range(1, MAX_BUTTONS + 1))
    user = str(next(_users))
    await zalo.sender().send(delivery(Reply("Chọn một:", buttons), user))
    [body] = fake.delivered("zalo", user)
    assert body["message"]["text"] == "Chọn một:"
    sent = body["message"]["attachment"]["payload"]["buttons"]
    assert [(b["title"], b["type"], b["payload"]) for b in sent] == [
        (b.title, "oa.query.hide", b.payload) for b in buttons
    ]


async def test_six_buttons_become_a_numbered_list_answered_by_number(
    zalo: Zalo, fake: FakePlatform
) -> None:
    buttons = tuple(Button(f"Lựa chọn {n}", f"/choice_{n}") for n in range(1, 7))
    user = str(next(_users))
    await zalo.sender().send(delivery(Reply("Chọn một:", buttons), user))
    [body] = fake.delivered("zalo", user)
    assert "attachment" not in body["message"]
    sent = body["message"]["text"]
    assert sent == numbered_text("Chọn một:", buttons)
    assert sent.startswith("Chọn một:\n\n1. Lựa chọn 1\n")
    assert "6. Lựa chọn 6" in sent and sent.endswith(CHOOSE_BY_NUMBER)
    assert resolve_choice("6", buttons) == "/choice_6"  # what the person types back


@pytest.mark.parametrize(
    "button",
    [Button("Đ" * 101, "/emergency"), Button("Gặp tư vấn viên", "/x" + "a" * 1000)],
    ids=["title-over-100", "payload-over-1000"],
)
async def test_a_button_zalo_would_refuse_turns_the_list_into_numbered_text(
    zalo: Zalo, fake: FakePlatform, button: Button
) -> None:
    buttons = (Button("Có", "/affirm"), button)
    user = str(next(_users))
    await zalo.sender().send(delivery(Reply("Bạn chọn nhé?", buttons), user))
    [body] = fake.delivered("zalo", user)
    assert "attachment" not in body["message"]
    assert body["message"]["text"] == numbered_text("Bạn chọn nhé?", buttons)


async def test_a_long_reply_is_split_within_2000_with_the_buttons_on_the_last_part(
    zalo: Zalo, fake: FakePlatform
) -> None:
    original = long_text(4500)
    user = str(next(_users))
    await zalo.sender().send(delivery(Reply(original, GREETING_BUTTONS), user))
    bodies = fake.delivered("zalo", user)
    assert len(bodies) == 3
    for body in bodies:
        assert 0 < text_length(body["message"]["text"]) <= LIMIT
        assert body["recipient"] == {"user_id": user}
    assert [("attachment" in body["message"]) for body in bodies] == [False, False, True]
    joined = " ".join(body["message"]["text"] for body in bodies)
    assert " ".join(joined.split()) == " ".join(original.split())


# -- Zalo's answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "retryable"),
    [
        ({"error": -32, "message": "Out of quota"}, True),
        ({"error": -1, "message": "Internal error"}, True),
        ({"error": -213, "message": "User has not followed OA"}, False),
        ({"error": -201, "message": "Parameters are invalid"}, False),
        ({"error": -230, "message": "User has not interacted with the OA in 7 days"}, False),
        ({"message": "no error code"}, True),
        ("not an object", True),
    ],
    ids=["-32", "-1", "-213", "-201", "-230", "no-code", "not-an-object"],
)
async def test_zalos_error_codes_become_what_the_outbox_needs(
    zalo: Zalo, fake: FakePlatform, answer: Any, retryable: bool
) -> None:
    sender = zalo.sender()
    await sender.tokens.access_token()  # the first-use refresh, out of the way
    refreshes = len(fake.calls_to(OAUTH))
    fake.fail_next(SEND, 200, answer)
    user = str(next(_users))
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào"), user))
    assert failed.value.retryable is retryable
    assert len(sends_to(fake, user)) == 1, "a non-token error is not sent again at once"
    assert len(fake.calls_to(OAUTH)) == refreshes, "only a token error refreshes"


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (502, True), (429, True), (403, False), (404, False)]
)
async def test_http_errors_become_what_the_outbox_needs(
    zalo: Zalo, fake: FakePlatform, status: int, retryable: bool
) -> None:
    sender = zalo.sender()
    fake.fail_next(SEND, status, {"error": status})
    user = str(next(_users))
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào"), user))
    assert failed.value.retryable is retryable
    await sender.send(delivery(Reply("Xin chào lần nữa"), user))
    assert [b["message"]["text"] for b in fake.delivered("zalo", user)] == ["Xin chào lần nữa"]


async def test_zalo_unreachable_is_retryable(zalo: Zalo, fake: FakePlatform) -> None:
    tokens = zalo.tokens(app_secret="")  # no refresh: only the send is unreachable
    sender = ZaloSender(f"http://127.0.0.1:{free_port()}", tokens)
    zalo.closables.append(sender)
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào")))
    assert failed.value.retryable
    assert "unreachable" in str(failed.value)


# -- the token pair -------------------------------------------------------------------------


async def test_first_use_of_a_configured_pair_refreshes_once_then_sends_with_the_new_token(
    zalo: Zalo, fake: FakePlatform
) -> None:
    sender = zalo.sender()
    user = str(next(_users))
    await sender.send(delivery(Reply("Xin chào"), user))
    await sender.send(delivery(Reply("Xin chào lần hai"), user))

    [refresh] = fake.calls_to(OAUTH)
    assert refresh.headers["secret_key"] == APP_SECRET
    assert refresh.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert refresh.body == {
        "refresh_token": REFRESH_0,
        "app_id": APP_ID,
        "grant_type": "refresh_token",
    }
    assert [c.headers["access_token"] for c in sends_to(fake, user)] == [
        "zalo-access-1",
        "zalo-access-1",
    ]


async def test_the_new_pair_is_stored_encrypted(zalo: Zalo, stores: Stores, vault: Vault) -> None:
    tokens = zalo.tokens()
    assert await tokens.access_token() == "zalo-access-1"
    [row] = await stores.rows("SELECT * FROM channel_credentials")
    raw = " ".join(str(value) for value in row)
    for secret in ("zalo-access-1", "zalo-refresh-1", ACCESS_0, REFRESH_0, APP_SECRET):
        assert secret not in raw
    record = row._mapping
    assert record["channel"] == "zalo"
    assert vault.decrypt(record["access_token_enc"]) == "zalo-access-1"
    assert vault.decrypt(record["refresh_token_enc"]) == "zalo-refresh-1"
    assert record["seeded_from"] == hashlib.sha256(REFRESH_0.encode()).hexdigest()
    assert record["lease_until"] is None
    stored = await tokens.state.get_credentials("zalo")
    assert stored is not None and stored.expires_at is not None
    lifetime = stored.expires_at - utcnow()
    assert timedelta(hours=24) < lifetime <= timedelta(seconds=90000)  # the fake's expires_in


async def test_another_worker_or_a_restart_uses_the_stored_pair_without_refreshing(
    zalo: Zalo, fake: FakePlatform
) -> None:
    first = zalo.tokens()
    assert await first.access_token() == "zalo-access-1"
    second = zalo.tokens()  # its own engine: another worker, or the same after a restart
    await second.start()
    assert await second.access_token() == "zalo-access-1"
    user = str(next(_users))
    await zalo.sender(second).send(delivery(Reply("Xin chào"), user))
    assert [c.headers["access_token"] for c in sends_to(fake, user)] == ["zalo-access-1"]
    assert len(fake.calls_to(OAUTH)) == 1


@pytest.mark.parametrize("code", [-216, -124])
async def test_a_rejected_token_is_refreshed_and_the_part_sent_once_more(
    zalo: Zalo, fake: FakePlatform, code: int
) -> None:
    sender = zalo.sender()
    assert await sender.tokens.access_token() == "zalo-access-1"
    fake.fail_next(SEND, 200, {"error": code, "message": "Access token is invalid"})
    user = str(next(_users))
    await sender.send(delivery(Reply("Xin chào"), user))
    calls = sends_to(fake, user)
    assert [c.headers["access_token"] for c in calls] == ["zalo-access-1", "zalo-access-2"]
    assert calls[0].body == calls[1].body
    assert [c.body["refresh_token"] for c in fake.calls_to(OAUTH)] == [REFRESH_0, "zalo-refresh-1"]
    stored = await sender.tokens.state.get_credentials("zalo")
    assert stored is not None and stored.access_token == "zalo-access-2"


async def test_a_token_another_worker_already_replaced_is_not_refreshed_again(
    zalo: Zalo, fake: FakePlatform
) -> None:
    one, two = zalo.tokens(), zalo.tokens()
    assert await one.access_token() == "zalo-access-1"
    assert await two.access_token() == "zalo-access-1"
    await one.refresh_after_rejection("zalo-access-1")  # worker one saw a -216
    assert await one.access_token() == "zalo-access-2"

    fake.fail_next(SEND, 200, {"error": -216, "message": "Access token is invalid"})
    user = str(next(_users))
    await zalo.sender(two).send(delivery(Reply("Xin chào"), user))
    assert [c.headers["access_token"] for c in sends_to(fake, user)] == [
        "zalo-access-1",
        "zalo-access-2",
    ]
    assert len(fake.calls_to(OAUTH)) == 2, "worker two took the stored pair"


async def test_a_token_still_rejected_after_the_refresh_is_retried_by_the_outbox(
    zalo: Zalo, fake: FakePlatform
) -> None:
    sender = zalo.sender()
    await sender.tokens.access_token()
    fake.fail_next(SEND, 200, {"error": -216, "message": "Access token is invalid"}, times=2)
    user = str(next(_users))
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào"), user))
    assert failed.value.retryable
    assert len(sends_to(fake, user)) == 2


async def test_a_failed_refresh_opens_one_alert_that_a_later_success_resolves(
    zalo: Zalo, fake: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="donghanh")
    fake.zalo_refresh_answer = INVALID_REFRESH
    tokens = zalo.tokens()
    sender = zalo.sender(tokens)
    user = str(next(_users))
    await sender.send(delivery(Reply("Xin chào"), user))  # sent with the configured token
    assert [c.headers["access_token"] for c in sends_to(fake, user)] == [ACCESS_0]

    [alert] = await open_alerts(tokens.state)
    assert alert["kind"] == ALERT_KIND == "token_refresh_failed"
    assert alert["channel"] == "zalo"
    assert "-14014" in alert["detail"] and "Invalid refresh token" in alert["detail"]
    assert any(r.levelno == logging.ERROR and "refresh" in r.getMessage() for r in caplog.records)

    await tokens.refresh_if_due()  # it fails again: still the one alert
    assert len(fake.calls_to(OAUTH)) == 2
    assert len(await tokens.state.get_alerts()) == 1
    stored = await tokens.state.get_credentials("zalo")
    assert stored is not None and (stored.access_token, stored.refresh_token) == (
        ACCESS_0,
        REFRESH_0,
    ), "a failed refresh keeps the pair it had"

    fake.zalo_refresh_answer = None
    await tokens.refresh_if_due()  # the lease was released: this one is not blocked
    assert await tokens.access_token() == "zalo-access-1"
    assert await open_alerts(tokens.state) == []
    [resolved] = await tokens.state.get_alerts()
    assert resolved["id"] == alert["id"] and resolved["resolved_at"] is not None

    everything = repr(await tokens.state.get_alerts()) + caplog.text
    for secret in (ACCESS_0, REFRESH_0, "zalo-access-1", "zalo-refresh-1", APP_SECRET):
        assert secret not in everything


@pytest.mark.parametrize(
    ("script", "said"),
    [
        ((200, INVALID_REFRESH), "-14014"),
        ((200, {"error": -14002, "error_name": "Invalid app id"}), "-14002"),
        ((500, "Internal Server Error"), "500"),
        ((502, {"message": "Bad gateway"}), "502"),
        ((200, {"access_token": "", "refresh_token": "zalo-refresh-x"}), "refused"),
    ],
    ids=["invalid-refresh-token", "invalid-app-id", "500-not-json", "502", "empty-token"],
)
async def test_an_alert_names_the_failure_never_a_token(
    zalo: Zalo, fake: FakePlatform, script: tuple[int, Any], said: str
) -> None:
    fake.fail_next(OAUTH, *script)
    tokens = zalo.tokens()
    assert await tokens.access_token() == ACCESS_0
    [alert] = await open_alerts(tokens.state)
    assert said in alert["detail"]
    for secret in (ACCESS_0, REFRESH_0, APP_SECRET, "zalo-refresh-x"):
        assert secret not in alert["detail"]


async def test_oauth_unreachable_opens_an_alert_too(zalo: Zalo) -> None:
    tokens = zalo.tokens(oauth_url=f"http://127.0.0.1:{free_port()}")
    assert await tokens.access_token() == ACCESS_0
    [alert] = await open_alerts(tokens.state)
    assert alert["kind"] == ALERT_KIND and "unreachable" in alert["detail"]
    assert REFRESH_0 not in alert["detail"] and APP_SECRET not in alert["detail"]


async def test_new_credentials_from_an_admin_replace_the_stored_pair(
    zalo: Zalo, fake: FakePlatform, stores: Stores, vault: Vault
) -> None:
    old = zalo.tokens()
    assert await old.access_token() == "zalo-access-1"
    admin = zalo.tokens(access_token="admin-access-new", refresh_token="admin-refresh-new")
    await admin.start()
    [row] = await stores.rows("SELECT * FROM channel_credentials")
    record = row._mapping
    assert vault.decrypt(record["access_token_enc"]) == "admin-access-new"
    assert vault.decrypt(record["refresh_token_enc"]) == "admin-refresh-new"
    assert record["seeded_from"] == hashlib.sha256(b"admin-refresh-new").hexdigest()
    assert record["expires_at"] is None

    fake.zalo_refresh_answer = None
    assert await admin.access_token() == "zalo-access-2"
    assert fake.calls_to(OAUTH)[-1].body["refresh_token"] == "admin-refresh-new"
    # a restart with the same new configuration keeps the pair refreshed from it
    restarted = zalo.tokens(access_token="admin-access-new", refresh_token="admin-refresh-new")
    await restarted.start()
    assert await restarted.access_token() == "zalo-access-2"
    assert len(fake.calls_to(OAUTH)) == 2


async def test_without_an_app_secret_no_refresh_is_ever_attempted(
    zalo: Zalo, fake: FakePlatform
) -> None:
    tokens = zalo.tokens(app_secret="")
    assert tokens.can_refresh is False
    assert zalo.tokens(refresh_token="").can_refresh is False
    sender = zalo.sender(tokens)
    user = str(next(_users))
    await sender.send(delivery(Reply("Xin chào"), user))
    assert [c.headers["access_token"] for c in sends_to(fake, user)] == [ACCESS_0]

    fake.fail_next(SEND, 200, {"error": -216, "message": "Access token is invalid"}, times=2)
    with pytest.raises(DeliveryError) as failed:
        await sender.send(delivery(Reply("Xin chào lần hai"), user))
    assert failed.value.retryable
    await asyncio.wait_for(tokens.run_forever(), timeout=2)  # returns at once: refresh is off
    assert fake.calls_to(OAUTH) == []
    assert await open_alerts(tokens.state) == []


async def test_two_workers_racing_spend_the_refresh_token_once(
    zalo: Zalo, fake: FakePlatform
) -> None:
    workers = [zalo.tokens() for _ in range(2)]
    for worker in workers:
        await worker.start()
    await asyncio.gather(*(worker.refresh_if_due() for worker in workers))
    assert len(fake.calls_to(OAUTH)) == 1
    assert [await worker.access_token() for worker in workers] == ["zalo-access-1"] * 2
    assert len(fake.calls_to(OAUTH)) == 1


async def test_concurrent_sends_in_one_worker_refresh_once(zalo: Zalo, fake: FakePlatform) -> None:
    sender = zalo.sender()
    users = [str(next(_users)) for _ in range(5)]
    await asyncio.gather(*(sender.send(delivery(Reply("Xin chào"), user)) for user in users))
    assert len(fake.calls_to(OAUTH)) == 1
    for user in users:
        assert [c.headers["access_token"] for c in sends_to(fake, user)] == ["zalo-access-1"]


async def test_a_worker_that_read_the_old_pair_just_before_a_refresh_does_not_refresh_again(
    zalo: Zalo, fake: FakePlatform
) -> None:
    first, second = zalo.tokens(), zalo.tokens()
    await first.start()
    await second.start()
    read_old_pair = second.state.get_credentials

    async def read_then_let_the_first_worker_finish(channel: str) -> Any:
        stored = await read_old_pair(channel)  # the configured pair: due
        await first.refresh_if_due()  # meanwhile the first worker refreshes it
        return stored

    second.state.get_credentials = read_then_let_the_first_worker_finish  # type: ignore[method-assign]
    await second.refresh_if_due()
    assert len(fake.calls_to(OAUTH)) == 1
