"""Stored conversations for the growth benchmark, bulk-inserted with SQLAlchemy Core.

Rows look like the ones real turns leave behind: a contact with a pseudonym and its
encrypted platform id, a conversation (most of them closed) with encrypted slots, two
exchanges of an inbound and an answered outbound message (texts encrypted with the
instance's vault), a ``user_intent`` event per inbound message and a sent outbox row
per reply. Nothing goes through the HTTP API: this is about the size of the tables.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.crypto import Vault, pseudonymise
from bot.storage.db import create_engine
from bot.storage.models import Contact, Conversation, ConversationEvent, Message, OutboxItem

CHANNELS = ("telegram", "facebook", "zalo", "webchat")
EXCHANGES = 2  # inbound + outbound pairs per conversation
SPREAD = timedelta(days=30)  # stored conversations started within the last month
BATCH = 1000  # conversations per transaction
TABLES: tuple[Table, ...] = (
    Contact.__table__,  # type: ignore[assignment]
    Conversation.__table__,  # type: ignore[assignment]
    Message.__table__,  # type: ignore[assignment]
    ConversationEvent.__table__,  # type: ignore[assignment]
    OutboxItem.__table__,  # type: ignore[assignment]
)


@dataclass(frozen=True)
class SeedTexts:
    """What seeded people asked and what the bot answered (public wording)."""

    questions: Sequence[str]
    answers: Sequence[str]
    intents: Sequence[str]


@dataclass
class _Rows:
    contacts: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    outbox: list[dict[str, Any]]

    def by_table(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        return list(
            zip(
                TABLES,
                (self.contacts, self.conversations, self.messages, self.events, self.outbox),
                strict=True,
            )
        )


class ConversationSeeder:
    """Adds conversations to one database, continuing the ids already there."""

    def __init__(
        self, database_url: str, vault: Vault, pseudonym_secret: str, texts: SeedTexts
    ) -> None:
        self.database_url = database_url
        self.vault = vault
        self.secret = pseudonym_secret
        self.texts = texts
        self.rng = random.Random(7)  # noqa: S311 (repeatable test data, not secrets)
        self.now = datetime.now(UTC)
        self.seeded = 0  # seed numbers continue across calls: pseudonyms stay unique

    async def do_seed(self, count: int) -> float:
        """Insert ``count`` more conversations; returns the seconds it took."""
        started = time.perf_counter()
        engine = create_engine(self.database_url)
        try:
            async with engine.begin() as connection:
                next_ids = await _next_ids(connection)
            first = self.seeded
            for batch_start in range(0, count, BATCH):
                size = min(BATCH, count - batch_start)
                rows = self._rows(first + batch_start, size, next_ids)
                async with engine.begin() as connection:
                    for table, values in rows.by_table():
                        await connection.execute(table.insert(), values)
                self.seeded += size
            if engine.dialect.name == "postgresql":
                async with engine.begin() as connection:
                    await _follow_sequences(connection)
                    await connection.execute(text("ANALYZE"))
        finally:
            await engine.dispose()
        return time.perf_counter() - started

    def _rows(self, first: int, size: int, next_ids: dict[str, int]) -> _Rows:
        rows = _Rows([], [], [], [], [])
        for number in range(first, first + size):
            self._add_conversation(rows, number, next_ids)
        return rows

    def _take(self, next_ids: dict[str, int], table: str) -> int:
        value = next_ids[table]
        next_ids[table] = value + 1
        return value

    def _add_conversation(self, rows: _Rows, number: int, next_ids: dict[str, int]) -> None:
        channel = CHANNELS[number % len(CHANNELS)]
        started = self.now - SPREAD * self.rng.random()
        contact_id = self._take(next_ids, "contacts")
        conversation_id = self._take(next_ids, "conversations")
        closed = self.rng.random() < 0.75
        rows.contacts.append(
            {
                "id": contact_id,
                "pseudonym": pseudonymise(self.secret, channel, f"seed-{number}"),
                "channel": channel,
                "platform_user_id_enc": self.vault.encrypt(str(6_000_000_000 + number)),
                "created_at": started,
                "last_seen_at": started + timedelta(minutes=EXCHANGES * 2),
            }
        )
        rows.conversations.append(
            {
                "id": conversation_id,
                "contact_id": contact_id,
                "state": "closed" if closed else "bot",
                "context_enc": self.vault.encrypt_json({"slots": {"fallback_count": 0}}),
                "created_at": started,
                "updated_at": started + timedelta(minutes=EXCHANGES * 2),
                "closed_at": started + timedelta(hours=1) if closed else None,
            }
        )
        for exchange in range(EXCHANGES):
            self._add_exchange(
                rows,
                number,
                exchange,
                channel,
                contact_id,
                conversation_id,
                started + timedelta(minutes=2 * exchange),
                next_ids,
            )

    def _add_exchange(
        self,
        rows: _Rows,
        number: int,
        exchange: int,
        channel: str,
        contact_id: int,
        conversation_id: int,
        at: datetime,
        next_ids: dict[str, int],
    ) -> None:
        inbound_id = self._take(next_ids, "messages")
        outbound_id = self._take(next_ids, "messages")
        answered_at = at + timedelta(milliseconds=40)
        pick = self.rng.randrange(len(self.texts.questions))
        intent = self.texts.intents[pick]
        message_key = (
            None
            if channel == "webchat"
            else pseudonymise(self.secret, f"{channel}#msg", f"seed-{number}-{exchange}")
        )
        common = {"conversation_id": conversation_id, "channel": channel, "staff_id": None}
        rows.messages += [
            {
                **common,
                "id": inbound_id,
                "direction": "in",
                "author": "user",
                "text_enc": self.vault.encrypt(self.texts.questions[pick]),
                "buttons": None,
                "platform_message_id": message_key,
                "intent": intent,
                "reply_to_id": None,
                "created_at": at,
                "processed_at": answered_at,
            },
            {
                **common,
                "id": outbound_id,
                "direction": "out",
                "author": "bot",
                "text_enc": self.vault.encrypt(self.rng.choice(self.texts.answers)),
                "buttons": [{"title": "Gặp tư vấn viên", "payload": "/request_counsellor"}],
                "platform_message_id": None,
                "intent": None,
                "reply_to_id": inbound_id,
                "created_at": answered_at,
                "processed_at": None,
            },
        ]
        rows.events.append(
            {
                "id": self._take(next_ids, "conversation_events"),
                "conversation_id": conversation_id,
                "type": "user_intent",
                "data": {"intent": intent, "confidence": 0.9, "entities": [], "cues": []},
                "created_at": answered_at,
            }
        )
        rows.outbox.append(
            {
                "id": self._take(next_ids, "outbox"),
                "message_id": outbound_id,
                "contact_id": contact_id,
                "channel": channel,
                "status": "sent",
                "attempts": 1,
                "next_attempt_at": answered_at,
                "created_at": answered_at,
                "sent_at": answered_at + timedelta(milliseconds=200),
            }
        )


async def _next_ids(connection: AsyncConnection) -> dict[str, int]:
    ids = {}
    for table in TABLES:
        highest = await connection.scalar(select(func.max(table.c.id)))
        ids[table.name] = int(highest or 0) + 1
    return ids


async def _follow_sequences(connection: AsyncConnection) -> None:
    """PostgreSQL: the id sequences continue after the explicitly numbered rows."""
    for table in TABLES:
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"
            )
        )
