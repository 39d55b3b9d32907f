"""The retention purge (bot/storage/retention.py) on both databases.

One world per test: six people whose conversations went idle 200 days ago (one of them
talked to a counsellor, left a call-back number and got a note), a person who wrote
today, one held by a counsellor and one waiting for a counsellor (both idle as long),
settled and pending delivery records, staff sessions and locks, missed messages and
audit entries of several ages. The purge deletes what is due and nothing else, leaves
the statistics of the past as they were, counts in a dry run exactly what it then
deletes, runs once a day across workers, and is there on the command line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from cryptography.fernet import Fernet
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, load_settings
from bot.domain import AuthorKind, Consent, HandoffChange, InboundMessage, Priority, Reply
from bot.errors import ConfigError
from bot.storage.cases import CaseStore
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import (
    AuditEntry,
    CaseNote,
    Contact,
    Conversation,
    ConversationEvent,
    Message,
    MissedMessage,
    OutboxItem,
    StaffSession,
    StaffUser,
    utcnow,
)
from bot.storage.repository import MissedNote, Store, TurnInput, TurnOutcome
from bot.storage.retention import (
    AUDIT_ACTION,
    KINDS,
    RetentionPurger,
    do_daily_purge,
    purge_daily,
)
from bot.storage.stats import StatsQuery, StatsStore

CHANNEL = "telegram"
SAID = "Tôi bị giữ hộ chiếu ở Hà Tĩnh"
OLD = timedelta(days=200)
OLD_PEOPLE = [f"old-{n}" for n in range(1, 7)]
HELD, WAITING, RECENT = "held-1", "waiting-1", "recent-1"


@dataclass
class World:
    url: str
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    vault: Vault
    store: Store
    cases: CaseStore
    counsellor_id: int
    contact_ids: dict[str, int]
    conversation_ids: dict[str, int]

    def purger(self, batch_size: int = 500) -> RetentionPurger:
        return RetentionPurger(self.sessions, self.vault, self.settings, batch_size=batch_size)

    async def scalar(self, query: Any) -> Any:
        async with self.sessions() as session:
            return await session.scalar(query)

    async def count(self, model: Any, *where: Any) -> int:
        return int(await self.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def table_counts(self) -> dict[str, int]:
        tables = (
            Contact,
            Conversation,
            Message,
            ConversationEvent,
            CaseNote,
            OutboxItem,
            StaffSession,
            MissedMessage,
            AuditEntry,
        )
        return {model.__tablename__: await self.count(model) for model in tables}


def settings_for(tmp_path: Path, url: str, key: str) -> Settings:
    return load_settings(
        {
            "DONGHANH_INSTANCE_DIR": str(tmp_path / "instance"),
            "DONGHANH_DATABASE_URL": url,
            "DONGHANH_ENCRYPTION_KEYS": key,
            "DONGHANH_PSEUDONYM_SECRET": "test-pseudonym-secret",
        }
    )


async def converse(
    store: Store,
    sender: str,
    *,
    handoff: HandoffChange | None = None,
    take_replies: bool = True,
) -> TurnInput:
    stored = await store.do_store_inbound(
        InboundMessage(channel=CHANNEL, sender_id=sender, text=SAID)
    )
    assert stored is not None
    turn = await store.get_turn_input(stored.message_id)
    events: list[tuple[str, dict[str, Any]]] = [
        ("user_intent", {"intent": "faq/passport", "cues": ["documents_withheld"]}),
        ("screening_result", {"level": "some_signs", "age_group": "18_plus", "sex": "female"}),
        ("province", {"unit": "Hà Tĩnh"}),
    ]
    if handoff is not None and handoff.kind == "queue":
        events.append(("handoff_requested", {"consent": "full", "priority": "normal"}))
    await store.do_record_turn(
        turn,
        TurnOutcome(
            replies=[Reply("Bạn có thể gọi 111 bất cứ lúc nào.")],
            context={"slots": {"province": "Hà Tĩnh", "said": SAID}},
            intent="faq/passport",
            events=events,
            risk_level="some_signs",
            handoff=handoff,
        ),
    )
    if take_replies:
        await store.do_take_pending_for_contact(CHANNEL, sender)
    return turn


QUEUE = HandoffChange("queue", consent=Consent.FULL, priority=Priority.NORMAL)
HANDOFFS = {
    "old-1": QUEUE,
    "old-2": HandoffChange("when", value="tối nay sau 8 giờ"),  # a call-back time, kept
    HELD: QUEUE,
    WAITING: QUEUE,
}

AGED_COLUMNS: dict[Any, tuple[str, ...]] = {
    Contact: ("created_at", "last_seen_at"),
    Conversation: ("created_at", "updated_at", "queued_at", "accepted_at", "closed_at"),
    Message: ("created_at", "processed_at"),
    ConversationEvent: ("created_at",),
    CaseNote: ("created_at",),
    OutboxItem: ("created_at", "next_attempt_at", "sent_at"),
}


async def age(sessions: async_sessionmaker[AsyncSession], contact_id: int, by: timedelta) -> None:
    """Move everything of one contact ``by`` into the past, keeping its order."""
    conversations = select(Conversation.id).where(Conversation.contact_id == contact_id)
    messages = select(Message.id).where(Message.conversation_id.in_(conversations))
    owners = {
        Contact: Contact.id == contact_id,
        Conversation: Conversation.contact_id == contact_id,
        Message: Message.conversation_id.in_(conversations),
        ConversationEvent: ConversationEvent.conversation_id.in_(conversations),
        CaseNote: CaseNote.conversation_id.in_(conversations),
        OutboxItem: OutboxItem.message_id.in_(messages),
    }
    async with sessions() as session:
        for model, columns in AGED_COLUMNS.items():
            for row in (await session.scalars(select(model).where(owners[model]))).all():
                for column in columns:
                    value = getattr(row, column)
                    if value is not None:
                        setattr(row, column, value - by)
        await session.commit()


async def build_world(url: str, tmp_path: Path) -> tuple[World, Any]:
    key = Fernet.generate_key().decode()
    engine = create_engine(url)
    sessions = session_factory(engine)
    vault = Vault([key])
    store = Store(sessions, vault, "test-pseudonym-secret")
    cases = CaseStore(sessions, vault)
    counsellor_id = await store.do_create_staff_user("tuvan", "not-a-hash", "counsellor")
    contact_ids: dict[str, int] = {}
    conversation_ids: dict[str, int] = {}
    for sender in [*OLD_PEOPLE, HELD, WAITING, RECENT]:
        handoff = HANDOFFS.get(sender)
        turn = await converse(store, sender, handoff=handoff)
        contact_ids[sender] = turn.contact_id
        conversation_ids[sender] = turn.conversation_id
    for sender in ("old-1", HELD):
        case = await cases.get_case(conversation_ids[sender])
        assert case is not None
        assert await cases.do_accept(case, counsellor_id, Reply("Chào bạn, mình là tư vấn viên."))
        await cases.do_add_note(conversation_ids[sender], counsellor_id, "Chị ấy cần về quê")
        await cases.do_send(
            case,
            Reply("Mình sẽ gọi lại."),
            author=AuthorKind.COUNSELLOR,
            staff_id=counsellor_id,
            callback_phone_enc=vault.encrypt("0912345678"),
        )
        await store.do_take_pending_for_contact(CHANNEL, sender)
    closing = await cases.get_case(conversation_ids["old-1"])
    assert closing is not None and await cases.do_close(closing, "resolved", None)
    for sender in [*OLD_PEOPLE, HELD, WAITING]:
        await age(sessions, contact_ids[sender], OLD)
    world = World(
        url,
        settings_for(tmp_path, url, key),
        sessions,
        vault,
        store,
        cases,
        counsellor_id,
        contact_ids,
        conversation_ids,
    )
    await add_side_rows(world)
    return world, engine


async def add_side_rows(world: World) -> None:
    """Delivery records, sessions, locks, missed messages and audit entries of several
    ages, all belonging to the recent person or to staff."""
    now = utcnow()
    recent = await converse(world.store, RECENT, take_replies=False)  # a pending reply
    settled = await world.scalar(
        select(func.min(OutboxItem.id)).where(OutboxItem.contact_id == recent.contact_id)
    )
    locked_out = await world.store.do_create_staff_user("khoa", "not-a-hash", "editor")
    still_locked = await world.store.do_create_staff_user("khoa2", "not-a-hash", "editor")
    async with world.sessions() as session:
        for item in (await session.scalars(select(OutboxItem))).all():
            if item.contact_id == recent.contact_id:
                item.created_at = now - timedelta(days=40)  # older than the 30 days kept
        session.add_all(
            [
                StaffSession(
                    token_hash="a" * 64,
                    staff_id=world.counsellor_id,
                    expires_at=now - timedelta(hours=1),
                ),
                StaffSession(
                    token_hash="b" * 64,
                    staff_id=world.counsellor_id,
                    expires_at=now + timedelta(hours=1),
                ),
                AuditEntry(action="conversation_read", at=now - timedelta(days=800)),
                AuditEntry(action="conversation_read", at=now - timedelta(days=10)),
            ]
        )
        for staff_id, until in ((locked_out, -1), (still_locked, 9)):
            user = await session.get(StaffUser, staff_id)
            assert user is not None
            user.locked_until = now + timedelta(minutes=until)
        await session.commit()
    assert settled is not None
    await world.store.do_mark_sent(settled)  # settled: sent; the newer one stays pending
    for _ in range(2):
        await world.store.do_add_missed(recent, MissedNote("fallback", "giữ [số]", None, 0.1))
    async with world.sessions() as session:
        oldest = await session.scalar(select(func.min(MissedMessage.id)))
        missed = await session.get(MissedMessage, oldest)
        assert missed is not None
        missed.created_at = now - timedelta(days=100)  # older than the 90 days kept
        await session.commit()


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    built, engine = await build_world(database_url, tmp_path)
    yield built
    await engine.dispose()


def stats_query() -> StatsQuery:
    today = utcnow().date()
    return StatsQuery(today - timedelta(days=210), today)


async def report_of(world: World) -> dict[str, Any]:
    stats = StatsStore(world.sessions, units=("Hà Tĩnh", "Nghệ An"))
    return await stats.get_report(stats_query())


# -- what goes and what stays ------------------------------------------------------------------


async def test_idle_conversations_lose_their_content_live_ones_and_the_statistics_stay(
    world: World,
) -> None:
    tables = await world.table_counts()
    statistics = await report_of(world)
    assert statistics["tables"]["channels"]["total"]["values"]["people"] == 9
    preview = await world.purger().count_purgeable()
    assert preview.dry_run and await world.table_counts() == tables  # a dry run: nothing

    report = await world.purger(batch_size=4).do_purge()  # small batches: many rounds

    assert report.failed == [] and report.counts == preview.counts
    assert report.counts["messages"] == 6 * 2 + 2  # each: said, answered; old-1: accepted
    assert report.counts["case_notes"] == 1
    assert report.counts["conversations"] == 6
    assert report.counts["contacts"] == 6
    await assert_idle_ones_emptied(world)
    await assert_live_ones_kept(world)
    assert await report_of(world) == statistics
    again = await world.purger().do_purge()
    assert again.counts == dict.fromkeys(KINDS, 0)
    assert await world.count(AuditEntry, AuditEntry.action == AUDIT_ACTION) == 1
    async with world.sessions() as session:  # deleting a message looks up the replies to
        connection = await session.connection()  # it: indexed, or each batch scans the table
        indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("messages"))
    assert ["reply_to_id"] in [index["column_names"] for index in indexes]


async def assert_idle_ones_emptied(world: World) -> None:
    old_conversations = [world.conversation_ids[p] for p in OLD_PEOPLE]
    assert await world.count(Message, Message.conversation_id.in_(old_conversations)) == 0
    assert await world.count(CaseNote, CaseNote.conversation_id.in_(old_conversations)) == 0
    events = ConversationEvent.conversation_id.in_(old_conversations)
    assert await world.count(ConversationEvent, events) == 6 * 3 + 3  # all stay
    async with world.sessions() as session:
        for sender in OLD_PEOPLE:
            conversation = await session.get(Conversation, world.conversation_ids[sender])
            assert conversation is not None  # the row stays for the statistics
            assert conversation.context_enc is None and conversation.risk_level is None
            assert conversation.callback_when_enc is None
            assert conversation.updated_at < utcnow() - OLD + timedelta(hours=1)  # untouched
            contact = await session.get(Contact, world.contact_ids[sender])
            assert contact is not None and contact.channel == CHANNEL
            assert contact.platform_user_id_enc == ""
            assert contact.pseudonym == f"retired-{contact.id}"


async def assert_live_ones_kept(world: World) -> None:
    for sender in (RECENT, HELD, WAITING):
        conversation_id = world.conversation_ids[sender]
        assert await world.count(Message, Message.conversation_id == conversation_id) >= 2
        case = await world.cases.get_case(conversation_id)
        assert case is not None and case.slots == {"province": "Hà Tĩnh", "said": SAID}
        async with world.sessions() as session:
            contact = await session.get(Contact, world.contact_ids[sender])
            assert contact is not None
            assert world.vault.decrypt(contact.platform_user_id_enc) == sender
    held = await world.cases.get_case(world.conversation_ids[HELD])
    assert held is not None and held.callback_phone == "0912345678"
    notes = await world.cases.get_notes(world.conversation_ids[HELD])
    assert [n.text for n in notes] == ["Chị ấy cần về quê"]


async def test_other_records_go_by_their_own_age_and_a_returning_person_is_new(
    world: World,
) -> None:
    report = await world.purger().do_purge()
    # every reply delivered to the aged people (8 + 3 + 1), and the recent person's of
    # 40 days ago; the records of messages that stay go too, the messages do not
    assert report.counts["outbox"] == 13
    assert await world.count(OutboxItem, OutboxItem.status == "pending") == 1  # kept
    assert report.counts["staff_sessions"] == 1
    assert await world.scalar(select(StaffSession.token_hash)) == "b" * 64
    assert report.counts["login_locks"] == 1
    assert await world.count(StaffUser, StaffUser.locked_until.is_not(None)) == 1
    assert report.counts["missed_messages"] == 1
    assert await world.count(MissedMessage) == 1
    assert report.counts["audit_log"] == 1
    async with world.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        assert actions == ["conversation_read", AUDIT_ACTION]
        recorded = await session.scalar(
            select(AuditEntry.detail).where(AuditEntry.action == AUDIT_ACTION)
        )
        assert recorded == {"counts": {k: v for k, v in report.counts.items() if v}, "failed": []}
        with pytest.raises(DBAPIError, match="append-only"):  # the triggers are back
            await session.execute(text("DELETE FROM audit_log"))

    # a person who comes back after a purge is someone new, and can be answered
    turn = await converse(world.store, "old-2", take_replies=False)
    assert turn.contact_id != world.contact_ids["old-2"] and turn.context == {}
    [delivery] = await world.store.do_take_pending_for_contact(CHANNEL, "old-2")
    assert delivery.recipient_id == "old-2"


# -- once a day across workers -----------------------------------------------------------------


async def test_one_worker_purges_a_day_and_the_daily_task_survives_failures(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runs = await asyncio.gather(
        do_daily_purge(world.sessions, world.vault, world.settings),
        do_daily_purge(world.sessions, world.vault, world.settings),
    )
    done = [run for run in runs if run is not None]
    assert len(done) == 1 and done[0].counts["messages"] == 14
    assert await do_daily_purge(world.sessions, world.vault, world.settings) is None
    assert await world.count(AuditEntry, AuditEntry.action == AUDIT_ACTION) == 1

    async with world.sessions() as session:  # a day later
        await session.execute(text("UPDATE channel_credentials SET lease_until = NULL"))
        await session.commit()
    returning = await converse(world.store, "old-3")  # a new person, gone quiet again
    await age(world.sessions, returning.contact_id, OLD)
    waits: list[float] = []

    def delays() -> float:
        waits.append(0.01)
        return 0.01

    async def purges() -> int:
        return await world.count(AuditEntry, AuditEntry.action == AUDIT_ACTION)

    task = asyncio.create_task(
        purge_daily(world.sessions, world.vault, world.settings, delays=delays)
    )
    try:
        await poll(purges, 2)
    finally:
        task.cancel()
    assert await world.count(Message) == 4 + 4 + 2  # recent, held, waiting: unchanged
    gone = Message.conversation_id == returning.conversation_id
    assert await world.count(Message, gone) == 0

    async def rounds() -> int:
        return len(waits)

    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'not-migrated.sqlite3'}")
    waits.clear()
    caplog.set_level(logging.WARNING, logger="donghanh.retention")
    failing = asyncio.create_task(
        purge_daily(session_factory(broken), world.vault, world.settings, delays=delays)
    )
    try:
        await poll(rounds, 3)
        assert not failing.done()  # three rounds, each failed, and the loop goes on
    finally:
        failing.cancel()
        await broken.dispose()
    failures = [r for r in caplog.records if getattr(r, "event", "") == "retention_failed"]
    assert failures and all(getattr(r, "error_type", "") for r in failures)
    assert SAID not in caplog.text


async def poll(read: Callable[[], Awaitable[int]], at_least: int) -> None:
    """Wait until ``read`` gives ``at_least`` (20 s at most)."""
    for _ in range(400):
        if await read() >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still below {at_least} after 20 s")


# -- the command line ----------------------------------------------------------------------------


async def test_donghanh_purge_and_its_dry_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = await world.table_counts()
    code, out, err = await asyncio.to_thread(
        run_cli, ["purge", "--dry-run"], world.settings, monkeypatch
    )
    assert code == 0, err
    assert "Chạy thử, chưa xoá gì" in out and "  Tin nhắn: 14" in out
    assert "180 ngày" in out and "730 ngày" in out
    assert await world.table_counts() == tables
    code, out, err = await asyncio.to_thread(run_cli, ["purge"], world.settings, monkeypatch)
    assert code == 0, err
    assert "Đã xoá:" in out and "  Tin nhắn: 14" in out
    assert "Người dùng được gỡ liên kết (xoá mã định danh nền tảng): 6" in out
    assert await world.count(Message) == tables["messages"] - 14
    assert SAID not in out + err


def test_the_retention_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DONGHANH_INSTANCE_DIR": str(tmp_path),
            "DONGHANH_RETENTION_DAYS": "90",
            "DONGHANH_OUTBOX_RETENTION_DAYS": "7",
            "DONGHANH_AUDIT_RETENTION_DAYS": "3650",
        }
    )
    assert (settings.retention_days, settings.outbox_retention_days) == (90, 7)
    assert settings.audit_retention_days == 3650
    defaults = load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path)})
    assert (defaults.retention_days, defaults.audit_retention_days) == (180, 730)
    with pytest.raises(ConfigError, match="DONGHANH_RETENTION_DAYS"):
        load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path), "DONGHANH_RETENTION_DAYS": "0"})
