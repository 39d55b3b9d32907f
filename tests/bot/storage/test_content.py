"""ContentStore on a migrated database (SQLite, and PostgreSQL when configured; one
database per module, emptied before each test).

Versions of FAQ topics and services: one draft per topic edited in place, publishing
supersedes and keeps the version before, numbers are never reused, history is newest
first, seeding happens once, the revision counter rises with every change the bot must
follow. Missed messages: written by a turn (``Store.do_record_turn``), encrypted at
rest, listed newest first, handled once, purged by age and erased with their contact.
Training runs: one live run per data hash, progress and verdict, newest first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.domain import InboundMessage, Reply
from bot.errors import Conflict
from bot.storage.content import (
    TRAINING_STALE_AFTER,
    ContentStore,
    MissedStatus,
    VersionState,
)
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Base, MissedMessage, TrainingRun, utcnow
from bot.storage.repository import MissedNote, Store, TurnOutcome

FAQ = "faq"
SERVICE = "service"


@dataclass
class Stores:
    content: ContentStore
    turns: Store
    editor_id: int
    reviewer_id: int


async def empty_tables(engine: AsyncEngine) -> None:
    """Every row gone but the append-only audit log's (none is written here): one
    migrated database serves the module, each test starts from empty tables."""
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "audit_log":
                await connection.execute(delete(table))


@pytest.fixture
async def stores(module_database_url: str) -> AsyncIterator[Stores]:
    engine = create_engine(module_database_url)
    await empty_tables(engine)
    vault = Vault([Fernet.generate_key().decode()])
    sessions = session_factory(engine)
    store = Store(sessions, vault, "secret")
    editor = await store.do_create_staff_user("bien_tap", "hash", "editor")
    reviewer = await store.do_create_staff_user("duyet", "hash", "admin")
    yield Stores(ContentStore(sessions, vault), store, editor, reviewer)
    await engine.dispose()


def topic_data(answer: str = "Trả lời ngắn.", examples: list[str] | None = None) -> dict[str, Any]:
    return {
        "title": "Tiền đặt cọc",
        "answer": answer,
        "sources": ["Luật 69/2020/QH14, Điều 25"],
        "reviewed": "2025-01-15",
        "buttons": [],
        "examples": examples or ["đặt cọc bao nhiêu", "tiền cọc có hợp pháp", "mất cọc"],
    }


async def raw_rows(stores: Stores, sql: str) -> list[tuple[Any, ...]]:
    async with stores.content.sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql))]


# -- versions ------------------------------------------------------------------------------


async def test_a_topic_has_one_draft_edited_in_place(stores: Stores) -> None:
    content = stores.content
    first = await content.do_save_draft(FAQ, "deposit", topic_data("Bản một."), stores.editor_id)
    second = await content.do_save_draft(FAQ, "deposit", topic_data("Bản hai."), stores.editor_id)
    assert (first.number, second.number) == (1, 1)
    assert second.id == first.id and second.state == VersionState.DRAFT.value
    assert second.data["answer"] == "Bản hai." and second.edited_by == "bien_tap"
    assert second.updated_at >= first.updated_at
    assert await content.count_versions(FAQ, "deposit") == 1
    topic = await content.get_topic(FAQ, "deposit")
    assert topic is not None and topic.published is None
    assert topic.draft is not None and topic.draft.data["answer"] == "Bản hai."


async def test_publishing_supersedes_the_version_in_force_and_keeps_it(stores: Stores) -> None:
    content = stores.content
    await content.do_save_draft(FAQ, "deposit", topic_data("Một."), stores.editor_id)
    v1 = await content.do_publish_draft(FAQ, "deposit", stores.reviewer_id, None)
    assert v1.state == VersionState.PUBLISHED.value and v1.published_by == "duyet"
    assert v1.published_at is not None
    await content.do_save_draft(FAQ, "deposit", topic_data("Hai."), stores.editor_id)
    topic = await content.get_topic(FAQ, "deposit")
    assert topic is not None and topic.published is not None and topic.draft is not None
    assert (topic.published.number, topic.draft.number) == (1, 2)
    v2 = await content.do_publish_draft(FAQ, "deposit", stores.reviewer_id, None)
    assert v2.number == 2
    old = await content.get_version(FAQ, "deposit", 1)
    assert old is not None and old.state == VersionState.SUPERSEDED.value
    assert old.data["answer"] == "Một."  # kept as it was
    published = await content.get_published(FAQ)
    assert [(v.key, v.number, v.data["answer"]) for v in published] == [("deposit", 2, "Hai.")]
    topic = await content.get_topic(FAQ, "deposit")
    assert topic is not None and topic.draft is None


async def test_publishing_needs_a_draft_and_refuses_a_draft_changed_since_read(
    stores: Stores,
) -> None:
    content = stores.content
    with pytest.raises(Conflict):
        await content.do_publish_draft(FAQ, "deposit", stores.reviewer_id, None)
    read = await content.do_save_draft(FAQ, "deposit", topic_data("Một."), stores.editor_id)
    changed = await content.do_save_draft(FAQ, "deposit", topic_data("Hai."), stores.editor_id)
    assert changed.updated_at != read.updated_at
    with pytest.raises(Conflict):
        await content.do_publish_draft(FAQ, "deposit", stores.reviewer_id, read.updated_at)
    assert (await content.get_published(FAQ)) == []
    done = await content.do_publish_draft(FAQ, "deposit", stores.reviewer_id, changed.updated_at)
    assert done.data["answer"] == "Hai."


async def test_numbers_are_never_reused_and_history_is_newest_first(stores: Stores) -> None:
    content = stores.content
    await content.do_save_draft(FAQ, "deposit", topic_data("Một."), stores.editor_id)
    await content.do_publish_draft(FAQ, "deposit", stores.reviewer_id, None)
    await content.do_save_draft(FAQ, "deposit", topic_data("Bỏ."), stores.editor_id)
    assert await content.do_discard_draft(FAQ, "deposit")
    assert not await content.do_discard_draft(FAQ, "deposit")  # nothing left to discard
    discarded = await content.get_version(FAQ, "deposit", 2)
    assert discarded is not None and discarded.state == VersionState.DISCARDED.value
    await content.do_publish_data(FAQ, "deposit", topic_data("Ba."), stores.reviewer_id, "nhập")
    draft = await content.do_save_draft(FAQ, "deposit", topic_data("Bốn."), stores.editor_id)
    assert draft.number == 4
    history = await content.get_history(FAQ, "deposit")
    assert [(v.number, v.state) for v in history] == [
        (4, VersionState.DRAFT.value),
        (3, VersionState.PUBLISHED.value),
        (1, VersionState.SUPERSEDED.value),
    ]
    assert await content.count_versions(FAQ, "deposit") == 4
    assert await content.count_versions(FAQ) == 4
    assert await content.count_versions(SERVICE) == 0


async def test_versions_of_another_kind_or_key_are_apart(stores: Stores) -> None:
    content = stores.content
    await content.do_publish_data(FAQ, "deposit", topic_data("Hỏi đáp."), None, "seed")
    await content.do_publish_data(SERVICE, "deposit", {"id": "deposit"}, None, "seed")
    await content.do_publish_data(FAQ, "fees", topic_data("Phí."), None, "seed")
    assert [v.key for v in await content.get_published(FAQ)] == ["deposit", "fees"]
    assert [v.data for v in await content.get_published(SERVICE)] == [{"id": "deposit"}]
    faq_deposit = await content.get_version(FAQ, "deposit", 1)
    assert faq_deposit is not None and faq_deposit.data["answer"] == "Hỏi đáp."
    topics = await content.get_topics(FAQ)
    assert [(t.key, t.published is not None, t.draft) for t in topics] == [
        ("deposit", True, None),
        ("fees", True, None),
    ]


async def test_get_topic_is_none_for_a_topic_that_never_existed(stores: Stores) -> None:
    assert await stores.content.get_topic(FAQ, "never") is None
    assert await stores.content.get_version(FAQ, "never", 1) is None
    assert await stores.content.get_history(FAQ, "never") == []


async def test_publish_data_keeps_its_note_and_the_open_draft_unless_told(
    stores: Stores,
) -> None:
    content = stores.content
    await content.do_save_draft(FAQ, "deposit", topic_data("Nháp."), stores.editor_id)
    kept = await content.do_publish_data(
        FAQ, "deposit", topic_data("Khôi phục."), stores.reviewer_id, "khôi phục phiên bản 1"
    )
    assert kept.note == "khôi phục phiên bản 1" and kept.published_by == "duyet"
    assert kept.as_dict()["note"] == "khôi phục phiên bản 1"
    topic = await content.get_topic(FAQ, "deposit")
    assert topic is not None and topic.draft is not None
    assert topic.draft.data["answer"] == "Nháp."
    retired = await content.do_publish_data(
        FAQ,
        "deposit",
        {**topic_data("Khôi phục."), "retired": True},
        stores.reviewer_id,
        "ngừng dùng",
        keep_draft=False,
    )
    assert retired.retired and retired.note == "ngừng dùng"
    topic = await content.get_topic(FAQ, "deposit")
    assert topic is not None and topic.draft is None
    assert topic.published is not None and topic.published.number == retired.number
    # retired topics stay among the versions in force (the caller leaves them out)
    assert [v.retired for v in await content.get_published(FAQ)] == [True]


async def test_seeding_writes_once(stores: Stores) -> None:
    content = stores.content
    items = [("deposit", topic_data("Cọc.")), ("fees", topic_data("Phí."))]
    assert await content.do_seed(FAQ, items) == 2
    assert await content.do_seed(FAQ, items) == 0
    assert await content.count_versions(FAQ) == 2
    seeded = await content.get_version(FAQ, "fees", 1)
    assert seeded is not None and seeded.note == "seed"
    assert seeded.state == VersionState.PUBLISHED.value and seeded.edited_by is None
    assert await content.do_seed(SERVICE, [("hotline", {"id": "hotline"})]) == 1


async def test_a_worker_that_loses_the_seeding_race_writes_nothing(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A counts no content; worker B seeds and commits; then A goes on."""
    content = stores.content
    other_worker = ContentStore(content.sessions, content.vault)
    items = [("deposit", topic_data("Cọc.")), ("fees", topic_data("Phí."))]
    real_bump = ContentStore._bump_revision
    other_wrote: list[int] = []

    async def bump_after_the_other_worker_seeded(session: AsyncSession) -> None:
        monkeypatch.setattr(ContentStore, "_bump_revision", staticmethod(real_bump))
        other_wrote.append(await other_worker.do_seed(FAQ, items))
        await real_bump(session)

    monkeypatch.setattr(
        ContentStore, "_bump_revision", staticmethod(bump_after_the_other_worker_seeded)
    )
    assert await content.do_seed(FAQ, items) == 0
    assert other_wrote == [2]
    assert await content.count_versions(FAQ) == 2


