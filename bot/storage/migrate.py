"""Runs Alembic migrations from code (no alembic.ini needed) and reports the revision."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration. A test holds it equal to Alembic's head, so a starting server
# checks its database without loading Alembic and every migration script (~0.3 s).
SCHEMA_HEAD = "0011"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Blocking: call from a thread inside a loop."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


async def upgrade_database_async(database_url: str) -> None:
    await asyncio.to_thread(upgrade_database, database_url)


def head_revision() -> str | None:
    """The head as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision; None for a database Alembic never touched."""
    async with engine.connect() as connection:
        try:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:  # no alembic_version table: an empty database
            return None
        versions = [row[0] for row in found]
    if len(versions) > 1:
        raise RuntimeError(f"the database has several schema heads: {sorted(versions)}")
    return versions[0] if versions else None
