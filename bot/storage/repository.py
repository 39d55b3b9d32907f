"""Repository functions: every read and write the engine and the web layer make.

``check_*``/``get_*`` read; ``do_*`` write. Text is encrypted on the way in and
decrypted on the way out, so callers only ever see plain values and storage only ever
holds ciphertext. Each ``do_*`` is one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.domain import (
    AuthorKind,
    Button,
    ConversationState,
    Delivery,
    Direction,
    HandoffChange,
    InboundMessage,
    OutboxStatus,
    Reply,
    StaffMember,
)
from bot.storage.crypto import Vault, pseudonymise
from bot.storage.models import (
    AnonymousCount,
    AuditEntry,
    CaseNote,
    Contact,
    Conversation,
    ConversationEvent,
    Message,
    MissedMessage,
    OutboxItem,
    RateWindow,
    StaffSession,
    StaffUser,
    utcnow,
)


@dataclass(frozen=True)
class StoredInbound:
    message_id: int
    conversation_id: int
    contact_id: int
    pseudonym: str


@dataclass(frozen=True)
class TurnInput:
    """What the engine needs to run one turn for a stored inbound message."""

    message_id: int
    conversation_id: int
    contact_id: int
    pseudonym: str
    channel: str
    text: str
    state: ConversationState
    context: dict[str, Any]
    already_processed: bool
    assigned_staff_id: int | None = None
    received_at: datetime | None = None
    # the buttons of the last message the person was sent, so "1" or a title picks one
    last_buttons: tuple[Button, ...] = ()
    # the conversation as this turn read it (its encrypted context, state and holder):
    # recording the turn fails with ``StaleTurn`` if another turn changed it meanwhile
    seen: tuple[str | None, str, int | None] = (None, ConversationState.BOT.value, None)


class StaleTurn(Exception):
    """Recording a turn lost a race: another worker changed the conversation since the
    turn read it, or an older message of the same person is still unanswered
    (``older_message_id``). The engine runs the turn again on fresh input."""

    def __init__(self, older_message_id: int | None = None) -> None:
        super().__init__("stale turn")
        self.older_message_id = older_message_id


@dataclass(frozen=True)
class MissedNote:
    """The bot did not understand: the message, masked, for the editors' queue."""

    reason: str
    masked_text: str
    guessed_intent: str | None
    confidence: float


@dataclass(frozen=True)
class TurnOutcome:
    replies: Sequence[Reply]
    context: dict[str, Any]
    intent: str | None
    events: Sequence[tuple[str, dict[str, Any]]] = ()
    erase: bool = False  # the person asked to erase their data: keep only these replies
    risk_level: str | None = None  # a new screening result, kept on the conversation
    handoff: HandoffChange | None = None
    redact_inbound: str | None = None  # kept instead of the message's text (a phone number)
    intent_handled_by: str | None = None  # which part of the policy answered
    confidence: float = 0.0


@dataclass(frozen=True)
class RecordedReply:
    outbox_id: int
    message_id: int
    text: str
    created_at: datetime


# what a conversation forgets when a handoff request ends without a counsellor
HANDOFF_RESET: dict[str, Any] = {
    "state": ConversationState.BOT.value,
    "assigned_staff_id": None,
    "priority": None,
    "consent": None,
    "handoff_message_id": None,
    "queued_at": None,
    "callback_phone_enc": None,
    "callback_when_enc": None,
}


async def _apply_handoff(
    session: AsyncSession, vault: Vault, turn: TurnInput, change: HandoffChange, now: datetime
) -> None:
    """Queue, withdraw or escalate the request, or keep call-back details, guarded by
    the state so a counsellor's accept in between is never undone."""
    this = update(Conversation).where(Conversation.id == turn.conversation_id)
    waiting = Conversation.state == ConversationState.WAITING.value
    if change.kind == "queue" and change.consent and change.priority:
        await session.execute(
            this.where(Conversation.state == ConversationState.BOT.value).values(
                state=ConversationState.WAITING.value,
                consent=change.consent.value,
                priority=change.priority.value,
                queued_at=now,
                handoff_message_id=turn.message_id,
                waiting_updates=0,
                last_update_at=None,
                assigned_staff_id=None,
            )
        )
    elif change.kind == "cancel":
        await session.execute(this.where(waiting).values(**HANDOFF_RESET))
    elif change.kind == "escalate" and change.priority:
        await session.execute(this.where(waiting).values(priority=change.priority.value))
    elif change.kind in ("phone", "when") and change.value:
        column = "callback_phone_enc" if change.kind == "phone" else "callback_when_enc"
        await session.execute(this.values({column: vault.encrypt(change.value)}))


