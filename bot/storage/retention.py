"""Data retention: what is deleted, and when (``donghanh purge`` and the daily task).

A helpline keeps what people told it only as long as it may still help them, and keeps
the anonymous numbers of its work for good. The rules, per kind of data (``KINDS``):

``messages``, ``case_notes``, ``conversations``
    A conversation *idle* for ``retention_days`` (default 180) loses its content: its
    messages (with their delivery records) and counsellors' notes are deleted, and its
    context, call-back number and time and screening level are cleared. Idle: nothing
    was written in it, nor did it change, since the cut-off, and no reply is still to be
    delivered. A conversation waiting for a counsellor, or held by one, is never idle,
    however old. The conversation row itself stays, with its dates, channel, state and
    handoff columns, and so do its events (``conversation_events``: intents, screening
    levels, provinces — no text): the statistics of the past (``stats.py``) read only
    those, so they come out the same after a purge.
``contacts``
    A person not seen for ``retention_days``, with no live conversation, is *unlinked*:
    the encrypted platform id (the only way to reach them) is emptied and the
    pseudonym (an HMAC of that id) replaced by ``retired-<row id>``, so a returning
    person starts afresh as someone new and nothing joins them to the old rows.
``outbox``
    Delivery records that are settled (sent or failed) and older than
    ``outbox_retention_days`` (default 30).
``staff_sessions``, ``login_locks``
    Staff sessions past their expiry; account locks whose time has passed.
``missed_messages``
    The editors' queue of masked messages, after ``missed_retention_days``
    (``ContentStore.do_purge_missed``, which the live content also runs hourly).
``audit_log``
    Entries older than ``audit_retention_days`` (default 730). The table refuses UPDATE
    and DELETE by trigger; the purge lifts the triggers inside its own transaction only
    (SQLite: dropped and created again from their stored SQL; PostgreSQL: disabled and
    enabled again, which needs the database user to own the table, as the one that ran
    the migrations does), so they are back whatever happens.

Everything but the missed messages goes in batches (``BATCH_SIZE`` rows a transaction),
so a large purge never holds long locks; every DELETE or UPDATE repeats its condition,
so a person who writes in the middle of a purge keeps their conversation. A kind that
fails is reported and the others still go. A purge that deleted anything is recorded in
the audit log with its counts.

``purge_daily`` is the service's task: about every 24 hours (the first run a few minutes
after start, both jittered), one worker of however many runs the purge: the one that
takes the day's lease, a row of ``channel_credentials`` leased the way
``ChannelStateStore`` leases the Zalo token refresh.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain import ConversationState, OutboxStatus
from bot.storage.channel_state import ChannelStateStore
from bot.storage.content import ContentStore
from bot.storage.crypto import Vault
from bot.storage.models import (
    AuditEntry,
    CaseNote,
    Contact,
    Conversation,
    Message,
    MissedMessage,
    OutboxItem,
    StaffSession,
    StaffUser,
    utcnow,
)

logger = logging.getLogger("donghanh.retention")

BATCH_SIZE = 500
RETIRED_PREFIX = "retired-"  # pseudonym of an unlinked contact: never an HMAC (hex)
UNLINKED = ""  # platform_user_id_enc of an unlinked contact
LEASE_CHANNEL = "_retention"  # the lease row in channel_credentials (no real channel)
LEASE = timedelta(hours=20)  # at most one purge in this long, across every worker
DAY_SECONDS = 24 * 3600.0
JITTER_SECONDS = 1800.0
FIRST_RUN_SECONDS = (60.0, 600.0)  # the first run comes this long after start
AUDIT_ACTION = "retention_purge"

HELD_STATES = (ConversationState.WAITING.value, ConversationState.COUNSELLOR.value)
LIVE_OUTBOX = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
SETTLED_OUTBOX = (OutboxStatus.SENT.value, OutboxStatus.FAILED.value)

KIND_LABELS: dict[str, str] = {
    "messages": "Tin nhắn",
    "case_notes": "Ghi chú của tư vấn viên",
    "conversations": "Cuộc trò chuyện được xoá ngữ cảnh và số gọi lại",
    "contacts": "Người dùng được gỡ liên kết (xoá mã định danh nền tảng)",
    "outbox": "Bản ghi gửi tin đã xong (đã gửi hoặc thất bại)",
    "staff_sessions": "Phiên đăng nhập đã hết hạn",
    "login_locks": "Khoá đăng nhập đã hết thời hạn",
    "missed_messages": "Tin nhắn chưa hiểu (đã che thông tin)",
    "audit_log": "Mục nhật ký kiểm tra",
}
KINDS = tuple(KIND_LABELS)


@dataclass(frozen=True)
class Cutoffs:
    """The moments before which each kind of data goes."""

    now: datetime
    content: datetime
    outbox: datetime
    audit: datetime
    missed: datetime

    @classmethod
    def from_settings(cls, settings: Settings, now: datetime | None = None) -> Cutoffs:
        now = now or utcnow()
        return cls(
            now=now,
            content=now - timedelta(days=settings.retention_days),
            outbox=now - timedelta(days=settings.outbox_retention_days),
            audit=now - timedelta(days=settings.audit_retention_days),
            missed=now - timedelta(days=settings.missed_retention_days),
        )


@dataclass
class PurgeReport:
    """Rows deleted (or, in a dry run, that would be) per kind, and the kinds that
    failed (their error is logged by type only)."""

    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# -- what is idle ----------------------------------------------------------------------------


def idle_conversation(cutoff: datetime) -> ColumnElement[bool]:
    """A conversation nobody wrote in or changed since ``cutoff``, not waiting for or
    held by a counsellor, with no reply still to deliver (correlated on
    ``Conversation``)."""
    recent_message = (
        select(Message.id)
        .where(Message.conversation_id == Conversation.id, Message.created_at >= cutoff)
        .exists()
    )
    recent_note = (
        select(CaseNote.id)
        .where(CaseNote.conversation_id == Conversation.id, CaseNote.created_at >= cutoff)
        .exists()
    )
    undelivered = (
        select(OutboxItem.id)
        .join(Message, Message.id == OutboxItem.message_id)
        .where(Message.conversation_id == Conversation.id, OutboxItem.status.in_(LIVE_OUTBOX))
        .exists()
    )
    return and_(
        Conversation.state.not_in(HELD_STATES),
        Conversation.created_at < cutoff,
        Conversation.updated_at < cutoff,
        or_(Conversation.closed_at.is_(None), Conversation.closed_at < cutoff),
        ~recent_message,
        ~recent_note,
        ~undelivered,
    )


def _idle_conversation_ids(cutoff: datetime) -> Select[int]:
    return select(Conversation.id).where(idle_conversation(cutoff))


def idle_contact(cutoff: datetime) -> ColumnElement[bool]:
    """A linked contact not seen since ``cutoff`` whose conversations are all idle and
    who has no reply still to deliver (correlated on ``Contact``)."""
    live_conversation = (
        select(Conversation.id)
        .where(Conversation.contact_id == Contact.id, ~idle_conversation(cutoff))
        .exists()
    )
    undelivered = (
        select(OutboxItem.id)
        .where(OutboxItem.contact_id == Contact.id, OutboxItem.status.in_(LIVE_OUTBOX))
        .exists()
    )
    return and_(
        Contact.last_seen_at < cutoff,
        Contact.platform_user_id_enc != UNLINKED,
        ~live_conversation,
        ~undelivered,
    )


def _has_personal_columns() -> ColumnElement[bool]:
    return or_(
        Conversation.context_enc.is_not(None),
        Conversation.callback_phone_enc.is_not(None),
        Conversation.callback_when_enc.is_not(None),
        Conversation.risk_level.is_not(None),
    )


# -- the rules ---------------------------------------------------------------------------------

Apply = Callable[[AsyncSession, list[Any], Cutoffs], Awaitable[int]]


@dataclass(frozen=True)
class Rule:
    """One kind of data: the ids of the rows that go, and how a batch of them goes.
    ``ddl``: the batch changes the schema (lifts triggers) inside its transaction."""

    kind: str
    candidates: Callable[[Cutoffs], Select[Any]]
    apply: Apply
    ddl: bool = False


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


async def _delete_messages(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    """Their delivery records go with them, and replies to them forget them (foreign
    keys: ON DELETE CASCADE, SET NULL)."""
    batch = select(Message.conversation_id).where(Message.id.in_(ids))
    result = await session.execute(
        delete(Message)
        .where(Message.id.in_(ids))
        .where(Message.conversation_id.in_(_still_idle(batch, cutoffs)))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def _still_idle(conversation_ids: Select[Any], cutoffs: Cutoffs) -> Select[int]:
    """Those of the batch's conversations that are idle now: checked again under the
    write lock (someone may have written since), for these conversations only."""
    return select(Conversation.id).where(
        Conversation.id.in_(conversation_ids), idle_conversation(cutoffs.content)
    )


async def _delete_notes(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    batch = select(CaseNote.conversation_id).where(CaseNote.id.in_(ids))
    result = await session.execute(
        delete(CaseNote)
        .where(CaseNote.id.in_(ids))
        .where(CaseNote.conversation_id.in_(_still_idle(batch, cutoffs)))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def _clear_conversations(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    """Context, call-back details and screening level go; the columns the statistics
    read stay, and ``updated_at`` keeps its value (clearing is not activity)."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id.in_(ids), idle_conversation(cutoffs.content))
        .values(
            context_enc=None,
            callback_phone_enc=None,
            callback_when_enc=None,
            risk_level=None,
            updated_at=Conversation.updated_at,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def _unlink_contacts(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    retired = literal(RETIRED_PREFIX, String) + cast(Contact.id, String)
    result = await session.execute(
        update(Contact)
        .where(Contact.id.in_(ids), idle_contact(cutoffs.content))
        .values(platform_user_id_enc=UNLINKED, pseudonym=retired)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def _delete_outbox(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    result = await session.execute(
        delete(OutboxItem)
        .where(OutboxItem.id.in_(ids), OutboxItem.status.in_(SETTLED_OUTBOX))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def _delete_sessions(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    result = await session.execute(
        delete(StaffSession)
        .where(StaffSession.id.in_(ids), StaffSession.expires_at < cutoffs.now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def _clear_locks(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    result = await session.execute(
        update(StaffUser)
        .where(StaffUser.id.in_(ids), StaffUser.locked_until < cutoffs.now)
        .values(locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def _delete_audit(session: AsyncSession, ids: list[Any], cutoffs: Cutoffs) -> int:
    """The append-only triggers are lifted for this transaction only."""
    restore = await _lift_audit_triggers(session)
    result = await session.execute(
        delete(AuditEntry)
        .where(AuditEntry.id.in_(ids), AuditEntry.at < cutoffs.audit)
        .execution_options(synchronize_session=False)
    )
    await restore()
    return _rowcount(result)


async def _lift_audit_triggers(session: AsyncSession) -> Callable[[], Awaitable[None]]:
    """Remove the audit log's triggers inside the current transaction; returns what puts
    them back (a rollback does too: DDL is transactional on both databases)."""
    table = AuditEntry.__tablename__
    if _dialect(session) == "sqlite":
        found = (
            await session.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
                ),
                {"t": table},
            )
        ).all()
        for name, _sql in found:
            await session.execute(text(f'DROP TRIGGER "{name}"'))

        async def recreate() -> None:
            for _name, sql in found:
                await session.execute(text(sql))

        return recreate
    names = (
        await session.scalars(
            text(
                "SELECT tgname FROM pg_trigger JOIN pg_class ON pg_class.oid = tgrelid "
                "WHERE relname = :t AND pg_class.relnamespace = "
                "CAST(current_schema() AS regnamespace) "
                "AND NOT tgisinternal AND tgenabled <> 'D'"
            ),
            {"t": table},
        )
    ).all()
    for name in names:
        await session.execute(text(f'ALTER TABLE {table} DISABLE TRIGGER "{name}"'))

    async def enable() -> None:
        for name in names:
            await session.execute(text(f'ALTER TABLE {table} ENABLE TRIGGER "{name}"'))

    return enable


RULES: tuple[Rule, ...] = (
    # first: a settled record of a message that goes is counted here, not lost in the
    # messages' cascade, so a dry run counts what a purge deletes
    Rule(
        "outbox",
        lambda c: select(OutboxItem.id).where(
            OutboxItem.status.in_(SETTLED_OUTBOX), OutboxItem.created_at < c.outbox
        ),
        _delete_outbox,
    ),
    Rule(
        "messages",
        lambda c: select(Message.id).where(
            Message.conversation_id.in_(_idle_conversation_ids(c.content))
        ),
        _delete_messages,
    ),
    Rule(
        "case_notes",
        lambda c: select(CaseNote.id).where(
            CaseNote.conversation_id.in_(_idle_conversation_ids(c.content))
        ),
        _delete_notes,
    ),
    Rule(
        "conversations",
        lambda c: select(Conversation.id).where(
            idle_conversation(c.content), _has_personal_columns()
        ),
        _clear_conversations,
    ),
    Rule("contacts", lambda c: select(Contact.id).where(idle_contact(c.content)), _unlink_contacts),
    Rule(
        "staff_sessions",
        lambda c: select(StaffSession.id).where(StaffSession.expires_at < c.now),
        _delete_sessions,
    ),
    Rule(
        "login_locks",
        lambda c: select(StaffUser.id).where(StaffUser.locked_until < c.now),
        _clear_locks,
    ),
    Rule(
        "audit_log",
        lambda c: select(AuditEntry.id).where(AuditEntry.at < c.audit),
        _delete_audit,
        ddl=True,
    ),
)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def _begin_ddl(session: AsyncSession) -> None:
    """On SQLite, open the transaction (taking the write lock) before the batch's DDL,
    which Python's sqlite3 would otherwise run outside one. Other batches read their
    candidates without a lock (WAL readers block nobody); their first write opens it."""
    if _dialect(session) == "sqlite":
        await session.execute(text("BEGIN IMMEDIATE"))


# -- running them ------------------------------------------------------------------------------


class RetentionPurger:
    """Applies the retention rules to one database (``count_*`` reads, ``do_*`` writes)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
        settings: Settings,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.batch_size = batch_size
        self._content = ContentStore(sessions, vault)

    async def count_purgeable(self, now: datetime | None = None) -> PurgeReport:
        """What a purge now would delete (a dry run: nothing changes)."""
        cutoffs = Cutoffs.from_settings(self.settings, now)
        report = PurgeReport(dry_run=True)
        async with self.sessions() as session:
            for rule in RULES:
                report.counts[rule.kind] = await self._count(session, rule.candidates(cutoffs))
            report.counts["missed_messages"] = await self._count(
                session, select(MissedMessage.id).where(MissedMessage.created_at < cutoffs.missed)
            )
        return report

    @staticmethod
    async def _count(session: AsyncSession, candidates: Select[Any]) -> int:
        return int(
            await session.scalar(select(func.count()).select_from(candidates.subquery())) or 0
        )

    async def do_purge(self, now: datetime | None = None) -> PurgeReport:
        """Delete what the rules say, kind by kind, batch by batch. A kind that fails is
        reported and logged (by error type only); the others still run."""
        cutoffs = Cutoffs.from_settings(self.settings, now)
        report = PurgeReport(dry_run=False)
        for rule in RULES:
            await self._run_guarded(report, rule.kind, self._purge_rule(rule, cutoffs))
        await self._run_guarded(
            report, "missed_messages", self._content.do_purge_missed(cutoffs.missed)
        )
        await self._record(report)
        return report

    async def _run_guarded(self, report: PurgeReport, kind: str, work: Awaitable[int]) -> None:
        try:
            report.counts[kind] = await work
        except Exception as exc:
            report.failed.append(kind)
            logger.warning(
                "retention purge failed",
                extra={
                    "event": "retention_failed",
                    "status": kind,
                    "error_type": type(exc).__name__,
                },
            )

    async def _purge_rule(self, rule: Rule, cutoffs: Cutoffs) -> int:
        total = 0
        while True:
            async with self.sessions() as session:
                if rule.ddl:
                    await _begin_ddl(session)
                ids = list(await session.scalars(rule.candidates(cutoffs).limit(self.batch_size)))
                done = await rule.apply(session, ids, cutoffs) if ids else 0
                await session.commit()
            total += done
            if len(ids) < self.batch_size or done == 0:
                return total

    async def _record(self, report: PurgeReport) -> None:
        """Counts only, in the logs and (when anything went) in the audit log."""
        for kind, count in report.counts.items():
            if count:
                logger.info(
                    "retention purged",
                    extra={"event": "retention_purged", "status": kind, "count": count},
                )
        if report.total == 0 and not report.failed:
            return
        async with self.sessions() as session:
            session.add(
                AuditEntry(
                    action=AUDIT_ACTION,
                    detail={
                        "counts": {k: v for k, v in report.counts.items() if v},
                        "failed": report.failed,
                    },
                )
            )
            await session.commit()


# -- the daily task ----------------------------------------------------------------------------


async def do_claim_daily_run(channel_state: ChannelStateStore) -> bool:
    """Take today's purge for this worker; False if another one has it (or had it in
    the last ``LEASE``). The lease is never released: it marks the day as done."""
    await channel_state.do_seed_credentials(LEASE_CHANNEL, "", "")
    return await channel_state.do_claim_refresh(LEASE_CHANNEL, LEASE) is not None


async def do_daily_purge(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> PurgeReport | None:
    """The purge, if no worker ran it within ``LEASE``; None when another one did."""
    if not await do_claim_daily_run(ChannelStateStore(sessions, vault)):
        return None
    return await RetentionPurger(sessions, vault, settings).do_purge(now)


def _first_delay() -> float:
    return random.uniform(*FIRST_RUN_SECONDS)  # noqa: S311 (timing, not secrecy)


def _next_delay() -> float:
    return DAY_SECONDS + random.uniform(-JITTER_SECONDS, JITTER_SECONDS)  # noqa: S311


async def purge_daily(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    settings: Settings,
    *,
    delays: Callable[[], float] | None = None,
) -> None:
    """Run ``do_daily_purge`` shortly after start, then about every 24 hours, until
    cancelled. A failed run is logged (error type only) and the loop goes on.
    ``delays`` gives each wait in seconds (tests); by default jittered as said above."""
    first = True
    while True:
        wait = _first_delay() if first else _next_delay()
        if delays is not None:
            wait = delays()
        first = False
        await asyncio.sleep(wait)
        try:
            await do_daily_purge(sessions, vault, settings)
        except Exception as exc:  # the database may be away for a while: try tomorrow
            logger.warning(
                "retention purge failed",
                extra={"event": "retention_failed", "error_type": type(exc).__name__},
            )


def describe(report: PurgeReport, kinds: Sequence[str] = KINDS) -> list[str]:
    """One line per kind, in Vietnamese, for the command line."""
    return [f"  {KIND_LABELS[kind]}: {report.counts.get(kind, 0)}" for kind in kinds]
