"""The counsellor console's repository (``CaseStore``) on a migrated database (SQLite, and
PostgreSQL when configured): races on accept, what close deletes, encrypted notes, the
usual wait, who counts as available, the queue's order and the canned replies' seed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import (
    Consent,
    ConversationState,
    HandoffChange,
    InboundMessage,
    Priority,
    Reply,
)
from bot.storage.cases import Case, CaseStore
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Contact, Conversation, StaffUser, utcnow
from bot.storage.repository import Store, TurnOutcome

GREETING = Reply("Một tư vấn viên đã nhận cuộc trò chuyện.")
GOODBYE = Reply("Tư vấn viên đã kết thúc cuộc trò chuyện.")


@dataclass
class Db:
    store: Store
    cases: CaseStore

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.cases.sessions() as session:
            return [tuple(row) for row in await session.execute(text(sql), params)]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    engine = create_engine(database_url)
    vault = Vault([Fernet.generate_key().decode()])
    yield Db(
        Store(session_factory(engine), vault, "secret"), CaseStore(session_factory(engine), vault)
    )
    await engine.dispose()


async def turn(db: Db, sender: str, words: str, change: HandoffChange | None) -> int:
    """One recorded turn of ``sender`` that makes ``change``; its conversation's id."""
    stored = await db.store.do_store_inbound(
        InboundMessage(channel="telegram", sender_id=sender, text=words)
    )
    assert stored is not None
    taken = await db.store.get_turn_input(stored.message_id)
    await db.store.do_record_turn(
        taken, TurnOutcome([], {"slots": {}}, "handoff_consent", handoff=change)
    )
    return stored.conversation_id


async def queued(db: Db, sender: str = "user-1", priority: Priority = Priority.NORMAL) -> Case:
    change = HandoffChange("queue", consent=Consent.FULL, priority=priority)
    case = await db.cases.get_case(await turn(db, sender, "đồng ý", change))
    assert case is not None and case.state is ConversationState.WAITING
    return case


async def staff(db: Db, username: str, role: str = "counsellor") -> int:
    return await db.store.do_create_staff_user(username, "not-a-real-hash", role)


async def set_staff(db: Db, staff_id: int, **values: Any) -> None:
    async with db.cases.sessions() as session:
        await session.execute(update(StaffUser).where(StaffUser.id == staff_id).values(**values))
        await session.commit()


async def add_conversation(
    db: Db,
    name: str,
    *,
    state: ConversationState = ConversationState.CLOSED,
    priority: Priority | None = None,
    queued_at: datetime | None = None,
    accepted_at: datetime | None = None,
) -> int:
    async with db.cases.sessions() as session:
        contact = Contact(pseudonym=f"p-{name}", channel="telegram", platform_user_id_enc="x")
        session.add(contact)
        await session.flush()
        conversation = Conversation(
            contact_id=contact.id,
            state=state.value,
            priority=priority.value if priority else None,
            queued_at=queued_at,
            accepted_at=accepted_at,
        )
        session.add(conversation)
        await session.commit()
        return conversation.id


async def past_wait(db: Db, name: str, waited: timedelta, *, accepted_ago: timedelta) -> None:
    accepted = utcnow() - accepted_ago
    await add_conversation(db, name, queued_at=accepted - waited, accepted_at=accepted)


# -- accept, close --------------------------------------------------------------------------


async def test_two_counsellors_accepting_at_once_one_wins(db: Db) -> None:
    case = await queued(db)
    lan, mai = await staff(db, "lan"), await staff(db, "mai")
    results = await asyncio.gather(
        db.cases.do_accept(case, lan, GREETING), db.cases.do_accept(case, mai, GREETING)
    )
    assert sorted(results) == [False, True]
    winner = lan if results[0] else mai
    held = await db.cases.get_case(case.id)
    assert held is not None
    assert held.state is ConversationState.COUNSELLOR
    assert held.assigned_staff_id == winner and held.accepted_at is not None
    greetings = [m for m in await db.cases.get_messages(case.id) if m.text == GREETING.text]
    assert len(greetings) == 1
    assert await db.rows(
        "SELECT count(*) FROM conversation_events WHERE conversation_id = :id "
        "AND type = 'handoff_accepted'",
        id=case.id,
    ) == [(1,)]
    assert await db.rows("SELECT count(*) FROM outbox") == [(1,)]
    assert not await db.cases.do_accept(held, lan, GREETING)  # no longer waiting


