"""Attempt counts shared by every worker (``StaffStore.do_count_attempt``), on both
databases: what the per-address login limit stands on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.storage.db import create_engine, session_factory
from bot.storage.models import RateWindow, utcnow
from bot.storage.repository import StaffStore

WINDOW = timedelta(minutes=5)


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[StaffStore, StaffStore]]:
    """Two stores on two engines: two workers sharing one database."""
    first, second = create_engine(database_url), create_engine(database_url)
    yield StaffStore(session_factory(first)), StaffStore(session_factory(second))
    await first.dispose()
    await second.dispose()


async def _age_window(store: StaffStore, key: str, by: timedelta) -> None:
    """The key's window began ``by`` ago."""
    async with store.sessions() as session:
        await session.execute(
            update(RateWindow).where(RateWindow.key == key).values(window_start=utcnow() - by)
        )
        await session.commit()


async def _keys(store: StaffStore) -> list[str]:
    async with store.sessions() as session:
        return sorted(await session.scalars(select(RateWindow.key)))


async def test_two_workers_count_into_one_window(stores: tuple[StaffStore, StaffStore]) -> None:
    worker_a, worker_b = stores
    counts = [
        (await (worker_a if n % 2 else worker_b).do_count_attempt("k1", window=WINDOW))[0]
        for n in range(6)
    ]
    assert counts == [1, 2, 3, 4, 5, 6]
    assert (await worker_a.do_count_attempt("k2", window=WINDOW))[0] == 1, "keys are apart"


async def test_concurrent_attempts_are_each_counted(stores: tuple[StaffStore, StaffStore]) -> None:
    worker_a, worker_b = stores
    await worker_a.do_count_attempt("k", window=WINDOW)  # the window exists
    results = await asyncio.gather(
        *(w.do_count_attempt("k", window=WINDOW) for w in [worker_a, worker_b] * 5)
    )
    assert sorted(count for count, _ in results) == list(range(2, 12))
    started = {start for _, start in results}
    assert len(started) == 1 and next(iter(started)).tzinfo is not None


async def test_an_expired_window_starts_again_and_old_keys_are_forgotten(
    stores: tuple[StaffStore, StaffStore],
) -> None:
    store, _ = stores
    for key in ("old", "old", "old", "other"):
        await store.do_count_attempt(key, window=WINDOW)
    await _age_window(store, "old", WINDOW + timedelta(seconds=1))
    await _age_window(store, "other", WINDOW + timedelta(seconds=1))
    count, _ = await store.do_count_attempt("old", window=WINDOW)
    assert count == 1
    assert await _keys(store) == ["old"], "expired windows of other keys go too"
    async with store.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RateWindow)) == 1
