"""Repository functions of the counsellor console: the queue, one case, its messages
and notes, accept / transfer / close, staff availability, canned replies, the audit log.

``get_*`` read; ``do_*`` write, each in one transaction. State changes are conditional
updates (``WHERE state = 'waiting'`` …), so two counsellors never both take one
conversation, and a person's "hủy" and a counsellor's accept cannot both win. Whether a
member of staff *may* do something is decided in ``web/console.py``; this module only
does it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import (
    PRIORITY_RANK,
    AuthorKind,
    ConversationState,
    Direction,
    Priority,
    Reply,
    StaffRole,
)
from bot.storage.crypto import Vault
from bot.storage.models import (
    AuditEntry,
    CannedReply,
    CaseNote,
    Contact,
    Conversation,
    ConversationEvent,
    Message,
    OutboxItem,
    StaffUser,
    utcnow,
)
from bot.storage.repository import RecordedReply

CONSOLE_PRESENCE = timedelta(seconds=60)  # an open console refreshes it every 20 s
WAIT_SAMPLE = 50
WAIT_SAMPLE_DAYS = 7
MIN_WAIT_SAMPLES = 3
COUNSELLING_ROLES = (StaffRole.COUNSELLOR.value, StaffRole.SUPERVISOR.value)


@dataclass(frozen=True)
class Case:
    """One conversation as the console sees it (decrypted; nothing is checked here)."""

    id: int
    contact_id: int
    channel: str
    state: ConversationState
    priority: Priority | None
    risk_level: str | None
    consent: str | None
    queued_at: datetime | None
    accepted_at: datetime | None
    closed_at: datetime | None
    handoff_message_id: int | None
    assigned_staff_id: int | None
    assigned_username: str | None
    callback_phone: str | None
    callback_when: str | None
    slots: dict[str, Any]
    last_inbound_at: datetime | None


@dataclass(frozen=True)
class StoredMessage:
    id: int
    author: str
    text: str
    at: datetime
    counsellor: str | None


@dataclass(frozen=True)
class StoredNote:
    id: int
    author: str | None
    text: str
    at: datetime


@dataclass(frozen=True)
class StaffStatus:
    id: int
    username: str
    role: str
    available: bool


class CaseStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault) -> None:
        self.sessions = sessions
        self.vault = vault

    # -- availability --------------------------------------------------------------------

    @staticmethod
    def _available_clause(now: datetime) -> Any:
        return (
            StaffUser.active.is_(True)
            & StaffUser.role.in_(COUNSELLING_ROLES)
            & or_(
                StaffUser.available.is_(True),
                StaffUser.console_seen_at > now - CONSOLE_PRESENCE,
            )
        )

    async def count_available_counsellors(self) -> int:
        async with self.sessions() as session:
            query = select(func.count(StaffUser.id)).where(self._available_clause(utcnow()))
            return int(await session.scalar(query) or 0)

    async def get_availability(self, staff_id: int) -> tuple[bool, bool]:
        """Whether the member said they are available, and whether they count as on
        duty now (said so, or has a console open)."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(StaffUser.available, self._available_clause(utcnow())).where(
                        StaffUser.id == staff_id
                    )
                )
            ).first()
        return (bool(row[0]), bool(row[1])) if row is not None else (False, False)

    async def get_typical_wait_minutes(self) -> int | None:
        """The median wait of recent accepted requests, rounded up to 5 minutes; None
        with too few to say."""
        since = utcnow() - timedelta(days=WAIT_SAMPLE_DAYS)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Conversation.queued_at, Conversation.accepted_at)
                    .where(Conversation.accepted_at > since, Conversation.queued_at.is_not(None))
                    .order_by(Conversation.accepted_at.desc())
                    .limit(WAIT_SAMPLE)
                )
            ).all()
        waits = [
            (accepted - queued).total_seconds() for queued, accepted in rows if accepted and queued
        ]
        if len(waits) < MIN_WAIT_SAMPLES:
            return None
        minutes = statistics.median(waits) / 60
        return max(5, int(-(-minutes // 5) * 5))

    async def do_touch_console(self, staff_id: int) -> None:
        await self._update_staff(staff_id, console_seen_at=utcnow())

    async def do_leave_console(self, staff_id: int) -> None:
        await self._update_staff(staff_id, console_seen_at=None)

    async def do_set_available(self, staff_id: int, available: bool) -> None:
        await self._update_staff(staff_id, available=available)

    async def _update_staff(self, staff_id: int, **values: Any) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(StaffUser).where(StaffUser.id == staff_id).values(**values)
            )
            await session.commit()

    async def get_staff_status(self, staff_id: int | None = None) -> list[StaffStatus]:
        """Counsellors and supervisors (or one member), with whether each is available."""
        now = utcnow()
        available = self._available_clause(now)
        query = select(StaffUser, available).where(StaffUser.active.is_(True))
        if staff_id is None:
            query = query.where(StaffUser.role.in_(COUNSELLING_ROLES))
        else:
            query = query.where(StaffUser.id == staff_id)
        async with self.sessions() as session:
            rows = (await session.execute(query.order_by(StaffUser.username))).all()
        return [StaffStatus(u.id, u.username, u.role, bool(is_on)) for u, is_on in rows]

    async def get_staff_by_username(self, username: str) -> StaffStatus | None:
        async with self.sessions() as session:
            user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
        if user is None or not user.active:
            return None
        return StaffStatus(user.id, user.username, user.role, user.available)

    # -- the queue and one case ----------------------------------------------------------

    def _case_query(self) -> Any:
        last_inbound = (
            select(func.max(Message.created_at))
            .where(
                Message.conversation_id == Conversation.id,
                Message.direction == Direction.INBOUND.value,
            )
            .scalar_subquery()
        )
        return (
            select(Conversation, Contact.channel, StaffUser.username, last_inbound)
            .join(Contact, Contact.id == Conversation.contact_id)
            .outerjoin(StaffUser, StaffUser.id == Conversation.assigned_staff_id)
        )

    def _to_case(self, row: Any) -> Case:
        conversation, channel, username, last_inbound = row
        context = (
            self.vault.decrypt_json(conversation.context_enc) if conversation.context_enc else {}
        )
        return Case(
            id=conversation.id,
            contact_id=conversation.contact_id,
            channel=channel,
            state=ConversationState(conversation.state),
            priority=Priority(conversation.priority) if conversation.priority else None,
            risk_level=conversation.risk_level,
            consent=conversation.consent,
            queued_at=conversation.queued_at,
            accepted_at=conversation.accepted_at,
            closed_at=conversation.closed_at,
            handoff_message_id=conversation.handoff_message_id,
            assigned_staff_id=conversation.assigned_staff_id,
            assigned_username=username,
            callback_phone=self._maybe_decrypt(conversation.callback_phone_enc),
            callback_when=self._maybe_decrypt(conversation.callback_when_enc),
            slots=dict(context.get("slots") or {}),
            last_inbound_at=_aware(last_inbound),
        )

    def _maybe_decrypt(self, token: str | None) -> str | None:
        return self.vault.decrypt(token) if token else None

    async def get_case(self, conversation_id: int) -> Case | None:
        async with self.sessions() as session:
            row = (
                await session.execute(self._case_query().where(Conversation.id == conversation_id))
            ).first()
        return self._to_case(row) if row is not None else None

    async def get_queue(self) -> list[Case]:
        """Waiting and held conversations; waiting ones by priority, then oldest first."""
        states = [ConversationState.WAITING.value, ConversationState.COUNSELLOR.value]
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    self._case_query()
                    .where(Conversation.state.in_(states))
                    .order_by(Conversation.queued_at, Conversation.id)
                )
            ).all()
        cases = [self._to_case(row) for row in rows]
        return sorted(cases, key=_queue_order)

    # -- messages and notes --------------------------------------------------------------

    async def get_messages(
        self, conversation_id: int, *, from_id: int | None = None, after_id: int | None = None
    ) -> list[StoredMessage]:
        query = (
            select(Message, StaffUser.username)
            .outerjoin(StaffUser, StaffUser.id == Message.staff_id)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id)
        )
        first = max(from_id or 0, (after_id or -1) + 1)
        query = query.where(Message.id >= first)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            offered = await session.scalar(  # the buttons shown just before the window
                select(Message.buttons)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.direction == Direction.OUTBOUND.value,
                    Message.id < first,
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
        found = []
        for message, username in rows:
            text = self.vault.decrypt(message.text_enc)
            if message.direction == Direction.OUTBOUND.value:
                offered = message.buttons
            else:
                text = _as_shown(text, offered)
            found.append(
                StoredMessage(message.id, message.author, text, message.created_at, username)
            )
        return found

    async def do_send(
        self,
        case: Case,
        reply: Reply,
        *,
        author: AuthorKind,
        staff_id: int | None = None,
        **conversation_values: Any,
    ) -> RecordedReply:
        """Record a message to the person in the outbox (their own channel delivers it),
        with any conversation change made in the same transaction."""
        async with self.sessions() as session:
            recorded = await self._send(session, case, reply, author=author, staff_id=staff_id)
            if conversation_values:
                await session.execute(
                    update(Conversation)
                    .where(Conversation.id == case.id)
                    .values(**conversation_values)
                )
            await session.commit()
            return recorded

    async def _send(
        self,
        session: AsyncSession,
        case: Case,
        reply: Reply,
        *,
        author: AuthorKind,
        staff_id: int | None,
    ) -> RecordedReply:
        now = utcnow()
        message = Message(
            conversation_id=case.id,
            channel=case.channel,
            direction=Direction.OUTBOUND.value,
            author=author.value,
            text_enc=self.vault.encrypt(reply.text),
            buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons] or None,
            staff_id=staff_id,
            created_at=now,
        )
        item = OutboxItem(
            message=message, contact_id=case.contact_id, channel=case.channel, next_attempt_at=now
        )
        session.add(item)
        await session.flush()
        return RecordedReply(item.id, message.id, reply.text, now)

    async def do_add_note(self, conversation_id: int, staff_id: int, text: str) -> StoredNote:
        async with self.sessions() as session:
            note = CaseNote(
                conversation_id=conversation_id,
                staff_id=staff_id,
                text_enc=self.vault.encrypt(text),
                created_at=utcnow(),
            )
            session.add(note)
            await session.commit()
            author = await session.scalar(
                select(StaffUser.username).where(StaffUser.id == staff_id)
            )
            return StoredNote(note.id, author, text, note.created_at)

    async def get_notes(self, conversation_id: int) -> list[StoredNote]:
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(CaseNote, StaffUser.username)
                    .outerjoin(StaffUser, StaffUser.id == CaseNote.staff_id)
                    .where(CaseNote.conversation_id == conversation_id)
                    .order_by(CaseNote.id)
                )
            ).all()
        return [
            StoredNote(n.id, username, self.vault.decrypt(n.text_enc), n.created_at)
            for n, username in rows
        ]

    # -- state changes -------------------------------------------------------------------

    @staticmethod
    async def _move(
        session: AsyncSession, case: Case, states: Sequence[ConversationState], **values: Any
    ) -> bool:
        """Change the conversation only if it is still in one of ``states``."""
        moved = await session.execute(
            update(Conversation)
            .where(Conversation.id == case.id, Conversation.state.in_([s.value for s in states]))
            .values(**values)
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    async def do_accept(self, case: Case, staff_id: int, greeting: Reply) -> bool:
        """Take a waiting conversation; False if someone else took it (or it left)."""
        now = utcnow()
        async with self.sessions() as session:
            taken = await self._move(
                session,
                case,
                [ConversationState.WAITING],
                state=ConversationState.COUNSELLOR.value,
                assigned_staff_id=staff_id,
                accepted_at=now,
            )
            if not taken:
                await session.rollback()
                return False
            await self._send(session, case, greeting, author=AuthorKind.BOT, staff_id=None)
            await self._event(session, case.id, "handoff_accepted", {})
            await session.commit()
            return True

    async def do_transfer(self, case: Case, to_staff_id: int) -> bool:
        async with self.sessions() as session:
            moved = await self._move(
                session, case, [ConversationState.COUNSELLOR], assigned_staff_id=to_staff_id
            )
            if not moved:
                await session.rollback()
                return False
            await self._event(session, case.id, "handoff_transferred", {})
            await session.commit()
            return True

    async def do_close(self, case: Case, outcome: str, goodbye: Reply | None) -> bool:
        """End the case: the call-back number and time are deleted; the next message
        from the person opens a new conversation with the bot."""
        now = utcnow()
        async with self.sessions() as session:
            closed = await self._move(
                session,
                case,
                [ConversationState.WAITING, ConversationState.COUNSELLOR],
                state=ConversationState.CLOSED.value,
                closed_at=now,
                outcome=outcome,
                callback_phone_enc=None,
                callback_when_enc=None,
            )
            if not closed:
                await session.rollback()
                return False
            if goodbye is not None:
                await self._send(session, case, goodbye, author=AuthorKind.BOT, staff_id=None)
            await self._event(session, case.id, "handoff_closed", {"outcome": outcome})
            await session.commit()
            return True

    async def do_record_referral(self, case: Case, to: str) -> None:
        async with self.sessions() as session:
            await self._event(session, case.id, "referral", {"to": to})
            await session.commit()

    @staticmethod
    async def _event(
        session: AsyncSession, conversation_id: int, kind: str, data: dict[str, Any]
    ) -> None:
        session.add(ConversationEvent(conversation_id=conversation_id, type=kind, data=data))

    # -- waiting updates -----------------------------------------------------------------

    async def get_due_waiting_updates(self, after: timedelta, max_updates: int) -> list[Case]:
        """Waiting conversations whose last word from us is older than ``after``."""
        cutoff = utcnow() - after
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    self._case_query().where(
                        Conversation.state == ConversationState.WAITING.value,
                        Conversation.waiting_updates < max_updates,
                        func.coalesce(Conversation.last_update_at, Conversation.queued_at) < cutoff,
                    )
                )
            ).all()
        return [self._to_case(row) for row in rows]

    async def do_send_waiting_update(self, case: Case, update_reply: Reply) -> bool:
        """Tell a waiting person they are not forgotten, once per due period."""
        async with self.sessions() as session:
            counted = await session.execute(
                update(Conversation)
                .where(
                    Conversation.id == case.id,
                    Conversation.state == ConversationState.WAITING.value,
                )
                .values(waiting_updates=Conversation.waiting_updates + 1, last_update_at=utcnow())
            )
            if counted.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return False
            await self._send(session, case, update_reply, author=AuthorKind.BOT, staff_id=None)
            await session.commit()
            return True

    # -- canned replies and the audit log ------------------------------------------------

    async def get_canned_replies(self) -> list[tuple[int, str, str]]:
        async with self.sessions() as session:
            rows = (await session.scalars(select(CannedReply).order_by(CannedReply.id))).all()
        return [(r.id, r.title, r.text) for r in rows]

    async def do_add_canned_reply(self, title: str, text: str) -> int | None:
        """The new reply's id; None when one with this title exists."""
        async with self.sessions() as session:
            reply = CannedReply(title=title, text=text)
            session.add(reply)
            try:
                await session.commit()
            except IntegrityError:
                return None
            return reply.id

    async def do_delete_canned_reply(self, reply_id: int) -> bool:
        async with self.sessions() as session:
            deleted = await session.execute(delete(CannedReply).where(CannedReply.id == reply_id))
            await session.commit()
            return bool(deleted.rowcount)  # type: ignore[attr-defined]

    async def do_seed_canned_replies(self, replies: Sequence[tuple[str, str]]) -> int:
        """Load the starting set once, when there are none yet (titles are unique, so
        workers starting together cannot load it twice)."""
        async with self.sessions() as session:
            if await session.scalar(select(func.count(CannedReply.id))):
                return 0
            session.add_all(CannedReply(title=title, text=text) for title, text in replies)
            try:
                await session.commit()
            except IntegrityError:  # another worker loaded it first
                return 0
            return len(replies)

    async def get_audit(
        self, *, conversation_id: int | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        query = (
            select(AuditEntry, StaffUser.username)
            .outerjoin(StaffUser, StaffUser.id == AuditEntry.actor_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        if conversation_id is not None:
            query = query.where(
                AuditEntry.target_type == "conversation",
                AuditEntry.target_id == str(conversation_id),
            )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            {
                "id": entry.id,
                "at": entry.at.isoformat(),
                "actor": username,
                "action": entry.action,
                "target_type": entry.target_type,
                "target_id": entry.target_id,
                "detail": entry.detail,
            }
            for entry, username in rows
        ]


def _as_shown(text: str, offered: list[dict[str, str]] | None) -> str:
    """A tapped button arrives as its payload (``/handoff_consent{…}``): staff read the
    title the person tapped instead."""
    for button in offered or ():
        if text.strip() == button.get("payload"):
            return button.get("title") or text
    return text


def _queue_order(case: Case) -> tuple[int, int, float]:
    waiting = 0 if case.state is ConversationState.WAITING else 1
    rank = PRIORITY_RANK.get(case.priority or Priority.NORMAL, 2)
    queued = case.queued_at.timestamp() if case.queued_at else 0.0
    return waiting, rank, queued


def _aware(value: datetime | None) -> datetime | None:
    """A scalar subquery bypasses the column type: SQLite hands back naive UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