async def test_the_revision_rises_on_publish_seed_and_assign_only(stores: Stores) -> None:
    content = stores.content
    start = await content.get_revision()
    await content.do_seed(FAQ, [("deposit", topic_data())])
    after_seed = await content.get_revision()
    assert after_seed == start + 1
    await content.do_seed(FAQ, [("deposit", topic_data())])  # nothing written, nothing moved
    await content.do_save_draft(FAQ, "deposit", topic_data("Nháp."), stores.editor_id)
    await content.do_discard_draft(FAQ, "deposit")
    assert await content.get_revision() == after_seed
    await content.do_save_draft(FAQ, "deposit", topic_data("Mới."), stores.editor_id)
    await content.do_publish_draft(FAQ, "deposit", stores.reviewer_id, None)
    assert await content.get_revision() == after_seed + 1
    await content.do_publish_data(FAQ, "deposit", topic_data(), stores.reviewer_id, "khôi phục")
    assert await content.get_revision() == after_seed + 2
    missed_id = (await missed_rows(stores, ["không hiểu gì"]))[0]
    await content.do_close_missed(missed_id, MissedStatus.DISMISSED, stores.editor_id)
    assert await content.get_revision() == after_seed + 2
    other_id = (await missed_rows(stores, ["vẫn không hiểu"], sender="u-2"))[0]
    assert await content.do_assign_missed(other_id, "greet", "vẫn không hiểu", stores.editor_id)
    assert await content.get_revision() == after_seed + 3


