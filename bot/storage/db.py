"""The async engine and session factory, with SQLite tuned for an embedded service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.errors import ConfigError


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "DONGHANH_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url, pool_size=5, max_overflow=5, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _enable_sqlite_pragmas)
        return engine
    return create_async_engine(
        database_url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers from its own schema.

    ``SELECT 1`` is not enough: SQLite quietly creates an empty database when the
    file has gone, and that must count as down.
    """
    async with engine.connect() as connection:
        await connection.execute(text("SELECT version_num FROM alembic_version"))
