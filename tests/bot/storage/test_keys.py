"""Encryption at rest and key rotation (bot/storage/keys.py), on both databases.

At rest: after real turns through the engine (a message, a handoff with a call-back
number and time, a counsellor's reply and note, a misunderstood message), a raw dump of
every table of the schema holds none of what was said, written or given, with or
without diacritics, and every value that looks like a Fernet token sits in a column the
rotation knows of.

Rotation: rows written under key A stay readable with [B, A]; new rows are under B
only; ``rotate`` re-encrypts every encrypted column (found from the metadata) so that
[B] alone reads everything; a second run changes nothing; a value no key decrypts is
reported and left; an interrupted run resumes. ``donghanh keys new`` and
``donghanh keys rotate`` on the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from bot.config import Settings, load_settings
from bot.domain import HandoffChange, InboundMessage, Reply, StaffMember
from bot.storage.cases import CaseStore
from bot.storage.channel_state import ChannelStateStore
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.keys import ColumnCounts, KeyRotator, encrypted_columns
from bot.storage.models import Base, CaseNote
from bot.storage.repository import MissedNote, Store, TurnOutcome

SAID = "Tôi bị giữ hộ chiếu ở Hà Tĩnh"
NOTE = "Chị Thảo cần người đón ở cửa khẩu Cầu Treo"
COUNSELLOR_SAID = "Chị Thảo ơi, em đã báo cho đồn biên phòng"
PHONE = "0912 345 678"
WHEN = "tối mai sau 9 giờ"
SENDER = "rest-user-55501234"
FERNET_PREFIX = "gAAAAA"


def without_diacritics(words: str) -> str:
    decomposed = unicodedata.normalize("NFD", words.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


async def dump_every_table(
    sessions: async_sessionmaker[AsyncSession],
) -> dict[str, list[dict[str, Any]]]:
    """``SELECT *`` of every table of the schema, as the database hands it back."""
    dump: dict[str, list[dict[str, Any]]] = {}
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = await session.execute(text(f"SELECT * FROM {table.name}"))
            dump[table.name] = [dict(row._mapping) for row in rows]
    return dump


def as_text(dump: dict[str, list[dict[str, Any]]]) -> str:
    return "\n".join(
        f"{table}.{column}={value}"
        for table, rows in dump.items()
        for row in rows
        for column, value in row.items()
    )


def encrypted_values(dump: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, Any], str]:
    """(table, column, primary key) -> stored token, for every encrypted value."""
    found = {}
    for target in encrypted_columns():
        key = target.primary_key.name
        for row in dump[target.table.name]:
            value = row[target.column.name]
            if value:
                found[(target.table.name, target.column.name, row[key])] = value
    return found


# -- at rest, after real turns -------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Counsellors on duty around the clock, whatever the hour the test runs at."""
    return dataclasses.replace(settings, service_hours="mon-sun 00:00-24:00")


async def say(services: Any, words: str) -> list[str]:
    await services.turns.handle(InboundMessage(channel="rest", sender_id=SENDER, text=words))
    deliveries = await services.store.do_take_pending_for_contact("rest", SENDER)
    return [d.reply.text for d in deliveries]


async def test_nothing_said_written_or_given_is_stored_in_clear(services: Any) -> None:
    assert await say(services, SAID)
    assert await say(services, "qwertzuiop Thảo asdfgh")  # not understood: the missed queue
    await say(services, "gặp tư vấn viên")
    await say(services, "đồng ý")
    await say(services, "/request_callback")
    await say(services, PHONE)
    await say(services, WHEN)
    staff_id = await services.store.do_create_staff_user("tuvan", "not-a-hash", "counsellor")
    member = StaffMember(staff_id, "tuvan", "counsellor")
    [case] = await services.cases.get_queue()
    assert case.callback_phone == PHONE.replace(" ", "") and case.callback_when == WHEN
    await services.desk.accept(case, member)
    case = await services.cases.get_case(case.id)
    await services.desk.reply(case, member, COUNSELLOR_SAID)
    await services.cases.do_add_note(case.id, staff_id, NOTE)
    assert (await services.content.get_missed())[1] == 1

    dump = await dump_every_table(services.store.sessions)
    stored = as_text(dump)
    secrets = [SAID, NOTE, COUNSELLOR_SAID, PHONE, PHONE.replace(" ", ""), WHEN, SENDER]
    for secret in [*secrets, *map(without_diacritics, secrets), "qwertzuiop"]:
        assert secret not in stored, secret
    assert "345678" not in stored and "345 678" not in stored

    values = encrypted_values(dump)
    tokens = {(t, c) for (t, c, _), v in values.items() if v.startswith(FERNET_PREFIX)}
    assert {
        ("messages", "text_enc"),
        ("contacts", "platform_user_id_enc"),
        ("conversations", "context_enc"),
        ("conversations", "callback_phone_enc"),
        ("conversations", "callback_when_enc"),
        ("case_notes", "text_enc"),
        ("missed_messages", "masked_text_enc"),
    } <= tokens
    assert all(v.startswith(FERNET_PREFIX) for v in values.values())
    known = {(t.table.name, t.column.name) for t in encrypted_columns()}
    for table, rows in dump.items():  # no token anywhere the rotation would not look
        for row in rows:
            for column, value in row.items():
                if isinstance(value, str) and value.startswith(FERNET_PREFIX):
                    assert (table, column) in known, (table, column)
    vault: Vault = services.store.vault
    [context] = [v for (t, c, _), v in values.items() if (t, c) == ("conversations", "context_enc")]
    assert "slots" in vault.decrypt_json(context)
    texts = [
        vault.decrypt(v) for (t, c, _), v in values.items() if (t, c) == ("messages", "text_enc")
    ]
    assert SAID in texts and COUNSELLOR_SAID in texts


# -- rotation ------------------------------------------------------------------------------------


@dataclass
class Keys:
    a: str
    b: str

    def fernet(self, key: str) -> Fernet:
        return Fernet(key.encode())


@pytest.fixture
def keys() -> Keys:
    return Keys(Fernet.generate_key().decode(), Fernet.generate_key().decode())


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def write_rows(sessions: async_sessionmaker[AsyncSession], vault: Vault, sender: str) -> int:
    """A value in every encrypted column of the schema, through the stores; returns the
    first message's id."""
    store = Store(sessions, vault, "test-pseudonym-secret")
    cases = CaseStore(sessions, vault)
    first = None
    for words, change in (
        (SAID, HandoffChange("phone", value="0912345678")),
        (WHEN, HandoffChange("when", value=WHEN)),
    ):
        stored = await store.do_store_inbound(
            InboundMessage(channel="telegram", sender_id=sender, text=words)
        )
        assert stored is not None
        first = first or stored.message_id
        turn = await store.get_turn_input(stored.message_id)
        outcome = TurnOutcome([Reply("Bạn có thể gọi 111.")], {"slots": {"said": words}}, None)
        await store.do_record_turn(turn, dataclasses.replace(outcome, handoff=change))
    await store.do_add_missed(turn, MissedNote("fallback", "giữ hộ chiếu ở [số]", None, 0.1))
    staff_id = await store.do_create_staff_user(f"staff-{sender}", "not-a-hash", "counsellor")
    await cases.do_add_note(turn.conversation_id, staff_id, NOTE)
    await ChannelStateStore(sessions, vault).do_seed_credentials(
        f"zalo-{sender}", f"access-{sender}", f"refresh-{sender}"
    )
    assert first is not None
    return first


