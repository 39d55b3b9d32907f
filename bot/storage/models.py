"""The database tables, as SQLAlchemy 2 declarative models.

Columns ending in ``_enc`` hold Fernet tokens (see ``crypto.Vault``); nothing personal
is stored in clear. The schema itself is created by Alembic (``migrations/``), never by
``create_all`` in production code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns timezone-aware datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        date: Date,
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[dict[str, str]]: JSON,
    }


class Contact(Base):
    """A person on one channel, known only by a pseudonymous id."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    platform_user_id_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # set when the person asked to erase their data: the contact goes once the
    # confirmation has been delivered
    erase_requested_at: Mapped[datetime | None] = mapped_column(index=True)

    conversations: Mapped[list[Conversation]] = relationship(back_populates="contact")


class Conversation(Base):
    """One conversation of a contact. Handoff columns: ``queued_at``/``priority`` while
    it waits for a counsellor, ``consent`` (``full``/``from_now``) and
    ``handoff_message_id`` (the history a counsellor may read starts after it when the
    person shared nothing before), the call-back number (encrypted; gone at close)."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_contact_state", "contact_id", "state"),
        Index("ix_conversations_queue", "state", "queued_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="bot")
    risk_level: Mapped[str | None] = mapped_column(String(16))
    context_enc: Mapped[str | None] = mapped_column(Text)
    assigned_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    priority: Mapped[str | None] = mapped_column(String(16))
    consent: Mapped[str | None] = mapped_column(String(16))
    handoff_message_id: Mapped[int | None] = mapped_column(Integer)
    queued_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    waiting_updates: Mapped[int] = mapped_column(Integer, default=0)
    last_update_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(32))
    callback_phone_enc: Mapped[str | None] = mapped_column(Text)
    callback_when_enc: Mapped[str | None] = mapped_column(Text)

    contact: Mapped[Contact] = relationship(back_populates="conversations")


class Message(Base):
    """One message either way. Inbound rows with ``processed_at`` NULL await a turn."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "platform_message_id", name="uq_messages_channel_platform_id"),
        Index("ix_messages_unprocessed", "direction", "processed_at"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index("ix_messages_reply_to_id", "reply_to_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(4))
    author: Mapped[str] = mapped_column(String(16))
    text_enc: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    platform_message_id: Mapped[str | None] = mapped_column(String(255))
    intent: Mapped[str | None] = mapped_column(String(128))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()


class ConversationEvent(Base):
    """Something that happened in a conversation (intent, state change, ...), as JSON."""

    __tablename__ = "conversation_events"
    __table_args__ = (Index("ix_conversation_events_type_created", "type", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxItem(Base):
    """A reply waiting to be delivered (or delivered) through its channel."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_contact_channel", "contact_id", "channel", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()

    message: Mapped[Message] = relationship()


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # a counsellor takes conversations when they said so, or while their console is
    # open (its event socket refreshes ``console_seen_at``)
    available: Mapped[bool] = mapped_column(default=False)
    # may publish content (FAQ, services) that someone else drafted; admins always may
    reviewer: Mapped[bool] = mapped_column(default=False)
    console_seen_at: Mapped[datetime | None] = mapped_column()


class AuditEntry(Base):
    """Append-only record of staff actions. Database triggers refuse UPDATE/DELETE."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AnonymousCount(Base):
    """Counts that outlive erased data: per day, channel and metric, nothing personal."""

    __tablename__ = "anonymous_counts"

    day: Mapped[date] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class StaffSession(Base):
    """A staff login. Only a hash of the session token is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class RateWindow(Base):
    """Attempts under one key in a fixed time window, shared by every worker (login
    attempts per address). The key is a keyed hash: no address is stored."""

    __tablename__ = "rate_windows"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class CaseNote(Base):
    """A counsellor's private note on a conversation (encrypted; staff only)."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    text_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedReply(Base):
    """A ready-made counsellor reply that admins keep (public wording, in clear)."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelCredential(Base):
    """A platform token pair that rotates (Zalo OA): encrypted, with its expiry and a
    lease so that only one worker refreshes it at a time."""

    __tablename__ = "channel_credentials"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token_enc: Mapped[str] = mapped_column(Text)
    refresh_token_enc: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column()
    # SHA-256 of the configured refresh token this pair descends from: new credentials
    # in the configuration replace the stored pair
    seeded_from: Mapped[str] = mapped_column(String(64))
    refreshed_at: Mapped[datetime | None] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column()


class SystemAlert(Base):
    """Something admins must act on (a token refresh failed ...). No personal data."""

    __tablename__ = "system_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    channel: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column()


class ContentVersion(Base):
    """One version of a piece of editable content: an FAQ topic (``kind='faq'``, its
    answer and training examples) or a directory service (``kind='service'``).

    ``state`` is ``draft`` (at most one per topic, edited in place), ``published`` (the
    one in force), ``superseded`` (published before; kept for comparison and rollback)
    or ``discarded``. A retired topic is a published version whose data says
    ``retired: true``. Public wording only: nothing personal is ever stored here."""

    __tablename__ = "content_versions"
    __table_args__ = (
        UniqueConstraint("kind", "key", "number"),
        Index("ix_content_versions_kind_state", "kind", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(100))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column()
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    published_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(String(200))


class ContentRevision(Base):
    """One row: a counter raised by every change to what the bot says or learns from
    (publish, rollback, retire, a missed message assigned). Workers poll it to reload."""

    __tablename__ = "content_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AddedExample(Base):
    """A training example added from the missed-messages queue (already masked)."""

    __tablename__ = "nlu_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent: Mapped[str] = mapped_column(String(128), index=True)
    text: Mapped[str] = mapped_column(Text)
    added_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRun(Base):
    """A background retrain of the NLU model and its verdict (no personal data)."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # running, installed, refused, failed
    data_hash: Mapped[str] = mapped_column(String(32), index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str | None] = mapped_column(String(500))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class MissedMessage(Base):
    """A message the bot did not understand, kept for editors to teach it: masked
    (numbers, phone numbers, names) before it is stored, then encrypted. It names the
    contact only so that erasing the person erases it; the API never shows which
    conversation it came from."""

    __tablename__ = "missed_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(24))  # fallback, low_confidence, correction
    masked_text_enc: Mapped[str] = mapped_column(Text)
    guessed_intent: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    assigned_intent: Mapped[str | None] = mapped_column(String(128))
    handled_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    handled_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
