"""The repository on a migrated database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.domain import Button, InboundMessage, Reply
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.migrate import SCHEMA_HEAD, current_revision, head_revision
from bot.storage.repository import Store, TurnOutcome


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    yield Store(session_factory(engine), Vault([Fernet.generate_key().decode()]), "secret")
    await engine.dispose()


def inbound(text: str, sender: str = "user-1", message_id: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel="telegram", sender_id=sender, text=text, platform_message_id=message_id
    )


async def raw_rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    async with store.sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql))]


async def test_migrations_reach_head(store: Store, database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def test_the_schema_head_the_server_checks_is_alembics_head() -> None:
    assert head_revision() == SCHEMA_HEAD


async def test_a_database_alembic_never_touched_has_no_revision(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        assert await current_revision(engine) is None
    finally:
        await engine.dispose()


async def test_text_and_platform_id_are_encrypted_in_the_raw_tables(store: Store) -> None:
    await store.do_store_inbound(inbound("Tôi là Lan, số 0912345678", sender="tg-998877"))
    messages = await raw_rows(store, "SELECT text_enc FROM messages")
    contacts = await raw_rows(store, "SELECT pseudonym, platform_user_id_enc FROM contacts")
    dump = repr(messages) + repr(contacts)
    for secret in ("Lan", "0912345678", "tg-998877"):
        assert secret not in dump
    assert contacts[0][0] == store.pseudonym_for("telegram", "tg-998877")


async def test_redelivery_with_the_same_platform_id_is_stored_once(store: Store) -> None:
    first = await store.do_store_inbound(inbound("xin chào", message_id="m-1"))
    second = await store.do_store_inbound(inbound("xin chào", message_id="m-1"))
    assert first is not None and second is None
    assert await raw_rows(store, "SELECT count(*) FROM messages") == [(1,)]


async def test_concurrent_redeliveries_store_one_message(store: Store) -> None:
    results = await asyncio.gather(
        *(store.do_store_inbound(inbound("alo", message_id="same")) for _ in range(8))
    )
    assert sum(r is not None for r in results) == 1
    assert await raw_rows(store, "SELECT count(*) FROM messages") == [(1,)]


async def test_the_same_id_on_another_channel_is_a_different_message(store: Store) -> None:
    await store.do_store_inbound(inbound("a", message_id="m-1"))
    other = InboundMessage(channel="zalo", sender_id="user-1", text="a", platform_message_id="m-1")
    assert await store.do_store_inbound(other) is not None


async def test_recording_a_turn_marks_it_processed_and_queues_replies_once(store: Store) -> None:
    stored = await store.do_store_inbound(inbound("xin chào"))
    assert stored is not None
    assert [m for m, _ in await store.get_unprocessed_inbound()] == [stored.message_id]
    turn = await store.get_turn_input(stored.message_id)
    assert turn.text == "xin chào" and not turn.already_processed
    outcome = TurnOutcome(
        replies=[Reply("Chào bạn", (Button("Gặp tư vấn viên", "/request_counsellor"),))],
        context={"slots": {"fallback_count": 0}},
        intent="greet",
        events=[("user_intent", {"intent": "greet"})],
    )
    assert len(await store.do_record_turn(turn, outcome)) == 1
    assert await store.do_record_turn(turn, outcome) is None  # a second worker's is refused
    assert await store.get_unprocessed_inbound() == []
    assert (await store.get_turn_input(stored.message_id)).already_processed
    deliveries = await store.do_take_pending_for_contact("telegram", "user-1")
    assert [d.reply for d in deliveries] == list(outcome.replies)
    assert deliveries[0].recipient_id == "user-1"
    assert await store.do_take_pending_for_contact("telegram", "user-1") == []
    next_turn = await store.get_turn_input(
        (await store.do_store_inbound(inbound("nữa"))).message_id  # type: ignore[union-attr]
    )
    assert next_turn.context == {"slots": {"fallback_count": 0}}


async def test_claims_never_hand_one_reply_to_two_senders(store: Store) -> None:
    stored = await store.do_store_inbound(inbound("alo"))
    assert stored is not None
    turn = await store.get_turn_input(stored.message_id)
    await store.do_record_turn(turn, TurnOutcome([Reply("a"), Reply("b")], {}, "greet"))
    claims = await asyncio.gather(*(store.do_claim_due_deliveries(["telegram"]) for _ in range(4)))
    claimed_ids = [d.outbox_id for batch in claims for d in batch]
    assert len(claimed_ids) == 2 and len(set(claimed_ids)) == 2


async def test_an_expired_claim_becomes_due_again(store: Store) -> None:
    stored = await store.do_store_inbound(inbound("alo"))
    assert stored is not None
    await store.do_record_turn(
        await store.get_turn_input(stored.message_id), TurnOutcome([Reply("a")], {}, None)
    )
    assert len(await store.do_claim_due_deliveries(["telegram"], lease_seconds=0)) == 1
    again = await store.do_claim_due_deliveries(["telegram"], lease_seconds=60)
    assert len(again) == 1
    assert await store.do_claim_due_deliveries(["telegram"]) == []


async def test_audit_log_is_append_only_in_the_database(store: Store) -> None:
    await store.do_append_audit("conversation_read", target_type="conversation", target_id="1")
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        async with store.sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))
    assert await raw_rows(store, "SELECT action FROM audit_log") == [("conversation_read",)]


async def test_staff_users(store: Store) -> None:
    assert await store.count_staff_users() == 0
    await store.do_create_staff_user("lan", "argon2-hash", "counsellor")
    assert await store.check_staff_user_exists("lan")
    assert not await store.check_staff_user_exists("other")
    assert await store.count_staff_users() == 1


async def test_a_reply_being_sent_is_not_also_taken_by_a_pull(store: Store) -> None:
    stored = await store.do_store_inbound(inbound("alo"))
    assert stored is not None
    turn = await store.get_turn_input(stored.message_id)
    await store.do_record_turn(turn, TurnOutcome([Reply("a")], {}, None))
    assert len(await store.do_claim_due_deliveries(["telegram"])) == 1
    assert await store.do_take_pending_for_contact("telegram", "user-1") == []


async def test_an_expired_claim_is_reclaimed_by_one_worker_only(store: Store) -> None:
    stored = await store.do_store_inbound(inbound("alo"))
    assert stored is not None
    turn = await store.get_turn_input(stored.message_id)
    await store.do_record_turn(turn, TurnOutcome([Reply("a")], {}, None))
    assert len(await store.do_claim_due_deliveries(["telegram"], lease_seconds=0)) == 1
    reclaims = await asyncio.gather(
        *(store.do_claim_due_deliveries(["telegram"]) for _ in range(4))
    )
    assert sum(len(batch) for batch in reclaims) == 1


async def test_the_models_match_the_migrations(database_url: str) -> None:
    """Alembic finds nothing to change between the migrated schema and the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.storage.models import Base

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []
