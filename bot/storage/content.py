"""Editable content in the database: versions of FAQ topics and directory services,
the revision counter workers poll, examples added from the missed-messages queue, the
queue itself, and the record of background retraining.

Writes follow one rule: a topic has at most one draft, edited in place; publishing turns
it into the version in force and the one before into ``superseded``; every published
version is kept. Who may publish what is decided by the caller (``bot.content.editing``);
this module only stores. Missed messages are stored already masked, and encrypted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.errors import Conflict
from bot.storage.crypto import Vault
from bot.storage.models import (
    AddedExample,
    ContentRevision,
    ContentVersion,
    MissedMessage,
    StaffUser,
    TrainingRun,
    utcnow,
)

REVISION_ROW = 1
# a run that reported nothing for this long died with its process
TRAINING_STALE_AFTER = timedelta(minutes=15)


class VersionState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"
    DISCARDED = "discarded"


class MissedStatus(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    NEW_TOPIC = "new_topic"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class Version:
    id: int
    kind: str
    key: str
    number: int
    state: str
    data: dict[str, Any]
    edited_by: str | None
    edited_by_id: int | None
    updated_at: datetime
    published_by: str | None
    published_at: datetime | None
    note: str | None

    @property
    def retired(self) -> bool:
        return bool(self.data.get("retired"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.number,
            "state": self.state,
            "data": self.data,
            "edited_by": self.edited_by,
            "updated_at": self.updated_at.isoformat(),
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class Topic:
    """A topic as editors see it: the version in force and the open draft, if any."""

    key: str
    published: Version | None
    draft: Version | None


@dataclass(frozen=True)
class Missed:
    id: int
    channel: str
    reason: str
    masked_text: str
    guessed_intent: str | None
    confidence: float
    status: str
    assigned_intent: str | None
    created_at: datetime


class ContentStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault) -> None:
        self.sessions = sessions
        self.vault = vault

    # -- reading versions ----------------------------------------------------------------

    def _versions_query(self) -> Any:
        editor, publisher = aliased(StaffUser), aliased(StaffUser)
        return (
            select(ContentVersion, editor.username, publisher.username)
            .outerjoin(editor, editor.id == ContentVersion.edited_by)
            .outerjoin(publisher, publisher.id == ContentVersion.published_by)
        )

    @staticmethod
    def _version(row: Any) -> Version:
        record, editor, publisher = row
        return Version(
            id=record.id,
            kind=record.kind,
            key=record.key,
            number=record.number,
            state=record.state,
            data=dict(record.data),
            edited_by=editor,
            edited_by_id=record.edited_by,
            updated_at=record.updated_at,
            published_by=publisher,
            published_at=record.published_at,
            note=record.note,
        )

    async def get_published(self, kind: str) -> list[Version]:
        """The versions in force (retired topics included), by key."""
        async with self.sessions() as session:
            rows = await session.execute(
                self._versions_query()
                .where(
                    ContentVersion.kind == kind,
                    ContentVersion.state == VersionState.PUBLISHED.value,
                )
                .order_by(ContentVersion.key)
            )
            return [self._version(row) for row in rows.all()]

    async def get_topics(self, kind: str) -> list[Topic]:
        async with self.sessions() as session:
            rows = await session.execute(
                self._versions_query()
                .where(
                    ContentVersion.kind == kind,
                    ContentVersion.state.in_(
                        [VersionState.PUBLISHED.value, VersionState.DRAFT.value]
                    ),
                )
                .order_by(ContentVersion.key, ContentVersion.number)
            )
            found: dict[str, dict[str, Version]] = {}
            for row in rows.all():
                version = self._version(row)
                found.setdefault(version.key, {})[version.state] = version
        return [
            Topic(key, states.get(VersionState.PUBLISHED.value), states.get(VersionState.DRAFT))
            for key, states in found.items()
        ]

    async def get_topic(self, kind: str, key: str) -> Topic | None:
        """The topic's version in force and its draft; None if it never existed."""
        async with self.sessions() as session:
            rows = await session.execute(
                self._versions_query().where(
                    ContentVersion.kind == kind,
                    ContentVersion.key == key,
                    ContentVersion.state.in_(
                        [VersionState.PUBLISHED.value, VersionState.DRAFT.value]
                    ),
                )
            )
            states = {v.state: v for v in (self._version(row) for row in rows.all())}
        if not states:
            return None
        return Topic(key, states.get(VersionState.PUBLISHED.value), states.get(VersionState.DRAFT))

    async def count_versions(self, kind: str, key: str | None = None) -> int:
        async with self.sessions() as session:
            query = select(func.count(ContentVersion.id)).where(ContentVersion.kind == kind)
            if key is not None:
                query = query.where(ContentVersion.key == key)
            return int(await session.scalar(query) or 0)

    async def get_history(self, kind: str, key: str) -> list[Version]:
        """Every published version of a topic, newest first, and the open draft."""
        async with self.sessions() as session:
            rows = await session.execute(
                self._versions_query()
                .where(
                    ContentVersion.kind == kind,
                    ContentVersion.key == key,
                    ContentVersion.state != VersionState.DISCARDED.value,
                )
                .order_by(ContentVersion.number.desc())
            )
            return [self._version(row) for row in rows.all()]

    async def get_version(self, kind: str, key: str, number: int) -> Version | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    self._versions_query().where(
                        ContentVersion.kind == kind,
                        ContentVersion.key == key,
                        ContentVersion.number == number,
                    )
                )
            ).first()
            return None if row is None else self._version(row)

    # -- writing versions ----------------------------------------------------------------

    async def do_save_draft(
        self, kind: str, key: str, data: dict[str, Any], staff_id: int | None
    ) -> Version:
        """Create the topic's draft, or replace the open draft's data."""
        now = utcnow()
        async with self.sessions() as session:
            draft = await self._draft(session, kind, key)
            if draft is None:
                draft = ContentVersion(
                    kind=kind,
                    key=key,
                    number=await self._next_number(session, kind, key),
                    state=VersionState.DRAFT.value,
                    created_at=now,
                )
                session.add(draft)
            draft.data = data
            draft.edited_by = staff_id
            draft.updated_at = now
            await self._commit_or_conflict(session)
        found = await self.get_version(kind, key, draft.number)
        assert found is not None
        return found

    async def do_publish_draft(
        self, kind: str, key: str, staff_id: int, expected_updated_at: datetime | None
    ) -> Version:
        """The draft becomes the version in force. ``expected_updated_at``: the draft
        the reviewer read; if it changed since, nothing is published (Conflict)."""
        now = utcnow()
        async with self.sessions() as session:
            draft = await self._draft(session, kind, key)
            if draft is None:
                raise Conflict("không có bản nháp nào để xuất bản")
            if expected_updated_at is not None and draft.updated_at != expected_updated_at:
                raise Conflict("bản nháp vừa được sửa: hãy xem lại trước khi xuất bản")
            await self._supersede(session, kind, key)
            draft.state = VersionState.PUBLISHED.value
            draft.published_by = staff_id
            draft.published_at = now
            await self._bump_revision(session)
            await self._commit_or_conflict(session)
            number = draft.number
        found = await self.get_version(kind, key, number)
        assert found is not None
        return found

    async def do_publish_data(
        self,
        kind: str,
        key: str,
        data: dict[str, Any],
        staff_id: int | None,
        note: str,
        *,
        keep_draft: bool = True,
    ) -> Version:
        """Publish ``data`` directly as a new version (seed, import, rollback, retire)."""
        now = utcnow()
        async with self.sessions() as session:
            await self._supersede(session, kind, key)
            if not keep_draft:
                await self._discard_draft(session, kind, key)
            version = ContentVersion(
                kind=kind,
                key=key,
                number=await self._next_number(session, kind, key),
                state=VersionState.PUBLISHED.value,
                data=data,
                edited_by=staff_id,
                created_at=now,
                updated_at=now,
                published_by=staff_id,
                published_at=now,
                note=note,
            )
            session.add(version)
            await self._bump_revision(session)
            await self._commit_or_conflict(session)
            number = version.number
        found = await self.get_version(kind, key, number)
        assert found is not None
        return found

    async def do_seed(self, kind: str, items: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Publish the starting content once: only when no version of ``kind`` exists.
        Returns how many were written (0 when another worker or run seeded first)."""
        now = utcnow()
        async with self.sessions() as session:
            if await session.scalar(
                select(func.count(ContentVersion.id)).where(ContentVersion.kind == kind)
            ):
                return 0
            for key, data in items:
                session.add(
                    ContentVersion(
                        kind=kind,
                        key=key,
                        number=1,
                        state=VersionState.PUBLISHED.value,
                        data=data,
                        created_at=now,
                        updated_at=now,
                        published_at=now,
                        note="seed",
                    )
                )
            try:  # the bump flushes the rows: a worker that lost the race fails here
                await self._bump_revision(session)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return 0
        return len(items)

    async def do_discard_draft(self, kind: str, key: str) -> bool:
        async with self.sessions() as session:
            found = await self._discard_draft(session, kind, key)
            await session.commit()
            return found

    async def _discard_draft(self, session: AsyncSession, kind: str, key: str) -> bool:
        result = await session.execute(
            update(ContentVersion)
            .where(
                ContentVersion.kind == kind,
                ContentVersion.key == key,
                ContentVersion.state == VersionState.DRAFT.value,
            )
            .values(state=VersionState.DISCARDED.value)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def _draft(session: AsyncSession, kind: str, key: str) -> ContentVersion | None:
        return (
            await session.scalars(
                select(ContentVersion).where(
                    ContentVersion.kind == kind,
                    ContentVersion.key == key,
                    ContentVersion.state == VersionState.DRAFT.value,
                )
            )
        ).first()

    @staticmethod
    async def _next_number(session: AsyncSession, kind: str, key: str) -> int:
        highest = await session.scalar(
            select(func.max(ContentVersion.number)).where(
                ContentVersion.kind == kind, ContentVersion.key == key
            )
        )
        return int(highest or 0) + 1

    @staticmethod
    async def _supersede(session: AsyncSession, kind: str, key: str) -> None:
        await session.execute(
            update(ContentVersion)
            .where(
                ContentVersion.kind == kind,
                ContentVersion.key == key,
                ContentVersion.state == VersionState.PUBLISHED.value,
            )
            .values(state=VersionState.SUPERSEDED.value)
        )

    @staticmethod
    async def _commit_or_conflict(session: AsyncSession) -> None:
        try:
            await session.commit()
        except IntegrityError as exc:  # two writers numbered a version at once
            await session.rollback()
            raise Conflict("nội dung vừa được người khác thay đổi: hãy tải lại") from exc

    # -- the revision workers poll ---------------------------------------------------------

    @staticmethod
    async def _bump_revision(session: AsyncSession) -> None:
        bumped = await session.execute(
            update(ContentRevision)
            .where(ContentRevision.id == REVISION_ROW)
            .values(revision=ContentRevision.revision + 1, changed_at=utcnow())
        )
        if not bumped.rowcount:  # type: ignore[attr-defined]
            session.add(ContentRevision(id=REVISION_ROW, revision=1, changed_at=utcnow()))

    async def get_revision(self) -> int:
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(ContentRevision.revision).where(ContentRevision.id == REVISION_ROW)
                )
                or 0
            )

    # -- examples added from the missed queue ----------------------------------------------

    async def get_added_examples(self) -> dict[str, list[str]]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(AddedExample.intent, AddedExample.text).order_by(AddedExample.id)
            )
            examples: dict[str, list[str]] = {}
            for intent, text in rows.all():
                examples.setdefault(intent, []).append(text)
            return examples

    # -- what the bot missed -------------------------------------------------------------------

    async def get_missed(
        self, status: str = MissedStatus.OPEN.value, limit: int = 50, offset: int = 0
    ) -> tuple[list[Missed], int]:
        async with self.sessions() as session:
            total = await session.scalar(
                select(func.count(MissedMessage.id)).where(MissedMessage.status == status)
            )
            rows = await session.scalars(
                select(MissedMessage)
                .where(MissedMessage.status == status)
                .order_by(MissedMessage.created_at.desc(), MissedMessage.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [self._missed(row) for row in rows.all()], int(total or 0)

    async def get_missed_item(self, missed_id: int) -> Missed | None:
        async with self.sessions() as session:
            row = await session.get(MissedMessage, missed_id)
            return None if row is None else self._missed(row)

    def _missed(self, row: MissedMessage) -> Missed:
        return Missed(
            id=row.id,
            channel=row.channel,
            reason=row.reason,
            masked_text=self.vault.decrypt(row.masked_text_enc),
            guessed_intent=row.guessed_intent,
            confidence=row.confidence,
            status=row.status,
            assigned_intent=row.assigned_intent,
            created_at=row.created_at,
        )

    async def do_assign_missed(
        self, missed_id: int, intent: str, example: str, staff_id: int
    ) -> bool:
        """The message becomes a training example of ``intent``; False when it was
        already handled (by someone else a moment ago)."""
        async with self.sessions() as session:
            handled = await self._handle_missed(
                session, missed_id, MissedStatus.ASSIGNED, staff_id, intent
            )
            if not handled:
                return False
            session.add(AddedExample(intent=intent, text=example, added_by=staff_id))
            await self._bump_revision(session)
            await session.commit()
            return True

    async def do_close_missed(self, missed_id: int, status: MissedStatus, staff_id: int) -> bool:
        async with self.sessions() as session:
            handled = await self._handle_missed(session, missed_id, status, staff_id, None)
            await session.commit()
            return handled

    @staticmethod
    async def _handle_missed(
        session: AsyncSession,
        missed_id: int,
        status: MissedStatus,
        staff_id: int,
        intent: str | None,
    ) -> bool:
        result = await session.execute(
            update(MissedMessage)
            .where(MissedMessage.id == missed_id, MissedMessage.status == MissedStatus.OPEN.value)
            .values(
                status=status.value,
                assigned_intent=intent,
                handled_by=staff_id,
                handled_at=utcnow(),
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def do_purge_missed(self, older_than: datetime) -> int:
        async with self.sessions() as session:
            result = await session.execute(
                delete(MissedMessage).where(MissedMessage.created_at < older_than)
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    # -- retraining ------------------------------------------------------------------------

    async def do_start_training(self, data_hash: str, staff_id: int | None) -> int | None:
        """Record a run for ``data_hash``; None if a live run for it already exists."""
        now = utcnow()
        async with self.sessions() as session:
            live = await session.scalar(
                select(TrainingRun.id).where(
                    TrainingRun.data_hash == data_hash,
                    TrainingRun.state == "running",
                    TrainingRun.started_at > now - TRAINING_STALE_AFTER,
                )
            )
            if live is not None:
                return None
            run = TrainingRun(
                state="running",
                data_hash=data_hash,
                progress=0,
                stage="queued",
                result={},
                requested_by=staff_id,
                started_at=now,
            )
            session.add(run)
            await session.commit()
            return run.id

    async def do_report_training(self, run_id: int, progress: int, stage: str) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(progress=progress, stage=stage)
            )
            await session.commit()

    async def do_finish_training(
        self, run_id: int, state: str, reason: str | None, result: dict[str, Any]
    ) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(
                    state=state,
                    reason=reason[:500] if reason else None,
                    result=result,
                    progress=100,
                    stage="done",
                    finished_at=utcnow(),
                )
            )
            await session.commit()

    async def get_training_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(TrainingRun, StaffUser.username)
                .outerjoin(StaffUser, StaffUser.id == TrainingRun.requested_by)
                .order_by(TrainingRun.id.desc())
                .limit(limit)
            )
            return [_run_dict(run, username) for run, username in rows.all()]


def _run_dict(run: TrainingRun, username: str | None) -> dict[str, Any]:
    return {
        "id": run.id,
        "state": run.state,
        "progress": run.progress,
        "stage": run.stage,
        "data_hash": run.data_hash,
        "reason": run.reason,
        "result": run.result,
        "requested_by": username,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
