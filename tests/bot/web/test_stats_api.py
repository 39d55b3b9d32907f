"""``/api/v1/stats`` and ``/api/v1/stats.csv`` (bot/web/stats.py) on a tiny app.

The blueprint alone, with a fake staff store standing in for sessions: who may read
the numbers, the defaults and filters, a 400 in Vietnamese for a bad argument, the
charts in the JSON, and the CSV as an attachment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from conftest import sqlite_only
from sanic import Sanic

from bot.domain import StaffMember, StaffRole
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Contact, Conversation, ConversationEvent
from bot.storage.repository import StaffStore
from bot.storage.stats import HIDDEN, SUPPRESSED, StatsStore
from bot.web.auth import SESSION_COOKIE, AuthSettings, token_hash
from bot.web.errors import register_error_handlers
from bot.web.stats import create_blueprint

DAY = datetime(2025, 7, 1, 10, tzinfo=UTC)
TOKENS = {role: f"token-{role.value}" for role in StaffRole}


class FakeStaff:
    """Sessions by token hash, as ``StaffStore.get_session_member`` answers them."""

    def __init__(self) -> None:
        self.members = {
            token_hash(token): StaffMember(n, f"user-{role.value}", role.value)
            for n, (role, token) in enumerate(TOKENS.items(), start=1)
        }

    async def get_session_member(
        self, token_hash: str, *, idle_timeout: timedelta
    ) -> StaffMember | None:
        return self.members.get(token_hash)


async def _seed(url: str) -> None:
    """Nine people on Telegram and two on Zalo on 1 July 2025."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            for n, channel in enumerate(["telegram"] * 9 + ["zalo"] * 2):
                contact = Contact(pseudonym=f"p{n}", channel=channel, platform_user_id_enc="x")
                session.add(contact)
                await session.flush()
                conversation = Conversation(contact_id=contact.id, created_at=DAY)
                session.add(conversation)
                await session.flush()
                data = {"intent": "faq/visa", "confidence": 1.0, "entities": [], "cues": []}
                session.add(
                    ConversationEvent(
                        conversation_id=conversation.id,
                        type="user_intent",
                        data=data,
                        created_at=DAY,
                    )
                )
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sqlite_only(tmp_path_factory) as url:
        asyncio.run(_seed(url))
        yield url


@pytest.fixture
async def app(database: str) -> AsyncIterator[Sanic[Any, Any]]:
    engine = create_engine(database)
    stats = StatsStore(session_factory(engine), units=("Hà Nội",))
    staff = cast(StaffStore, FakeStaff())
    application: Sanic[Any, Any] = Sanic(f"stats_test_{uuid.uuid4().hex}", configure_logging=False)
    application.config.AUTO_EXTEND = False  # the blueprint needs no Sanic Extensions
    register_error_handlers(application)
    application.blueprint(
        create_blueprint(lambda _request: stats, lambda _request: staff, AuthSettings(b"s" * 32))
    )
    yield application
    await engine.dispose()


async def get(app: Sanic[Any, Any], path: str, role: StaffRole | None) -> Any:
    headers = {"Cookie": f"{SESSION_COOKIE}={TOKENS[role]}"} if role else {}
    _request, response = await app.asgi_client.get(path, headers=headers)
    return response


JULY = "/api/v1/stats?from=2025-07-01&to=2025-07-07"


@pytest.mark.parametrize("role", [StaffRole.ADMIN, StaffRole.SUPERVISOR, StaffRole.EDITOR])
async def test_admins_supervisors_and_editors_get_the_numbers(
    app: Sanic[Any, Any], role: StaffRole
) -> None:
    response = await get(app, JULY, role)
    assert response.status == 200
    body = response.json
    assert body["period"] == {"from": "2025-07-01", "to": "2025-07-07", "days": 7, "channel": None}
    channels = {r["key"]: r["values"]["people"] for r in body["tables"]["channels"]["rows"]}
    assert channels == {"telegram": HIDDEN, "zalo": SUPPRESSED}
    assert body["tables"]["channels"]["total"]["values"]["people"] == 11
    assert body["charts"]["per_day"].startswith("<svg")
    assert set(body["charts"]) >= {"channels", "faq_topics", "province", "support"}
    assert response.headers["cache-control"] == "no-store"


async def test_counsellors_and_strangers_may_not(app: Sanic[Any, Any]) -> None:
    forbidden = await get(app, JULY, StaffRole.COUNSELLOR)
    assert forbidden.status == 403
    assert forbidden.json["error"] == "Bạn không có quyền làm việc này."
    anonymous = await get(app, JULY, None)
    assert anonymous.status == 401
    assert (await get(app, "/api/v1/stats.csv", None)).status == 401


async def test_the_channel_filter_applies(app: Sanic[Any, Any]) -> None:
    response = await get(app, JULY + "&channel=zalo", StaffRole.ADMIN)
    body = response.json
    assert body["period"]["channel"] == "zalo"
    assert body["tables"]["channels"]["total"]["values"]["people"] == SUPPRESSED


async def test_the_default_is_the_last_30_days(app: Sanic[Any, Any]) -> None:
    body = (await get(app, "/api/v1/stats", StaffRole.ADMIN)).json
    today = datetime.now(UTC).date()
    assert body["period"]["to"] == today.isoformat()
    assert body["period"]["from"] == (today - timedelta(days=29)).isoformat()
    assert body["period"]["days"] == 30


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2025-02-30", "Ngày không hợp lệ ở tham số from"),
        ("from=2025-07-08&to=2025-07-01", "phải trước hoặc bằng"),
        ("from=2024-01-01&to=2025-07-01", "366 ngày"),
        ("channel=sms", "Kênh không hợp lệ"),
    ],
)
async def test_a_bad_query_is_a_400_in_vietnamese(
    app: Sanic[Any, Any], query: str, message: str
) -> None:
    for path in ("/api/v1/stats?", "/api/v1/stats.csv?"):
        response = await get(app, path + query, StaffRole.ADMIN)
        assert response.status == 400
        assert message in response.json["error"]


async def test_the_csv_is_an_attachment_excel_can_read(app: Sanic[Any, Any]) -> None:
    response = await get(
        app, "/api/v1/stats.csv?from=2025-07-01&to=2025-07-07&channel=telegram", StaffRole.EDITOR
    )
    assert response.status == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="donghanh-thong-ke-2025-07-01-2025-07-07-telegram.csv"'
    )
    text = response.content.decode("utf-8")
    assert text.startswith("\ufefftable,table_title,row,")
    assert "channels,Theo kênh,telegram,Telegram,people,Số người,9\r\n" in text
    assert "faq_topics,Chủ đề được hỏi nhiều nhất,visa,visa,people,Số người,9\r\n" in text
    assert date(2025, 7, 1).isoformat() in text
