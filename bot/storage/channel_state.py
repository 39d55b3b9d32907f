"""What channels keep in the database besides messages: rotating platform credentials
(encrypted, with a refresh lease across workers) and alerts for admins, with a summary
of the deliveries the outbox gave up on. Nothing here holds personal data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import OutboxStatus
from bot.storage.crypto import Vault
from bot.storage.models import ChannelCredential, OutboxItem, SystemAlert, utcnow


@dataclass(frozen=True)
class Credentials:
    access_token: str
    refresh_token: str
    expires_at: datetime | None


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ChannelStateStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault) -> None:
        self.sessions = sessions
        self.vault = vault

    # -- rotating credentials ----------------------------------------------------------

    async def do_seed_credentials(
        self, channel: str, access_token: str, refresh_token: str
    ) -> Credentials:
        """The pair to use: the stored one if it descends from the configured refresh
        token, else the configured pair (new credentials from an admin) stored now."""
        seed = fingerprint(refresh_token)
        async with self.sessions() as session:
            row = await session.get(ChannelCredential, channel)
            if row is not None and row.seeded_from == seed:
                return self._credentials(row)
            if row is None:
                row = ChannelCredential(channel=channel)
                session.add(row)
            row.access_token_enc = self.vault.encrypt(access_token)
            row.refresh_token_enc = self.vault.encrypt(refresh_token)
            row.expires_at = None  # unknown: refreshed at the first chance
            row.seeded_from = seed
            row.lease_until = None
            try:
                await session.commit()
            except IntegrityError:  # another worker seeded it at the same moment
                await session.rollback()
                stored = await session.get(ChannelCredential, channel, populate_existing=True)
                assert stored is not None
                return self._credentials(stored)
            return self._credentials(row)

    async def get_credentials(self, channel: str) -> Credentials | None:
        async with self.sessions() as session:
            row = await session.get(ChannelCredential, channel)
            return None if row is None else self._credentials(row)

    async def do_claim_refresh(self, channel: str, lease: timedelta) -> Credentials | None:
        """Take the right to refresh for ``lease``; None if another worker holds it."""
        now = utcnow()
        async with self.sessions() as session:
            result = await session.execute(
                update(ChannelCredential)
                .where(ChannelCredential.channel == channel)
                .where(
                    or_(
                        ChannelCredential.lease_until.is_(None),
                        ChannelCredential.lease_until < now,
                    )
                )
                .values(lease_until=now + lease)
            )
            await session.commit()
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = await session.get(ChannelCredential, channel, populate_existing=True)
            return None if row is None else self._credentials(row)

    async def do_save_refreshed(
        self, channel: str, access_token: str, refresh_token: str, expires_at: datetime
    ) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(ChannelCredential)
                .where(ChannelCredential.channel == channel)
                .values(
                    access_token_enc=self.vault.encrypt(access_token),
                    refresh_token_enc=self.vault.encrypt(refresh_token),
                    expires_at=expires_at,
                    refreshed_at=utcnow(),
                    lease_until=None,
                )
            )
            await session.commit()

    async def do_release_refresh(self, channel: str) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(ChannelCredential)
                .where(ChannelCredential.channel == channel)
                .values(lease_until=None)
            )
            await session.commit()

    def _credentials(self, row: ChannelCredential) -> Credentials:
        return Credentials(
            access_token=self.vault.decrypt(row.access_token_enc),
            refresh_token=self.vault.decrypt(row.refresh_token_enc),
            expires_at=row.expires_at,
        )

    # -- alerts for admins ---------------------------------------------------------------

    async def do_raise_alert(self, kind: str, channel: str | None, detail: str) -> None:
        """Open an alert, or refresh the detail of the same open one."""
        async with self.sessions() as session:
            open_alert = await session.scalar(
                select(SystemAlert).where(
                    SystemAlert.kind == kind,
                    SystemAlert.channel == channel,
                    SystemAlert.resolved_at.is_(None),
                )
            )
            if open_alert is None:
                session.add(SystemAlert(kind=kind, channel=channel, detail=detail[:300]))
            else:
                open_alert.detail = detail[:300]
            await session.commit()

    async def do_resolve_alerts(self, kind: str, channel: str | None) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(SystemAlert)
                .where(SystemAlert.kind == kind, SystemAlert.channel == channel)
                .where(SystemAlert.resolved_at.is_(None))
                .values(resolved_at=utcnow())
            )
            await session.commit()

    async def get_alerts(self, *, limit: int = 100) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(SystemAlert).order_by(SystemAlert.id.desc()).limit(limit)
            )
            return [
                {
                    "id": alert.id,
                    "kind": alert.kind,
                    "channel": alert.channel,
                    "detail": alert.detail,
                    "created_at": alert.created_at.isoformat(),
                    "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
                }
                for alert in rows
            ]

    async def get_failed_deliveries(self) -> list[dict[str, Any]]:
        """Per channel and reason: how many replies the outbox gave up on, and when last."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(
                    OutboxItem.channel,
                    OutboxItem.last_error,
                    func.count(OutboxItem.id),
                    func.max(OutboxItem.created_at),
                )
                .where(OutboxItem.status == OutboxStatus.FAILED.value)
                .group_by(OutboxItem.channel, OutboxItem.last_error)
                .order_by(OutboxItem.channel)
            )
            return [
                {
                    "channel": channel,
                    "reason": reason,
                    "count": count,
                    "last_at": last.isoformat() if last else None,
                }
                for channel, reason, count, last in rows
            ]