async def test_a_withdrawn_request_cannot_be_accepted(db: Db) -> None:
    case = await queued(db)
    await turn(db, "user-1", "hủy", HandoffChange("cancel"))
    assert not await db.cases.do_accept(case, await staff(db, "lan"), GREETING)
    assert await db.rows("SELECT count(*) FROM outbox") == [(0,)]


async def test_close_deletes_the_call_back_details(db: Db) -> None:
    case = await queued(db)
    await turn(db, "user-1", "[số]", HandoffChange("phone", value="0912345678"))
    await turn(db, "user-1", "[lúc]", HandoffChange("when", value="tối nay sau 8 giờ"))
    (columns,) = await db.rows(
        "SELECT callback_phone_enc, callback_when_enc FROM conversations WHERE id = :id",
        id=case.id,
    )
    assert all(columns) and "0912345678" not in repr(columns) and "tối nay" not in repr(columns)
    waiting = await db.cases.get_case(case.id)
    assert waiting is not None
    assert (waiting.callback_phone, waiting.callback_when) == ("0912345678", "tối nay sau 8 giờ")

    assert await db.cases.do_accept(waiting, await staff(db, "lan"), GREETING)
    assert await db.cases.do_close(waiting, "resolved", GOODBYE)
    assert await db.rows(
        "SELECT state, outcome, callback_phone_enc, callback_when_enc FROM conversations "
        "WHERE id = :id",
        id=case.id,
    ) == [("closed", "resolved", None, None)]
    closed = await db.cases.get_case(case.id)
    assert closed is not None and closed.closed_at is not None
    assert (closed.callback_phone, closed.callback_when) == (None, None)
    assert [m.text for m in await db.cases.get_messages(case.id)][-1] == GOODBYE.text
    assert not await db.cases.do_close(closed, "resolved", GOODBYE)  # only once


async def test_a_waiting_request_can_be_closed_without_a_goodbye(db: Db) -> None:
    case = await queued(db)
    assert await db.cases.do_close(case, "no_reply", None)
    assert await db.rows("SELECT count(*) FROM outbox") == [(0,)]
    assert await db.rows(
        "SELECT type FROM conversation_events WHERE conversation_id = :id "
        "AND type LIKE 'handoff_c%'",
        id=case.id,
    ) == [("handoff_closed",)]


# -- notes ----------------------------------------------------------------------------------


async def test_notes_are_encrypted_in_the_raw_table(db: Db) -> None:
    case = await queued(db)
    lan = await staff(db, "lan")
    note = await db.cases.do_add_note(case.id, lan, "Chị Lan, 0912345678, ở Nghệ An")
    assert note.author == "lan" and note.text == "Chị Lan, 0912345678, ở Nghệ An"
    stored = await db.rows("SELECT text_enc FROM case_notes")
    assert len(stored) == 1
    for secret in ("Lan", "0912345678", "Nghệ An"):
        assert secret not in repr(stored)
    notes = await db.cases.get_notes(case.id)
    assert [(n.author, n.text) for n in notes] == [("lan", "Chị Lan, 0912345678, ở Nghệ An")]
    assert await db.cases.get_notes(case.id + 1) == []


# -- the usual wait --------------------------------------------------------------------------