def _aware(value: datetime | None) -> datetime | None:
    """A raw SQL aggregate's datetime, in UTC (SQLite returns it without a zone, or as
    text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# aliases are costly to build (a new mapper entity each): one each, for self-joins
EARLIER_REPLY = aliased(OutboxItem)
OLDER_MESSAGE = aliased(Message)


def _claimable_now() -> Any:
    """Pending replies (whatever their backoff), and claims whose lease ran out."""
    return or_(
        OutboxItem.status == OutboxStatus.PENDING.value,
        (OutboxItem.status == OutboxStatus.SENDING.value)
        & (OutboxItem.next_attempt_at <= utcnow()),
    )


def _earlier_reply_in_flight(now: datetime) -> Any:
    """An earlier reply to the same person on the same channel that is being sent (a live
    claim, maybe by another worker) or waits out a backoff: this one waits for it, so
    replies never overtake each other."""
    earlier = EARLIER_REPLY
    return (
        select(earlier.id)
        .where(
            earlier.contact_id == OutboxItem.contact_id,
            earlier.channel == OutboxItem.channel,
            earlier.id < OutboxItem.id,
            earlier.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]),
            earlier.next_attempt_at > now,
        )
        .exists()
    )


def _build_delivery_query() -> Any:
    """Outbox rows with their message, contact, and when the person last wrote in that
    conversation (the platform's own time: Messenger's reply window). Built once:
    callers add their conditions to a copy."""
    inbound = aliased(Message)
    last_inbound = (  # newest first along ix_messages_conversation: no table scan
        select(inbound.created_at)
        .where(
            inbound.conversation_id == Message.conversation_id,
            inbound.direction == Direction.INBOUND.value,
        )
        .order_by(inbound.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(OutboxItem, Message, Contact, last_inbound)
        .join(Message, Message.id == OutboxItem.message_id)
        .join(Contact, Contact.id == OutboxItem.contact_id)
        .order_by(OutboxItem.id)
    )


DELIVERIES = _build_delivery_query()
# how stale a contact's last_seen_at may get before a message refreshes it (the
# retention rules count in days); saves a write on nearly every message
CONTACT_SEEN_RESOLUTION = timedelta(minutes=10)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _buttons_to_json(buttons: Sequence[Button]) -> list[dict[str, str]] | None:
    return [{"title": b.title, "payload": b.payload} for b in buttons] or None


def _buttons_from_json(raw: list[dict[str, str]] | None) -> tuple[Button, ...]:
    return tuple(Button(title=b["title"], payload=b["payload"]) for b in raw or [])


class Store:
    """Repository over one database, with the instance's vault and pseudonym secret."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], vault: Vault, pseudonym_secret: str
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self._pseudonym_secret = pseudonym_secret

    def pseudonym_for(self, channel: str, platform_user_id: str) -> str:
        return pseudonymise(self._pseudonym_secret, channel, platform_user_id)

    def message_key_for(self, message: InboundMessage) -> str | None:
        """The platform's message id as kept for deduplication: a keyed hash, since
        some platforms' ids contain the person's id (Telegram's chat, Zalo's follower)."""
        if not message.platform_message_id:
            return None
        return pseudonymise(
            self._pseudonym_secret, f"{message.channel}#msg", message.platform_message_id
        )

    # -- inbound ---------------------------------------------------------------------

    async def do_store_inbound(self, message: InboundMessage) -> StoredInbound | None:
        """Store an inbound message before anything else happens to it.

        Returns ``None`` when the platform already delivered this message id.
        """
        pseudonym = self.pseudonym_for(message.channel, message.sender_id)
        async with self.sessions() as session:
            if message.platform_message_id and await self._is_duplicate(session, message):
                return None
            contact = await self._get_or_create_contact(session, message, pseudonym)
            conversation = await self._get_or_open_conversation(session, contact)
            row = Message(
                conversation_id=conversation.id,
                channel=message.channel,
                direction=Direction.INBOUND.value,
                author=AuthorKind.USER.value,
                text_enc=self.vault.encrypt(message.text),
                platform_message_id=self.message_key_for(message),
                created_at=message.received_at or utcnow(),
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return None
            return StoredInbound(row.id, conversation.id, contact.id, pseudonym)

    async def _is_duplicate(self, session: AsyncSession, message: InboundMessage) -> bool:
        found = await session.scalar(
            select(Message.id).where(
                Message.channel == message.channel,
                Message.platform_message_id == self.message_key_for(message),
            )
        )
        return found is not None

    async def _get_or_create_contact(
        self, session: AsyncSession, message: InboundMessage, pseudonym: str
    ) -> Contact:
        contact = await session.scalar(select(Contact).where(Contact.pseudonym == pseudonym))
        if contact is None:
            contact = Contact(
                pseudonym=pseudonym,
                channel=message.channel,
                platform_user_id_enc=self.vault.encrypt(message.sender_id),
            )
            session.add(contact)
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                contact = await session.scalar(
                    select(Contact).where(Contact.pseudonym == pseudonym)
                )
                if contact is None:
                    raise
        now = utcnow()
        if now - (_aware(contact.last_seen_at) or EPOCH) > CONTACT_SEEN_RESOLUTION:
            contact.last_seen_at = now  # coarse: only the retention rules read it
        return contact

    async def _get_or_open_conversation(
        self, session: AsyncSession, contact: Contact
    ) -> Conversation:
        conversation = await session.scalar(
            select(Conversation)
            .where(
                Conversation.contact_id == contact.id,
                Conversation.state != ConversationState.CLOSED.value,
            )
            .order_by(Conversation.id.desc())
            .limit(1)
        )
        if conversation is None:
            conversation = Conversation(contact_id=contact.id, state=ConversationState.BOT.value)
            session.add(conversation)
            await session.flush()
        return conversation

    async def get_unprocessed_inbound(
        self,
        *,
        older_than: timedelta | None = None,
        contact_id: int | None = None,
        up_to_id: int | None = None,
        limit: int = 500,
    ) -> list[tuple[int, str]]:
        """Ids and pseudonyms of stored inbound messages that no turn has answered yet,
        oldest first; optionally only one contact's, up to a given message."""
        query = (
            select(Message.id, Contact.pseudonym)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Message.direction == Direction.INBOUND.value, Message.processed_at.is_(None))
            .order_by(Message.id)
            .limit(limit)
        )
        if older_than is not None:
            query = query.where(Message.created_at < utcnow() - older_than)
        if contact_id is not None:
            query = query.where(Contact.id == contact_id)
        if up_to_id is not None:
            query = query.where(Message.id <= up_to_id)
        async with self.sessions() as session:
            rows = await session.execute(query)
            return [(row[0], row[1]) for row in rows]

    async def get_turn_input(self, message_id: int) -> TurnInput:
        async with self.sessions() as session:
            row = await session.execute(
                select(Message, Conversation, Contact)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Message.id == message_id)
            )
            message, conversation, contact = row.one()
            context = (
                self.vault.decrypt_json(conversation.context_enc)
                if conversation.context_enc
                else {}
            )
            last_buttons = await session.scalar(
                select(Message.buttons)
                .where(
                    Message.conversation_id == conversation.id,
                    Message.direction == Direction.OUTBOUND.value,
                    Message.id < message.id,
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
            return TurnInput(
                message_id=message.id,
                conversation_id=conversation.id,
                contact_id=contact.id,
                pseudonym=contact.pseudonym,
                channel=message.channel,
                text=self.vault.decrypt(message.text_enc),
                state=ConversationState(conversation.state),
                context=context,
                already_processed=message.processed_at is not None,
                assigned_staff_id=conversation.assigned_staff_id,
                received_at=message.created_at,
                last_buttons=_buttons_from_json(last_buttons),
                seen=(
                    conversation.context_enc,
                    conversation.state,
                    conversation.assigned_staff_id,
                ),
            )

    async def do_record_turn(
        self, turn: TurnInput, outcome: TurnOutcome
    ) -> list[RecordedReply] | None:
        """Store the replies in the outbox and mark the message answered, atomically,
        with what the turn changed in the conversation (context, handoff, risk level).

        Returns the recorded replies, or None when another turn already answered the
        message. If the process dies before this commits, the inbound message is still
        unprocessed and is answered after restart; if after, the replies are in the
        outbox. Either way it is answered exactly once.

        Several workers serialise on the conversation's row: the first statement
        updates it only if it is still as the turn read it (and so locks it until the
        commit), and a message is answered only after every older one of the same
        person. Otherwise ``StaleTurn`` is raised and nothing is written.
        """
        now = utcnow()
        async with self.sessions() as session:
            if not await self._claim_conversation(session, turn, outcome, now):
                await session.rollback()
                if await self._is_processed(session, turn.message_id):
                    return None
                raise StaleTurn()
            marked = await session.execute(
                update(Message)
                .where(
                    Message.id == turn.message_id,
                    Message.processed_at.is_(None),
                    ~self._unanswered_before(turn).exists(),
                )
                .values(
                    processed_at=now,
                    intent=outcome.intent,
                    **(
                        {"text_enc": self.vault.encrypt(outcome.redact_inbound)}
                        if outcome.redact_inbound
                        else {}
                    ),
                )
            )
            if marked.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                older = await session.scalar(self._unanswered_before(turn).limit(1))
                if older is not None:
                    raise StaleTurn(older)
                return None
            outbox_rows = [
                self._outbound_row(session, turn, reply, now) for reply in outcome.replies
            ]
            await session.flush()
            for event_type, data in outcome.events:
                session.add(
                    ConversationEvent(
                        conversation_id=turn.conversation_id, type=event_type, data=data
                    )
                )
            if outcome.handoff is not None:
                await _apply_handoff(session, self.vault, turn, outcome.handoff, now)
            if outcome.erase:
                await self._erase_contact_data(
                    session, turn, keep=[row.message_id for row in outbox_rows], now=now
                )
            await session.commit()
            return [
                RecordedReply(row.id, row.message_id, reply.text, now)
                for row, reply in zip(outbox_rows, outcome.replies, strict=True)
            ]

    async def _claim_conversation(
        self, session: AsyncSession, turn: TurnInput, outcome: TurnOutcome, now: datetime
    ) -> bool:
        """Write the turn's context if the conversation is still as the turn read it; the
        row stays locked (PostgreSQL) or the database is (SQLite) until the commit."""
        context_enc, state, holder = turn.seen
        claimed = await session.execute(
            update(Conversation)
            .where(
                Conversation.id == turn.conversation_id,
                Conversation.context_enc.is_(None)
                if context_enc is None
                else Conversation.context_enc == context_enc,
                Conversation.state == state,
                Conversation.assigned_staff_id.is_(None)
                if holder is None
                else Conversation.assigned_staff_id == holder,
            )
            .values(
                context_enc=self.vault.encrypt_json(outcome.context),
                updated_at=now,
                **({"risk_level": outcome.risk_level} if outcome.risk_level else {}),
            )
        )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    @staticmethod
    def _unanswered_before(turn: TurnInput) -> Any:
        """Messages of the same person still waiting for their turn that came before
        this one, oldest first: they must be answered first."""
        older = OLDER_MESSAGE
        return (
            select(older.id)
            .join(Conversation, Conversation.id == older.conversation_id)
            .where(
                Conversation.contact_id == turn.contact_id,
                older.direction == Direction.INBOUND.value,
                older.processed_at.is_(None),
                older.id < turn.message_id,
            )
            .order_by(older.id)
        )

    async def _is_processed(self, session: AsyncSession, message_id: int) -> bool:
        processed_at = await session.scalar(
            select(Message.processed_at).where(Message.id == message_id)
        )
        return processed_at is not None

    async def get_message_text(self, message_id: int) -> str | None:
        """A message's text, decrypted; None if it is gone (erased)."""
        async with self.sessions() as session:
            token = await session.scalar(select(Message.text_enc).where(Message.id == message_id))
        return None if token is None else self.vault.decrypt(token)

    async def get_previous_inbound(self, turn: TurnInput) -> tuple[str, str | None] | None:
        """The person's message before this one in the conversation (text, intent the
        bot understood), for a "that is not what I asked" correction."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(Message.text_enc, Message.intent)
                    .where(
                        Message.conversation_id == turn.conversation_id,
                        Message.direction == Direction.INBOUND.value,
                        Message.id < turn.message_id,
                    )
                    .order_by(Message.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else (self.vault.decrypt(row[0]), row[1])

    async def do_add_missed(self, turn: TurnInput, note: MissedNote) -> None:
        """Queue a message the bot did not understand, already masked, for the editors
        (nothing if the person has asked to erase their data meanwhile)."""
        async with self.sessions() as session:
            contact = (
                await session.execute(
                    select(Contact.id, Contact.erase_requested_at).where(
                        Contact.id == turn.contact_id
                    )
                )
            ).first()
            if contact is None or contact.erase_requested_at is not None:
                return
            session.add(
                MissedMessage(
                    contact_id=turn.contact_id,
                    channel=turn.channel,
                    reason=note.reason,
                    masked_text_enc=self.vault.encrypt(note.masked_text),
                    guessed_intent=note.guessed_intent,
                    confidence=round(note.confidence, 4),
                    status="open",
                    created_at=utcnow(),
                )
            )
            await session.commit()

    async def _erase_contact_data(
        self, session: AsyncSession, turn: TurnInput, *, keep: list[int], now: datetime
    ) -> None:
        """Everything about the contact goes but the replies in ``keep`` (they still have
        to reach the person); what was erased is counted, anonymously. The contact row
        itself goes once those replies are delivered (``_purge_erased_contacts``)."""
        conversations = select(Conversation.id).where(Conversation.contact_id == turn.contact_id)
        erased = (
            await session.execute(
                select(func.count(Message.id)).where(
                    Message.conversation_id.in_(conversations), Message.id.not_in(keep)
                )
            )
        ).scalar_one()
        await session.execute(
            delete(MissedMessage).where(MissedMessage.contact_id == turn.contact_id)
        )
        await self._add_count(session, now.date(), turn.channel, "erasures", 1)
        await self._add_count(session, now.date(), turn.channel, "messages_erased", int(erased))
        await session.execute(
            delete(OutboxItem).where(
                OutboxItem.contact_id == turn.contact_id, OutboxItem.message_id.not_in(keep)
            )
        )
        await session.execute(
            update(Message)
            .where(Message.conversation_id.in_(conversations), Message.id.in_(keep))
            .values(reply_to_id=None)
        )
        await session.execute(
            delete(Message).where(
                Message.conversation_id.in_(conversations), Message.id.not_in(keep)
            )
        )
        await session.execute(
            delete(ConversationEvent).where(ConversationEvent.conversation_id.in_(conversations))
        )
        await session.execute(
            delete(Conversation).where(
                Conversation.contact_id == turn.contact_id, Conversation.id != turn.conversation_id
            )
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.id == turn.conversation_id)
            .values(context_enc=None, risk_level=None, **HANDOFF_RESET)
        )
        await session.execute(
            delete(CaseNote).where(CaseNote.conversation_id == turn.conversation_id)
        )
        await session.execute(
            update(Contact).where(Contact.id == turn.contact_id).values(erase_requested_at=now)
        )

    @staticmethod
    async def _add_count(
        session: AsyncSession, day: date, channel: str, metric: str, amount: int
    ) -> None:
        key = {"day": day, "channel": channel, "metric": metric}
        updated = await session.execute(
            update(AnonymousCount).filter_by(**key).values(count=AnonymousCount.count + amount)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            session.add(AnonymousCount(**key, count=amount))

    async def _purge_erased_contacts(self, session: AsyncSession, contact_ids: set[int]) -> None:
        """Those of ``contact_ids`` whose erasure confirmation left the outbox: gone, with
        all rows. Called with the contacts whose replies just left it.

        If the person wrote again after asking (a new inbound message), only what came
        before is removed and the contact stays, so nothing new is lost."""
        if not contact_ids:
            return
        waiting = select(OutboxItem.contact_id).where(
            OutboxItem.contact_id.in_(contact_ids),
            OutboxItem.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]),
        )
        erased = (
            await session.execute(
                select(Contact.id, Contact.erase_requested_at).where(
                    Contact.id.in_(contact_ids),
                    Contact.erase_requested_at.is_not(None),
                    Contact.id.not_in(waiting),
                )
            )
        ).all()
        for contact_id, asked_at in erased:
            conversations = select(Conversation.id).where(Conversation.contact_id == contact_id)
            newer = await session.scalar(
                select(func.count(Message.id)).where(
                    Message.conversation_id.in_(conversations),
                    Message.direction == Direction.INBOUND.value,
                    Message.created_at > asked_at,
                )
            )
            if newer:
                await session.execute(
                    delete(Message).where(
                        Message.conversation_id.in_(conversations),
                        Message.created_at <= asked_at,
                    )
                )
                await session.execute(
                    update(Contact).where(Contact.id == contact_id).values(erase_requested_at=None)
                )
            else:
                await session.execute(delete(Contact).where(Contact.id == contact_id))

    def _outbound_row(
        self, session: AsyncSession, turn: TurnInput, reply: Reply, now: datetime
    ) -> OutboxItem:
        message = Message(
            conversation_id=turn.conversation_id,
            channel=turn.channel,
            direction=Direction.OUTBOUND.value,
            author=AuthorKind.BOT.value,
            text_enc=self.vault.encrypt(reply.text),
            buttons=_buttons_to_json(reply.buttons),
            reply_to_id=turn.message_id,
            created_at=now,
        )
        item = OutboxItem(
            message=message, contact_id=turn.contact_id, channel=turn.channel, next_attempt_at=now
        )
        session.add(item)
        return item

    # -- outbox ----------------------------------------------------------------------

    def _to_delivery(
        self,
        item: OutboxItem,
        message: Message,
        contact: Contact,
        last_inbound_at: datetime | None,
    ) -> Delivery:
        return Delivery(
            outbox_id=item.id,
            channel=item.channel,
            recipient_id=self.vault.decrypt(contact.platform_user_id_enc),
            pseudonym=contact.pseudonym,
            reply=Reply(
                text=self.vault.decrypt(message.text_enc),
                buttons=_buttons_from_json(message.buttons),
            ),
            attempts=item.attempts,
            author=message.author,
            person_last_seen_at=_aware(last_inbound_at) or contact.last_seen_at,
        )

    async def _claim(
        self, session: AsyncSession, rows: Sequence[Any], *, in_order: bool = False, **values: Any
    ) -> list[Delivery]:
        """Atomically move each row from a claimable state to ``values``; keep the winners.

        A row another worker claimed first fails the conditional UPDATE and is skipped,
        so two senders never deliver the same reply. With ``in_order``, a person's later
        replies are skipped too once one of theirs is lost to another worker: that
        worker sends them, in order.
        """
        claimed = []
        lost_people: set[tuple[int, str]] = set()
        erased_people: set[int] = set()
        for item, message, contact, last_inbound_at in rows:
            person = (item.contact_id, item.channel)
            if in_order and person in lost_people:
                continue
            result = await session.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item.id, OutboxItem.status == item.status)
                .where(OutboxItem.attempts == item.attempts)
                .where(OutboxItem.next_attempt_at == item.next_attempt_at)
                .values(**values)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(self._to_delivery(item, message, contact, last_inbound_at))
                if contact.erase_requested_at is not None:
                    erased_people.add(contact.id)
            else:
                lost_people.add(person)
        if values.get("status") == OutboxStatus.SENT.value:
            await self._purge_erased_contacts(session, erased_people)
        await session.commit()
        return claimed

    async def do_take_pending_for_contact(
        self, channel: str, platform_user_id: str, *, not_replying_to: Collection[int] = ()
    ) -> list[Delivery]:
        """For channels that answer in the HTTP response: hand over every pending reply.

        Replies a crash left behind come first, in the order they were written. Replies
        to messages in ``not_replying_to`` (turns another request is still waiting for)
        are left for that request.
        """
        pseudonym = self.pseudonym_for(channel, platform_user_id)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    DELIVERIES.where(
                        Contact.pseudonym == pseudonym,
                        OutboxItem.channel == channel,
                        _claimable_now(),
                        or_(
                            Message.reply_to_id.is_(None),
                            Message.reply_to_id.not_in(list(not_replying_to)),
                        ),
                    )
                )
            ).all()
            return await self._claim(
                session,
                rows,
                status=OutboxStatus.SENT.value,
                sent_at=utcnow(),
                attempts=OutboxItem.attempts + 1,
            )

    async def do_claim_due_deliveries(
        self,
        channels: Sequence[str],
        *,
        lease_seconds: float = 60.0,
        limit: int = 100,
        connected_only: Mapping[str, Collection[str]] | None = None,
        exclude_ids: Collection[int] = (),
    ) -> list[Delivery]:
        """Claim due replies for push channels. A claim not settled within the lease
        (the worker died mid-send) becomes due again. For a channel in
        ``connected_only`` only the replies to those people (platform ids) are claimed:
        the web chat's sockets live in one worker each. ``exclude_ids`` are being sent
        by this worker still: never claimed again here, even past their lease."""
        if not channels:
            return []
        now = utcnow()
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    DELIVERIES.where(
                        OutboxItem.channel.in_(channels),
                        OutboxItem.status.in_(
                            [OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]
                        ),
                        OutboxItem.next_attempt_at <= now,
                        ~_earlier_reply_in_flight(now),
                        *self._only_connected(connected_only or {}),
                        *([OutboxItem.id.not_in(list(exclude_ids))] if exclude_ids else []),
                    ).limit(limit)
                )
            ).all()
            return await self._claim(
                session,
                rows,
                in_order=True,
                status=OutboxStatus.SENDING.value,
                next_attempt_at=now + timedelta(seconds=lease_seconds),
            )

    def _only_connected(self, connected: Mapping[str, Collection[str]]) -> list[Any]:
        return [
            or_(
                OutboxItem.channel != channel,
                Contact.pseudonym.in_([self.pseudonym_for(channel, r) for r in recipients]),
            )
            for channel, recipients in connected.items()
        ]

    async def do_make_due_now(self, channel: str, platform_user_id: str) -> None:
        """Cut the backoff of a person's pending replies: they are reachable again."""
        pseudonym = self.pseudonym_for(channel, platform_user_id)
        async with self.sessions() as session:
            contact_ids = select(Contact.id).where(Contact.pseudonym == pseudonym)
            await session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.channel == channel,
                    OutboxItem.contact_id.in_(contact_ids),
                    OutboxItem.status == OutboxStatus.PENDING.value,
                )
                .values(next_attempt_at=utcnow())
            )
            await session.commit()

    async def get_next_attempt_at(self, outbox_id: int) -> datetime | None:
        async with self.sessions() as session:
            return await session.scalar(
                select(OutboxItem.next_attempt_at).where(OutboxItem.id == outbox_id)
            )

    async def do_mark_sent(self, outbox_id: int) -> None:
        await self._update_outbox(
            outbox_id,
            status=OutboxStatus.SENT.value,
            sent_at=utcnow(),
            attempts=OutboxItem.attempts + 1,
        )

    async def do_mark_retry(self, outbox_id: int, error: str, retry_at: datetime) -> None:
        await self._update_outbox(
            outbox_id,
            status=OutboxStatus.PENDING.value,
            last_error=error[:500],
            next_attempt_at=retry_at,
            attempts=OutboxItem.attempts + 1,
        )

    async def do_defer(self, outbox_id: int, until: datetime) -> None:
        """Wait for an unreachable person without spending a delivery attempt."""
        await self._update_outbox(
            outbox_id, status=OutboxStatus.PENDING.value, next_attempt_at=until
        )

    async def do_mark_failed(self, outbox_id: int, error: str) -> None:
        await self._update_outbox(
            outbox_id,
            status=OutboxStatus.FAILED.value,
            last_error=error[:500],
            attempts=OutboxItem.attempts + 1,
        )

    async def _update_outbox(self, outbox_id: int, **values: Any) -> None:
        async with self.sessions() as session:
            contact_id = await session.scalar(
                update(OutboxItem)
                .where(OutboxItem.id == outbox_id)
                .values(**values)
                .returning(OutboxItem.contact_id)
            )
            if contact_id is not None and values.get("status") in (
                OutboxStatus.SENT.value,
                OutboxStatus.FAILED.value,
            ):
                await self._purge_erased_contacts(session, {contact_id})
            await session.commit()

    # -- staff and audit -------------------------------------------------------------

    async def do_create_staff_user(
        self, username: str, password_hash: str, role: str, *, reviewer: bool = False
    ) -> int:
        async with self.sessions() as session:
            user = StaffUser(
                username=username, password_hash=password_hash, role=role, reviewer=reviewer
            )
            session.add(user)
            await session.commit()
            return user.id

    async def check_staff_user_exists(self, username: str) -> bool:
        async with self.sessions() as session:
            return (
                await session.scalar(select(StaffUser.id).where(StaffUser.username == username))
                is not None
            )

    async def count_staff_users(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count(StaffUser.id))) or 0)

    async def do_append_audit(
        self,
        action: str,
        *,
        actor_id: int | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self.sessions() as session:
            session.add(
                AuditEntry(
                    actor_id=actor_id,
                    action=action,
                    target_type=target_type,
                    target_id=target_id,
                    detail=detail or {},
                )
            )
            await session.commit()


@dataclass(frozen=True)
class LoginRecord:
    staff: StaffMember
    password_hash: str
    active: bool
    locked_until: datetime | None


class StaffStore:
    """Staff logins and sessions (``check_*`` reads, ``do_*`` writes)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get_login(self, username: str) -> LoginRecord | None:
        async with self.sessions() as session:
            user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
            if user is None:
                return None
            return LoginRecord(
                StaffMember(user.id, user.username, user.role, user.reviewer),
                user.password_hash,
                user.active,
                user.locked_until,
            )

    async def do_count_attempt(self, key: str, *, window: timedelta) -> tuple[int, datetime]:
        """Count one attempt under ``key`` in a fixed window that every worker shares;
        returns the attempts in the current window, this one included, and when the
        window began. Opening a window forgets every expired one, so the table holds
        only the keys tried within the last window."""
        for _ in range(2):  # a second go if another worker opened the window at once
            now = utcnow()
            async with self.sessions() as session:
                counted = (
                    await session.execute(
                        update(RateWindow)
                        .where(RateWindow.key == key, RateWindow.window_start > now - window)
                        .values(count=RateWindow.count + 1)
                        .returning(RateWindow.count, RateWindow.window_start)
                    )
                ).first()
                if counted is not None:
                    await session.commit()
                    return int(counted[0]), _aware(counted[1]) or now
                await session.execute(
                    delete(RateWindow).where(
                        or_(RateWindow.key == key, RateWindow.window_start <= now - window)
                    )
                )
                session.add(RateWindow(key=key, window_start=now, count=1))
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    continue
                return 1, now
        return 1, utcnow()  # lost both races: counted a little low, never refused wrongly

    async def do_record_login_failure(
        self, staff_id: int, *, lock_after: int, lock_for: timedelta
    ) -> bool:
        """Count a failed login; lock the account at ``lock_after`` failures in a row.
        Returns whether the account is now locked (its sessions end too)."""
        async with self.sessions() as session:
            user = await session.get(StaffUser, staff_id)
            if user is None:
                return False
            user.failed_logins += 1
            locked = user.failed_logins >= lock_after
            if locked:
                user.locked_until = utcnow() + lock_for
                user.failed_logins = 0
                await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))
            await session.commit()
            return locked

    async def do_record_login_success(self, staff_id: int) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(StaffUser)
                .where(StaffUser.id == staff_id)
                .values(failed_logins=0, locked_until=None)
            )
            await session.commit()

    async def do_create_session(self, staff_id: int, token_hash: str, expires_at: datetime) -> None:
        async with self.sessions() as session:
            session.add(
                StaffSession(staff_id=staff_id, token_hash=token_hash, expires_at=expires_at)
            )
            await session.commit()

    async def get_session_member(
        self, token_hash: str, *, idle_timeout: timedelta
    ) -> StaffMember | None:
        """The member of a live session (not expired, not idle too long, account active
        and not locked); touching it keeps it alive."""
        now = utcnow()
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(StaffSession, StaffUser)
                    .join(StaffUser, StaffUser.id == StaffSession.staff_id)
                    .where(StaffSession.token_hash == token_hash)
                )
            ).first()
            if row is None:
                return None
            record, user = row
            dead = (
                record.expires_at <= now
                or record.last_seen_at + idle_timeout <= now
                or not user.active
                or (user.locked_until is not None and user.locked_until > now)
            )
            if dead:
                await session.delete(record)
                await session.commit()
                return None
            record.last_seen_at = now
            await session.commit()
            return StaffMember(user.id, user.username, user.role, user.reviewer)

    async def do_go_off_duty(self, staff_id: int) -> None:
        """Logging out ends "available" too: nobody is promised to a closed console."""
        async with self.sessions() as session:
            await session.execute(
                update(StaffUser).where(StaffUser.id == staff_id).values(available=False)
            )
            await session.commit()

    async def do_delete_session(self, token_hash: str) -> None:
        async with self.sessions() as session:
            await session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash))
            await session.commit()
