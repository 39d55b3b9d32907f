"""ChannelStateStore (bot/storage/channel_state.py) on both databases.

Rotating credentials: stored encrypted, kept while the configured refresh token is the
same, replaced when it changes; the refresh lease goes to one caller at a time and comes
back when it expires or the refreshed pair is saved. Alerts for admins: one open alert per
kind and channel (the newer detail wins, cut to 300 characters), closed by resolving, and
a new one after that. The summary of failed deliveries per channel and reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from bot.domain import InboundMessage, Reply
from bot.storage.channel_state import ChannelStateStore, fingerprint
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import utcnow
from bot.storage.repository import Store, TurnOutcome

ACCESS = "zalo-access-0"
REFRESH = "zalo-refresh-0"
LEASE = timedelta(seconds=60)


@dataclass
class Stores:
    state: ChannelStateStore
    store: Store


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[Stores]:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    vault = Vault([Fernet.generate_key().decode()])
    yield Stores(ChannelStateStore(sessions, vault), Store(sessions, vault, "secret"))
    await engine.dispose()


async def raw_rows(stores: Stores, sql: str) -> list[tuple[object, ...]]:
    async with stores.store.sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql))]


# -- credentials -----------------------------------------------------------------------------


async def test_seeding_stores_the_pair_encrypted(stores: Stores) -> None:
    seeded = await stores.state.do_seed_credentials("zalo", ACCESS, REFRESH)
    assert (seeded.access_token, seeded.refresh_token, seeded.expires_at) == (ACCESS, REFRESH, None)
    assert await stores.state.get_credentials("zalo") == seeded
    assert await stores.state.get_credentials("telegram") is None
    rows = await raw_rows(stores, "SELECT * FROM channel_credentials")
    assert len(rows) == 1
    dump = repr(rows)
    assert ACCESS not in dump and REFRESH not in dump
    assert fingerprint(REFRESH) in dump  # which configured token the pair descends from


async def test_the_same_configured_token_keeps_the_refreshed_pair(stores: Stores) -> None:
    await stores.state.do_seed_credentials("zalo", ACCESS, REFRESH)
    assert await stores.state.do_claim_refresh("zalo", LEASE) is not None
    expiry = utcnow() + timedelta(hours=25)
    await stores.state.do_save_refreshed("zalo", "zalo-access-1", "zalo-refresh-1", expiry)
    again = await stores.state.do_seed_credentials("zalo", ACCESS, REFRESH)  # a restart
    assert (again.access_token, again.refresh_token) == ("zalo-access-1", "zalo-refresh-1")
    assert again.expires_at is not None
    assert abs(again.expires_at - expiry) < timedelta(seconds=1)


async def test_a_new_configured_token_replaces_the_stored_pair(stores: Stores) -> None:
    await stores.state.do_seed_credentials("zalo", ACCESS, REFRESH)
    await stores.state.do_save_refreshed(
        "zalo", "zalo-access-1", "zalo-refresh-1", utcnow() + timedelta(hours=1)
    )
    replaced = await stores.state.do_seed_credentials("zalo", "admin-access", "admin-refresh")
    assert (replaced.access_token, replaced.refresh_token) == ("admin-access", "admin-refresh")
    assert replaced.expires_at is None  # unknown: refreshed at the first chance
    assert await stores.state.get_credentials("zalo") == replaced
    assert await raw_rows(stores, "SELECT count(*) FROM channel_credentials") == [(1,)]


async def test_the_refresh_lease_goes_to_one_caller(stores: Stores) -> None:
    await stores.state.do_seed_credentials("zalo", ACCESS, REFRESH)
    claims = await asyncio.gather(
        stores.state.do_claim_refresh("zalo", LEASE),
        stores.state.do_claim_refresh("zalo", LEASE),
    )
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    assert winners[0].refresh_token == REFRESH
    assert await stores.state.do_claim_refresh("zalo", LEASE) is None  # still held
    assert await stores.state.do_claim_refresh("telegram", LEASE) is None  # nothing stored


async def test_an_expired_lease_can_be_claimed_again(stores: Stores) -> None:
    await stores.state.do_seed_credentials("zalo", ACCESS, REFRESH)
    assert await stores.state.do_claim_refresh("zalo", timedelta(seconds=-1)) is not None
    assert await stores.state.do_claim_refresh("zalo", timedelta(milliseconds=200)) is not None
    assert await stores.state.do_claim_refresh("zalo", LEASE) is None
    await asyncio.sleep(0.3)
    assert await stores.state.do_claim_refresh("zalo", LEASE) is not None


async def test_saving_the_refreshed_pair_ends_the_lease(stores: Stores) -> None:
    await stores.state.do_seed_credentials("zalo", ACCESS, REFRESH)
    assert await stores.state.do_claim_refresh("zalo", LEASE) is not None
    expiry = utcnow() + timedelta(seconds=90000)
    await stores.state.do_save_refreshed("zalo", "zalo-access-2", "zalo-refresh-2", expiry)
    stored = await stores.state.get_credentials("zalo")
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == ("zalo-access-2", "zalo-refresh-2")
    assert stored.expires_at is not None
    assert abs(stored.expires_at - expiry) < timedelta(seconds=1)
    rows = await raw_rows(stores, "SELECT lease_until, refreshed_at FROM channel_credentials")
    assert rows[0][0] is None and rows[0][1] is not None
    assert "zalo-access-2" not in repr(await raw_rows(stores, "SELECT * FROM channel_credentials"))
    claimed = await stores.state.do_claim_refresh("zalo", LEASE)  # free again at once
    assert claimed is not None and claimed.refresh_token == "zalo-refresh-2"
    await stores.state.do_release_refresh("zalo")
    assert await stores.state.do_claim_refresh("zalo", LEASE) is not None


# -- alerts ----------------------------------------------------------------------------------


async def test_an_alert_stays_one_until_resolved(stores: Stores) -> None:
    state = stores.state
    await state.do_raise_alert("token_refresh_failed", "zalo", "first failure")
    await state.do_raise_alert("token_refresh_failed", "zalo", "second failure")
    alerts = await state.get_alerts()
    assert [(a["kind"], a["channel"], a["detail"], a["resolved_at"]) for a in alerts] == [
        ("token_refresh_failed", "zalo", "second failure", None)
    ]
    await state.do_resolve_alerts("token_refresh_failed", "zalo")
    [resolved] = await state.get_alerts()
    assert resolved["resolved_at"] is not None and resolved["id"] == alerts[0]["id"]
    await state.do_raise_alert("token_refresh_failed", "zalo", "third failure")
    newest, older = await state.get_alerts()
    assert newest["detail"] == "third failure" and newest["resolved_at"] is None
    assert older["id"] == resolved["id"] and older["resolved_at"] is not None


async def test_alerts_are_kept_apart_by_kind_and_channel(stores: Stores) -> None:
    state = stores.state
    await state.do_raise_alert("token_refresh_failed", "zalo", "a")
    await state.do_raise_alert("token_refresh_failed", None, "b")
    await state.do_raise_alert("token_refresh_failed", None, "c")  # no channel: still one
    await state.do_raise_alert("webhook_failed", "zalo", "d")
    alerts = await state.get_alerts()
    assert sorted((a["kind"], a["channel"] or "", a["detail"]) for a in alerts) == [
        ("token_refresh_failed", "", "c"),
        ("token_refresh_failed", "zalo", "a"),
        ("webhook_failed", "zalo", "d"),
    ]
    await state.do_resolve_alerts("token_refresh_failed", "zalo")
    still_open = {
        (a["kind"], a["channel"]) for a in await state.get_alerts() if not a["resolved_at"]
    }
    assert still_open == {("token_refresh_failed", None), ("webhook_failed", "zalo")}


async def test_the_alert_detail_is_cut_to_300_characters(stores: Stores) -> None:
    await stores.state.do_raise_alert("token_refresh_failed", "zalo", "é" * 500)
    assert (await stores.state.get_alerts())[0]["detail"] == "é" * 300
    await stores.state.do_raise_alert("token_refresh_failed", "zalo", "x" * 301)
    assert (await stores.state.get_alerts())[0]["detail"] == "x" * 300


# -- failed deliveries -----------------------------------------------------------------------


async def queue_replies(store: Store, channel: str, sender: str, count: int) -> list[int]:
    stored = await store.do_store_inbound(
        InboundMessage(channel=channel, sender_id=sender, text="xin chào")
    )
    assert stored is not None
    turn = await store.get_turn_input(stored.message_id)
    replies = [Reply(f"trả lời {i}") for i in range(count)]
    recorded = await store.do_record_turn(turn, TurnOutcome(replies, {}, "greet"))
    return [reply.outbox_id for reply in recorded]


async def test_failed_deliveries_are_counted_per_channel_and_reason(stores: Stores) -> None:
    store = stores.store
    assert await stores.state.get_failed_deliveries() == []
    zalo = await queue_replies(store, "zalo", "z-1", 5)
    telegram = await queue_replies(store, "telegram", "t-1", 2)
    for outbox_id in zalo[:2]:
        await store.do_mark_failed(outbox_id, "zalo answered 403")
    await store.do_mark_failed(zalo[2], "zalo answered 400")
    await store.do_mark_retry(zalo[3], "zalo answered 503", utcnow())  # still trying
    await store.do_mark_sent(zalo[4])
    await store.do_mark_failed(telegram[0], "zalo answered 403")  # same text, other channel
    summary = await stores.state.get_failed_deliveries()
    assert [row["channel"] for row in summary] == ["telegram", "zalo", "zalo"]
    assert sorted((r["channel"], r["reason"], r["count"]) for r in summary) == [
        ("telegram", "zalo answered 403", 1),
        ("zalo", "zalo answered 400", 1),
        ("zalo", "zalo answered 403", 2),
    ]
    assert all(row["last_at"] for row in summary)