def decrypts(fernet: Fernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


async def test_rotation_moves_every_value_to_the_new_key_and_leaves_what_it_cannot_read(
    sessions: async_sessionmaker[AsyncSession],
    keys: Keys,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first_message = await write_rows(sessions, Vault([keys.a]), "tg-a")
    old = encrypted_values(await dump_every_table(sessions))
    columns = {(t.table.name, t.column.name) for t in encrypted_columns()}
    assert {(t, c) for t, c, _ in old} == columns, "seed a value for every encrypted column"

    both = Vault([keys.b, keys.a])  # B first: B encrypts, both decrypt
    assert [both.decrypt(token) for token in old.values()]  # raises if one is unreadable
    turn = await Store(sessions, both, "test-pseudonym-secret").get_turn_input(first_message)
    assert (turn.text, turn.context) == (SAID, {"slots": {"said": WHEN}})  # the latest
    await write_rows(sessions, both, "tg-b")
    new = {
        k: v for k, v in encrypted_values(await dump_every_table(sessions)).items() if k not in old
    }
    assert {(t, c) for t, c, _ in new} == columns
    assert all(decrypts(keys.fernet(keys.b), v) for v in new.values())
    assert not any(decrypts(keys.fernet(keys.a), v) for v in new.values())
    planted, unreadable = await plant_unreadable_note(sessions)
    stamps = await updated_at(sessions)

    report = await KeyRotator(sessions, [keys.b, keys.a], batch_size=3).do_rotate_all()

    assert report.rotated == len(old)
    assert sum(c.current for c in report.columns.values()) == len(new)
    assert report.undecryptable == {"case_notes.text_enc": 1}
    after = encrypted_values(await dump_every_table(sessions))
    only_b = Vault([keys.b])
    for where, token in after.items():
        if where != planted:
            assert decrypts(keys.fernet(keys.b), token), where
            assert only_b.decrypt(token)
    assert after[planted] == unreadable  # left as it was
    assert await updated_at(sessions) == stamps  # re-encrypting is not activity
    turn = await Store(sessions, only_b, "test-pseudonym-secret").get_turn_input(first_message)
    assert (turn.text, turn.context) == (SAID, {"slots": {"said": WHEN}})  # the latest

    settings = load_settings(
        {
            "DONGHANH_INSTANCE_DIR": str(tmp_path / "instance"),
            "DONGHANH_DATABASE_URL": database_url,
            "DONGHANH_ENCRYPTION_KEYS": f"{keys.b},{keys.a}",
            "DONGHANH_PSEUDONYM_SECRET": "test-pseudonym-secret",
        }
    )
    code, out, err = await asyncio.to_thread(run_cli, ["keys", "rotate"], settings, monkeypatch)
    assert code == 1  # the unreadable value is still there: the old key must not go yet
    assert "case_notes.text_enc: 0 mã hoá lại" in out and "KHÔNG giải mã được" in out
    assert "1 giá trị không giải mã được" in err
    assert encrypted_values(await dump_every_table(sessions)) == after  # nothing changed


async def updated_at(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        return list(await session.scalars(text("SELECT updated_at FROM conversations ORDER BY id")))


async def plant_unreadable_note(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[tuple[str, str, Any], str]:
    """A note under a key nobody configured: where it is, and its token."""
    token = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    async with sessions() as session:
        note = CaseNote(conversation_id=1, staff_id=None, text_enc=token)
        session.add(note)
        await session.commit()
        return ("case_notes", "text_enc", note.id), token


class Interrupted(Exception):
    pass


async def test_an_interrupted_rotation_resumes_where_it_stopped(
    sessions: async_sessionmaker[AsyncSession], keys: Keys
) -> None:
    for sender in ("tg-1", "tg-2", "tg-3"):
        await write_rows(sessions, Vault([keys.a]), sender)
    total = len(encrypted_values(await dump_every_table(sessions)))
    batches: list[ColumnCounts] = []

    def stop_after_two(column: str, counts: ColumnCounts) -> None:
        batches.append(counts)
        if len(batches) == 2:
            raise Interrupted

    rotator = KeyRotator(sessions, [keys.b, keys.a], batch_size=2)
    with pytest.raises(Interrupted):
        await rotator.do_rotate_all(on_batch=stop_after_two)
    done_before = sum(c.rotated for c in batches)
    assert 0 < done_before < total
    report = await rotator.do_rotate_all()
    assert report.rotated == total - done_before
    assert sum(c.current for c in report.columns.values()) == done_before
    tokens = encrypted_values(await dump_every_table(sessions)).values()
    assert all(decrypts(keys.fernet(keys.b), token) for token in tokens)


# -- the command line ----------------------------------------------------------------------------


def test_keys_new_prints_a_new_fernet_key_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DONGHANH_ENCRYPTION_KEYS", raising=False)
    printed = []
    for _ in range(2):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            assert main(["keys", "new"]) == 0
        printed.append(stdout.getvalue().strip())
        assert "donghanh keys rotate" in stderr.getvalue()
    assert printed[0] != printed[1]
    for key in printed:
        token = Fernet(key.encode()).encrypt(b"x")
        assert Fernet(key.encode()).decrypt(token) == b"x"
    assert list(tmp_path.iterdir()) == []  # no instance folder, no secrets file