# -- missed messages -----------------------------------------------------------------------


async def missed_rows(
    stores: Stores, texts: list[str], sender: str = "u-1", *, channel: str = "telegram"
) -> list[int]:
    """One turn per text that the bot did not understand; the ids of the missed rows
    written (newest last)."""
    for masked in texts:
        stored = await stores.turns.do_store_inbound(
            InboundMessage(channel=channel, sender_id=sender, text=masked)
        )
        assert stored is not None
        turn = await stores.turns.get_turn_input(stored.message_id)
        outcome = TurnOutcome(
            replies=[Reply("Xin lỗi, mình chưa hiểu rõ.")], context={}, intent="nlu_fallback"
        )
        await stores.turns.do_record_turn(turn, outcome)
        await stores.turns.do_add_missed(
            turn, MissedNote("fallback", masked, "nlu_fallback", 0.123456)
        )
    rows = await raw_rows(stores, "SELECT id FROM missed_messages ORDER BY id")
    return [int(row[0]) for row in rows][-len(texts) :]


async def test_a_missed_message_is_encrypted_at_rest(stores: Stores) -> None:
    masked = "tên em là [tên], đi Đài Loan mất cọc [số] triệu"
    (missed_id,) = await missed_rows(stores, [masked], channel="zalo")
    raw = await raw_rows(stores, "SELECT masked_text_enc, reason, status FROM missed_messages")
    assert len(raw) == 1
    assert "Đài Loan" not in raw[0][0] and "[tên]" not in raw[0][0]
    assert raw[0][1:] == ("fallback", "open")
    item = await stores.content.get_missed_item(missed_id)
    assert item is not None
    assert (item.masked_text, item.channel, item.reason) == (masked, "zalo", "fallback")
    assert (item.guessed_intent, item.confidence) == ("nlu_fallback", 0.1235)
    assert item.status == MissedStatus.OPEN.value and item.assigned_intent is None
    assert await stores.content.get_missed_item(missed_id + 1000) is None