async def test_the_usual_wait_needs_three_recent_accepted_requests(db: Db) -> None:
    cases = db.cases
    assert await cases.get_typical_wait_minutes() is None
    await past_wait(db, "a", timedelta(minutes=11), accepted_ago=timedelta(hours=1))
    await past_wait(db, "b", timedelta(minutes=30), accepted_ago=timedelta(days=6))
    assert await cases.get_typical_wait_minutes() is None
    # neither an old one nor one still waiting counts
    await past_wait(db, "old", timedelta(minutes=1), accepted_ago=timedelta(days=8))
    await add_conversation(
        db,
        "waiting",
        state=ConversationState.WAITING,
        priority=Priority.NORMAL,
        queued_at=utcnow() - timedelta(hours=5),
    )
    assert await cases.get_typical_wait_minutes() is None
    await past_wait(db, "c", timedelta(minutes=2), accepted_ago=timedelta(minutes=5))
    assert await cases.get_typical_wait_minutes() == 15  # the median, 11, rounded up


@pytest.mark.parametrize(
    ("waits", "minutes"),
    [
        ([10, 10, 10], 10),  # a multiple of 5 stays
        ([10, 10.05, 40], 15),
        ([0.2, 1, 3], 5),  # never less than 5
        ([4, 5, 6], 5),
        ([20, 21, 40, 41], 35),  # median 30.5
        ([59, 61, 62], 65),
    ],
)
async def test_the_usual_wait_is_the_median_rounded_up_to_5_minutes(
    db: Db, waits: list[float], minutes: int
) -> None:
    for i, wait in enumerate(waits):
        await past_wait(db, str(i), timedelta(minutes=wait), accepted_ago=timedelta(minutes=i))
    assert await db.cases.get_typical_wait_minutes() == minutes


# -- availability ---------------------------------------------------------------------------


async def test_who_counts_as_available(db: Db) -> None:
    cases = db.cases
    now = utcnow()
    said_so = await staff(db, "said_so")
    await cases.do_set_available(said_so, True)
    console_open = await staff(db, "console_open")
    await cases.do_touch_console(console_open)
    console_recent = await staff(db, "console_recent")
    await set_staff(db, console_recent, console_seen_at=now - timedelta(seconds=50))
    console_stale = await staff(db, "console_stale")
    await set_staff(db, console_stale, console_seen_at=now - timedelta(seconds=61))
    supervisor = await staff(db, "supervisor", "supervisor")
    await cases.do_set_available(supervisor, True)
    off = await staff(db, "off")
    inactive = await staff(db, "inactive")
    await set_staff(db, inactive, active=False, available=True, console_seen_at=now)
    admin = await staff(db, "admin", "admin")
    await cases.do_set_available(admin, True)
    await cases.do_touch_console(admin)
    editor = await staff(db, "editor", "editor")
    await set_staff(db, editor, available=True, console_seen_at=now)

    counted = {said_so, console_open, console_recent, supervisor}
    assert await cases.count_available_counsellors() == len(counted)
    for staff_id in (said_so, console_open, console_recent, console_stale, supervisor, off):
        (one,) = await cases.get_staff_status(staff_id)
        assert one.available is (staff_id in counted), one.username
    for staff_id in (admin, editor):  # their own roles never count
        (one,) = await cases.get_staff_status(staff_id)
        assert not one.available, one.username
    assert await cases.get_staff_status(inactive) == []
    status = {s.username: s.available for s in await cases.get_staff_status()}
    assert status == {
        "console_open": True,
        "console_recent": True,
        "console_stale": False,
        "off": False,
        "said_so": True,
        "supervisor": True,
    }

    await cases.do_leave_console(console_open)
    await cases.do_set_available(said_so, False)
    assert await cases.count_available_counsellors() == 2


# -- the queue --------------------------------------------------------------------------------


