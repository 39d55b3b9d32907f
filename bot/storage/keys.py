"""Encryption keys: a new key, and re-encrypting everything stored under the newest one.

Rotating keys: put a new key (``donghanh keys new``) first in
``DONGHANH_ENCRYPTION_KEYS`` (or ``encryption_keys`` in ``instance/secrets.yml``),
restart the service (new values are then written under it, old ones still read), run
``donghanh keys rotate``, and only then remove the old key.

``rotate_all`` finds every encrypted column from the SQLAlchemy metadata (every column
whose name ends in ``_enc``: the convention of ``models.py``), so a new one is never
forgotten, and walks each table in primary-key order, ``batch_size`` rows a
transaction. A value the first key already decrypts is left alone, so a second run
changes nothing and an interrupted run resumes where it stopped. Each new value is
written only if the stored one has not changed meanwhile (compare-and-set), so the
service may keep running. A value no configured key decrypts is counted and left as it
is: the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Column, MetaData, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import ConfigError
from bot.storage.crypto import Vault
from bot.storage.models import Base

BATCH_SIZE = 500
ENCRYPTED_SUFFIX = "_enc"


def new_key() -> str:
    """A new Fernet key (url-safe base64), not stored anywhere."""
    return Fernet.generate_key().decode("ascii")


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column: Column[Any]
    primary_key: Column[Any]

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def encrypted_columns(metadata: MetaData = Base.metadata) -> list[EncryptedColumn]:
    """Every encrypted column of the schema, in table then column order."""
    found = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if column.name.endswith(ENCRYPTED_SUFFIX):
                found.append(EncryptedColumn(table, column, _single_primary_key(table)))
    return found


def _single_primary_key(table: Table) -> Column[Any]:
    keys = list(table.primary_key.columns)
    if len(keys) != 1:
        raise ConfigError(f"{table.name}: rotation walks tables with a one-column primary key")
    return keys[0]


@dataclass
class ColumnCounts:
    rotated: int = 0  # re-encrypted under the first key now
    current: int = 0  # already under the first key
    undecryptable: int = 0  # no configured key decrypts it: left as it is

    def add(self, other: ColumnCounts) -> None:
        self.rotated += other.rotated
        self.current += other.current
        self.undecryptable += other.undecryptable


@dataclass
class RotationReport:
    columns: dict[str, ColumnCounts]

    @property
    def rotated(self) -> int:
        return sum(c.rotated for c in self.columns.values())

    @property
    def undecryptable(self) -> dict[str, int]:
        return {name: c.undecryptable for name, c in self.columns.items() if c.undecryptable}


class KeyRing:
    """The configured keys: the first encrypts, all decrypt."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.vault = Vault(keys)  # validates every key
        self.primary = Fernet(keys[0].encode("ascii"))

    def is_current(self, token: str) -> bool:
        try:
            self.primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotated(self, token: str) -> str | None:
        """``token`` under the first key; None when no key decrypts it."""
        try:
            return self.vault.rotate(token)
        except (InvalidToken, UnicodeEncodeError):
            return None


OnBatch = Callable[[str, ColumnCounts], None]


class KeyRotator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: Sequence[str],
        *,
        batch_size: int = BATCH_SIZE,
        metadata: MetaData = Base.metadata,
    ) -> None:
        self.sessions = sessions
        self.ring = KeyRing(keys)
        self.batch_size = batch_size
        self.columns = encrypted_columns(metadata)

    async def do_rotate_all(self, on_batch: OnBatch | None = None) -> RotationReport:
        """Re-encrypt every encrypted value under the first key; ``on_batch`` hears of
        each committed batch (column name, its counts)."""
        report = RotationReport({c.name: ColumnCounts() for c in self.columns})
        for target in self.columns:
            after: Any = None
            while True:
                counts, after = await self.do_rotate_batch(target, after)
                report.columns[target.name].add(counts)
                if on_batch is not None:
                    on_batch(target.name, counts)
                if after is None:
                    break
        return report

    async def do_rotate_batch(
        self, target: EncryptedColumn, after: Any
    ) -> tuple[ColumnCounts, Any]:
        """One batch of rows after primary key ``after`` (None: from the start), in one
        transaction; returns its counts and the last key seen (None: column done)."""
        counts = ColumnCounts()
        key, value = target.primary_key, target.column
        query = (
            select(key, value)
            .where(value.is_not(None), value != "")
            .order_by(key)
            .limit(self.batch_size)
        )
        if after is not None:
            query = query.where(key > after)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            for row_key, token in rows:
                await self._rotate_value(session, target, row_key, token, counts)
            await session.commit()
        last = rows[-1][0] if len(rows) == self.batch_size else None
        return counts, last

    async def _rotate_value(
        self,
        session: AsyncSession,
        target: EncryptedColumn,
        row_key: Any,
        token: str,
        counts: ColumnCounts,
    ) -> None:
        if self.ring.is_current(token):
            counts.current += 1
            return
        fresh = self.ring.rotated(token)
        if fresh is None:
            counts.undecryptable += 1
            return
        result: Any = await session.execute(
            update(target.table)
            .where(target.primary_key == row_key, target.column == token)
            .values({target.column.name: fresh, **_kept_as_they_are(target.table)})
        )
        if result.rowcount == 1:
            counts.rotated += 1
        # else the service changed the value meanwhile: written under the first key


def _kept_as_they_are(table: Table) -> dict[str, Any]:
    """Columns an UPDATE would otherwise stamp (``updated_at``): re-encrypting is not
    activity, and retention reads them."""
    return {column.name: column for column in table.columns if column.onupdate is not None}


def describe(report: RotationReport) -> Iterator[str]:
    """One line per column, in Vietnamese, for the command line."""
    for name, counts in report.columns.items():
        line = f"  {name}: {counts.rotated} mã hoá lại, {counts.current} đã dùng khoá mới"
        if counts.undecryptable:
            line += f", {counts.undecryptable} KHÔNG giải mã được (giữ nguyên)"
        yield line