async def test_a_missed_note_after_an_erasing_turn_is_not_kept(stores: Stores) -> None:
    stored = await stores.turns.do_store_inbound(
        InboundMessage(channel="telegram", sender_id="u-9", text="xoá hết")
    )
    assert stored is not None
    turn = await stores.turns.get_turn_input(stored.message_id)
    outcome = TurnOutcome([Reply("Đã xoá.")], {}, "nlu_fallback", erase=True)
    await stores.turns.do_record_turn(turn, outcome)
    await stores.turns.do_add_missed(turn, MissedNote("fallback", "xoá hết", None, 0.1))
    assert await raw_rows(stores, "SELECT count(*) FROM missed_messages") == [(0,)]


async def test_missed_messages_are_listed_newest_first_a_page_at_a_time(stores: Stores) -> None:
    texts = [f"câu khó hiểu {n}" for n in "abcde"]
    ids = await missed_rows(stores, texts)
    first, total = await stores.content.get_missed(limit=2)
    assert total == 5
    assert [m.id for m in first] == ids[::-1][:2]
    assert [m.masked_text for m in first] == ["câu khó hiểu e", "câu khó hiểu d"]
    rest, total = await stores.content.get_missed(limit=2, offset=4)
    assert total == 5 and [m.masked_text for m in rest] == ["câu khó hiểu a"]
    assert await stores.content.get_missed(limit=2, offset=6) == ([], 5)
    await stores.content.do_close_missed(ids[0], MissedStatus.DISMISSED, stores.editor_id)
    dismissed, total = await stores.content.get_missed(MissedStatus.DISMISSED.value)
    assert total == 1 and [m.id for m in dismissed] == [ids[0]]
    assert (await stores.content.get_missed())[1] == 4


async def test_assigning_adds_an_example_once(stores: Stores) -> None:
    content = stores.content
    first, second = await missed_rows(stores, ["đi [tên] cần gì", "mất hộ chiếu thì sao"])
    assert await content.do_assign_missed(first, "faq/deposit", "đi [tên] cần gì", stores.editor_id)
    assert not await content.do_assign_missed(first, "greet", "đi [tên] cần gì", stores.reviewer_id)
    assert await content.do_assign_missed(second, "faq/deposit", "mất hộ chiếu", stores.editor_id)
    assert await content.get_added_examples() == {
        "faq/deposit": ["đi [tên] cần gì", "mất hộ chiếu"]
    }
    item = await content.get_missed_item(first)
    assert item is not None
    assert (item.status, item.assigned_intent) == (MissedStatus.ASSIGNED.value, "faq/deposit")
    assert (await content.get_missed())[1] == 0