async def test_the_queue_is_danger_then_many_signs_then_the_rest_oldest_first(db: Db) -> None:
    now = utcnow()
    waiting = ConversationState.WAITING

    async def add(name: str, priority: Priority | None, minutes_ago: int, **kw: Any) -> int:
        kw.setdefault("state", waiting)
        queued_at = now - timedelta(minutes=minutes_ago)
        return await add_conversation(db, name, priority=priority, queued_at=queued_at, **kw)

    normal_new = await add("normal_new", Priority.NORMAL, 1)
    danger_new = await add("danger_new", Priority.DANGER, 2)
    normal_old = await add("normal_old", Priority.NORMAL, 30)
    many_new = await add("many_new", Priority.MANY_SIGNS, 3)
    held = await add("held", Priority.DANGER, 60, state=ConversationState.COUNSELLOR)
    danger_old = await add("danger_old", Priority.DANGER, 20)
    many_old = await add("many_old", Priority.MANY_SIGNS, 25)
    await add("closed", Priority.DANGER, 90, state=ConversationState.CLOSED)
    await add("bot", None, 90, state=ConversationState.BOT)

    assert [c.id for c in await db.cases.get_queue()] == [
        danger_old,
        danger_new,
        many_old,
        many_new,
        normal_old,
        normal_new,
        held,
    ]


async def test_waiting_updates_are_due_after_the_wait_and_only_while_waiting(db: Db) -> None:
    case = await queued(db)
    assert await db.cases.get_due_waiting_updates(timedelta(minutes=10), 2) == []
    async with db.cases.sessions() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == case.id)
            .values(queued_at=utcnow() - timedelta(minutes=11))
        )
        await session.commit()
    assert [c.id for c in await db.cases.get_due_waiting_updates(timedelta(minutes=10), 2)] == [
        case.id
    ]
    assert await db.cases.do_send_waiting_update(case, Reply("Bạn vẫn đang trong hàng chờ."))
    # the last word from us is now: not due again until another 10 minutes pass
    assert await db.cases.get_due_waiting_updates(timedelta(minutes=10), 2) == []
    assert await db.cases.do_close(case, "no_reply", None)
    assert not await db.cases.do_send_waiting_update(case, Reply("Bạn vẫn đang trong hàng chờ."))
    assert await db.rows("SELECT count(*) FROM outbox") == [(1,)]


# -- canned replies ---------------------------------------------------------------------------


async def test_canned_replies_are_seeded_only_once(db: Db) -> None:
    first = [("Chào", "Chào bạn, mình là tư vấn viên."), ("111", "Bạn gọi 111 nhé.")]
    assert await db.cases.do_seed_canned_replies(first) == 2
    assert await db.cases.do_seed_canned_replies([("Khác", "Khác.")]) == 0
    assert await db.cases.do_seed_canned_replies(first) == 0
    assert [(t, x) for _, t, x in await db.cases.get_canned_replies()] == first


async def test_workers_seeding_at_once_load_the_canned_replies_once(database_url: str) -> None:
    contenders = 3
    barrier = asyncio.Barrier(contenders)

    class ReadsMeet(AsyncSession):
        """Each worker reads before any of them writes (as workers started together
        can); a seed that takes a lock first is not held up for more than a second."""

        async def scalar(self, *args: Any, **kwargs: Any) -> Any:
            found = await super().scalar(*args, **kwargs)
            with contextlib.suppress(TimeoutError, asyncio.BrokenBarrierError):
                async with asyncio.timeout(1):
                    await barrier.wait()
            return found

    engine = create_engine(database_url)
    try:
        vault = Vault([Fernet.generate_key().decode()])
        sessions = async_sessionmaker(engine, class_=ReadsMeet, expire_on_commit=False)
        workers = [CaseStore(sessions, vault) for _ in range(contenders)]  # type: ignore[arg-type]
        first = [("Chào", "Chào bạn, mình là tư vấn viên."), ("111", "Bạn gọi 111 nhé.")]
        loaded = await asyncio.gather(
            *(w.do_seed_canned_replies(first) for w in workers), return_exceptions=True
        )
        assert sorted(loaded) == [0, 0, 2]  # type: ignore[type-var]
        reader = CaseStore(session_factory(engine), vault)
        assert [(t, x) for _, t, x in await reader.get_canned_replies()] == first
    finally:
        await engine.dispose()