async def test_closing_handles_a_message_once(stores: Stores) -> None:
    content = stores.content
    (missed_id,) = await missed_rows(stores, ["một câu"])
    assert await content.do_close_missed(missed_id, MissedStatus.NEW_TOPIC, stores.editor_id)
    assert not await content.do_close_missed(missed_id, MissedStatus.DISMISSED, stores.editor_id)
    assert not await content.do_assign_missed(missed_id, "greet", "một câu", stores.editor_id)
    item = await content.get_missed_item(missed_id)
    assert item is not None and item.status == MissedStatus.NEW_TOPIC.value
    assert await content.get_added_examples() == {}
    assert not await content.do_close_missed(missed_id + 99, MissedStatus.DISMISSED, 1)


async def test_purging_deletes_only_messages_older_than_the_limit(stores: Stores) -> None:
    old, new = await missed_rows(stores, ["cũ", "mới"])
    async with stores.content.sessions() as session:
        await session.execute(
            update(MissedMessage)
            .where(MissedMessage.id == old)
            .values(created_at=utcnow() - timedelta(days=100))
        )
        await session.commit()
    assert await stores.content.do_purge_missed(utcnow() - timedelta(days=90)) == 1
    remaining, total = await stores.content.get_missed()
    assert total == 1 and [m.id for m in remaining] == [new]
    assert await stores.content.do_purge_missed(utcnow() - timedelta(days=90)) == 0


async def test_erasing_a_contact_deletes_its_missed_messages(stores: Stores) -> None:
    await missed_rows(stores, ["của người một", "cũng của người một"], sender="one")
    (kept,) = await missed_rows(stores, ["của người hai"], sender="two")
    stored = await stores.turns.do_store_inbound(
        InboundMessage(channel="telegram", sender_id="one", text="xoá dữ liệu của tôi")
    )
    assert stored is not None
    turn = await stores.turns.get_turn_input(stored.message_id)
    await stores.turns.do_record_turn(
        turn, TurnOutcome([Reply("Đã xoá.")], {}, "delete_my_data", erase=True)
    )
    remaining, total = await stores.content.get_missed()
    assert total == 1 and [m.id for m in remaining] == [kept]


# -- training runs -------------------------------------------------------------------------


async def test_one_live_run_per_data_hash(stores: Stores) -> None:
    content = stores.content
    run = await content.do_start_training("hash-a", stores.reviewer_id)
    assert run is not None
    assert await content.do_start_training("hash-a", None) is None
    other = await content.do_start_training("hash-b", None)
    assert other is not None and other != run
    await content.do_finish_training(run, "refused", "kém hơn", {"candidate": {"as_written": 0.9}})
    again = await content.do_start_training("hash-a", None)
    assert again is not None and again not in (run, other)


async def test_a_run_silent_for_too_long_no_longer_blocks_a_new_one(stores: Stores) -> None:
    content = stores.content
    stale = await content.do_start_training("hash-a", None)
    assert stale is not None
    async with content.sessions() as session:
        await session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == stale)
            .values(started_at=utcnow() - TRAINING_STALE_AFTER - timedelta(minutes=1))
        )
        await session.commit()
    assert await content.do_start_training("hash-a", None) is not None


async def test_runs_report_progress_and_verdict_newest_first(stores: Stores) -> None:
    content = stores.content
    first = await content.do_start_training("hash-a", stores.reviewer_id)
    second = await content.do_start_training("hash-b", None)
    assert first is not None and second is not None
    await content.do_report_training(second, 40, "intents")
    runs = await content.get_training_runs()
    assert [r["id"] for r in runs] == [second, first]
    assert (runs[0]["state"], runs[0]["progress"], runs[0]["stage"]) == ("running", 40, "intents")
    assert runs[0]["finished_at"] is None and runs[1]["requested_by"] == "duyet"
    assert runs[1]["stage"] == "queued" and runs[1]["progress"] == 0
    verdict = {"data_hash": "hash-a", "candidate": {"as_written": 0.91}}
    await content.do_finish_training(first, "installed", None, verdict)
    await content.do_finish_training(second, "failed", "x" * 600, {})
    by_id = {r["id"]: r for r in await content.get_training_runs()}
    assert by_id[first]["state"] == "installed" and by_id[first]["result"] == verdict
    assert (by_id[first]["progress"], by_id[first]["stage"]) == (100, "done")
    assert by_id[first]["finished_at"] is not None and by_id[first]["reason"] is None
    assert by_id[second]["state"] == "failed" and len(by_id[second]["reason"]) == 500
    assert [r["id"] for r in await content.get_training_runs(limit=1)] == [second]
