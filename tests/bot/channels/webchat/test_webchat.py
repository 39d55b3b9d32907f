"""The web chat's WebSocket protocol at ``/webhooks/webchat/ws``, against a real server.

Every test talks to ``donghanh serve`` in its own process through the ``websockets``
client, the way the page's ``chat.js`` does: hello first, then message frames carrying
a client message id, which the page keeps and resends after a reconnect until the
server acknowledges it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.storage.crypto import pseudonymise

pytestmark = pytest.mark.slow

FRAME_TIMEOUT = 15.0
WS_PATH = "/webhooks/webchat/ws"
MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CHARS = 20_000
GREETING = "Xin chào, mình là Đồng Hành"
SCRIPT = "<script>alert(1)</script>"

Frame = dict[str, Any]


# -- helpers -----------------------------------------------------------------------------------


def ws_url(server: Any) -> str:
    return server.base_url.replace("http://", "ws://", 1) + WS_PATH


def new_session() -> str:
    return secrets.token_urlsafe(24)  # 32 characters of [A-Za-z0-9_-]


def new_id() -> str:
    return secrets.token_hex(12)


def message(text: Any, message_id: str | None = None) -> str:
    return json.dumps({"type": "message", "id": message_id or new_id(), "text": text})


async def recv_frame(ws: ClientConnection) -> Frame:
    raw = await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT)
    assert isinstance(raw, str), f"server sent a binary frame: {raw!r}"
    frame = json.loads(raw)
    assert isinstance(frame, dict), f"server frame is not a JSON object: {raw!r}"
    assert frame.get("type") in {"ready", "reply", "ack", "error"}, frame
    return frame


async def recv_until(ws: ClientConnection, done: Callable[[list[Frame]], bool]) -> list[Frame]:
    frames: list[Frame] = []
    while not done(frames):
        frames.append(await recv_frame(ws))
    return frames


async def drain_closed(ws: ClientConnection) -> list[Frame]:
    """Whatever the server managed to send before the connection closed."""
    frames: list[Frame] = []
    while True:
        try:
            frames.append(await recv_frame(ws))
        except ConnectionClosed:
            return frames


def replies(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["type"] == "reply"]


def acks(frames: list[Frame], message_id: str) -> list[Frame]:
    return [f for f in frames if f == {"type": "ack", "id": message_id}]


def greetings(frames: list[Frame]) -> list[Frame]:
    return [f for f in replies(frames) if f["text"].startswith(GREETING)]


@asynccontextmanager
async def chat(server: Any, session: str | None = None) -> AsyncIterator[ClientConnection]:
    """An open connection that has said hello and been told it is ready."""
    async with connect(ws_url(server), open_timeout=10, close_timeout=5) as ws:
        await ws.send(json.dumps({"type": "hello", "session": session or new_session()}))
        assert await recv_frame(ws) == {"type": "ready"}
        yield ws


async def exchange(
    ws: ClientConnection, text_: str, message_id: str | None = None
) -> tuple[list[Frame], Frame]:
    """Send one message; return every frame up to its ack and its reply, and the reply."""
    message_id = message_id or new_id()
    await ws.send(message(text_, message_id))
    frames = await recv_until(ws, lambda fs: bool(acks(fs, message_id)) and bool(replies(fs)))
    assert len(acks(frames, message_id)) == 1, frames
    assert [f for f in frames if f["type"] == "error"] == [], frames
    return frames, replies(frames)[-1]


def assert_emergency(reply: Frame) -> None:
    assert "113" in reply["text"], reply
    assert "111" in reply["text"], reply


def assert_server_healthy(server: Any) -> None:
    assert server.process.poll() is None, f"the server exited:\n{server.log_text()}"
    response = httpx.get(f"{server.base_url}/health", timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


# -- hello --------------------------------------------------------------------------------------


async def test_hello_is_answered_with_ready(module_server: Any) -> None:
    async with connect(ws_url(module_server), open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "hello", "session": new_session()}))
        assert await recv_frame(ws) == {"type": "ready"}
        # A new session has nothing waiting: only the answer to our message follows.
        frames, reply = await exchange(ws, "xin chào")
        assert len(frames) == 2, frames
        assert reply["text"].startswith(GREETING)


async def test_session_ids_at_the_limits_of_the_rules_are_accepted(module_server: Any) -> None:
    for session in ("a" * 16, "Z" * 64, "Ab-_09" * 3):
        async with chat(module_server, session) as ws:
            _, reply = await exchange(ws, "xin chào")
            assert reply["text"].startswith(GREETING), session


BAD_FIRST_FRAMES = {
    "missing-session": json.dumps({"type": "hello"}),
    "empty-session": json.dumps({"type": "hello", "session": ""}),
    "too-short": json.dumps({"type": "hello", "session": "a" * 15}),
    "too-long": json.dumps({"type": "hello", "session": "a" * 65}),
    "bad-chars": json.dumps({"type": "hello", "session": "a" * 20 + "/.."}),
    "trailing-newline": json.dumps({"type": "hello", "session": "a" * 20 + "\n"}),
    "not-a-string": json.dumps({"type": "hello", "session": 10**20}),
    "null": json.dumps({"type": "hello", "session": None}),
    "wrong-type": json.dumps({"type": "helo", "session": "a" * 32}),
    "message-before-hello": message("xin chào"),
    "array": json.dumps([{"type": "hello", "session": "a" * 32}]),
    "not-json": "hello",
}


async def test_bad_or_missing_session_gets_an_error_then_the_socket_closes(
    module_server: Any,
) -> None:
    problems: dict[str, str] = {}
    for case, first_frame in BAD_FIRST_FRAMES.items():
        async with connect(ws_url(module_server), open_timeout=10) as ws:
            await ws.send(first_frame)
            frame = await recv_frame(ws)
            if frame["type"] != "error" or not isinstance(frame.get("error"), str):
                problems[case] = f"first answer {frame!r}"
                continue
            try:
                # Nothing else comes: no "ready", and the server closes the connection.
                extra = await recv_frame(ws)
            except ConnectionClosed:
                pass
            else:
                problems[case] = f"after the error the socket stayed open and sent {extra!r}"
    assert problems == {}, problems
    assert_server_healthy(module_server)
    async with chat(module_server) as ws:
        _, reply = await exchange(ws, "xin chào")
        assert reply["text"].startswith(GREETING)


# -- conversation -------------------------------------------------------------------------------


async def test_greeting_gets_the_greeting_with_two_buttons(module_server: Any) -> None:
    async with chat(module_server) as ws:
        frames, reply = await exchange(ws, "xin chào")
    assert len(replies(frames)) == 1, frames
    assert reply["text"].startswith("Xin chào")
    assert "Đồng Hành" in reply["text"]
    buttons = reply["buttons"]
    assert len(buttons) == 2, buttons
    for button in buttons:
        assert set(button) == {"title", "payload"}
        assert isinstance(button["title"], str)
        assert button["title"]
        assert button["payload"].startswith("/")
    assert {"title": "Tôi đang gặp nguy hiểm", "payload": "/emergency"} in buttons


async def test_tapping_the_danger_button_gives_113_and_111(module_server: Any) -> None:
    async with chat(module_server) as ws:
        _, greeting = await exchange(ws, "xin chào")
        (danger,) = [b for b in greeting["buttons"] if b["title"] == "Tôi đang gặp nguy hiểm"]
        assert danger["payload"] == "/emergency"
        frames, reply = await exchange(ws, danger["payload"])
    assert len(replies(frames)) == 1, frames
    assert_emergency(reply)
    assert not reply["text"].startswith(GREETING)


async def test_resending_a_message_id_is_acknowledged_but_not_answered_again(
    module_server: Any,
) -> None:
    message_id = new_id()
    async with chat(module_server) as ws:
        _, reply = await exchange(ws, "xin chào", message_id)
        assert reply["text"].startswith(GREETING)

        await ws.send(message("xin chào", message_id))
        # A duplicate is acknowledged (so the page stops resending it) ...
        assert await recv_frame(ws) == {"type": "ack", "id": message_id}
        # ... and, with a later message as a barrier, never answered a second time.
        frames, barrier = await exchange(ws, "/emergency")
    assert_emergency(barrier)
    assert greetings(frames) == [], frames
    assert len(replies(frames)) == 1, frames
    assert acks(frames, message_id) == [], frames


async def test_message_ids_are_scoped_to_their_session(module_server: Any) -> None:
    shared_id = new_id()
    async with chat(module_server) as first:
        _, reply = await exchange(first, "xin chào", shared_id)
        assert reply["text"].startswith(GREETING)
    async with chat(module_server) as second:
        # Another person who happens to use the same client id is not a duplicate.
        _, reply = await exchange(second, "xin chào", shared_id)
        assert reply["text"].startswith(GREETING)


async def test_message_without_id_is_answered_without_ack(module_server: Any) -> None:
    async with chat(module_server) as ws:
        await ws.send(json.dumps({"type": "message", "text": "xin chào"}))
        frame = await recv_frame(ws)
        assert frame["type"] == "reply", frame
        assert frame["text"].startswith(GREETING)
        _, barrier = await exchange(ws, "/emergency")
        assert_emergency(barrier)


async def test_markup_in_a_message_is_only_data(module_server: Any) -> None:
    async with chat(module_server) as ws:
        frames, reply = await exchange(ws, SCRIPT)
        assert len(replies(frames)) == 1, frames
        # The bot answers normally and does not echo the markup back.
        assert isinstance(reply["text"], str)
        assert reply["text"].strip()
        assert "<" not in reply["text"], reply
        assert isinstance(reply["buttons"], list)
        # The conversation goes on as usual.
        _, greeting = await exchange(ws, "xin chào")
        assert greeting["text"].startswith(GREETING)
    # What people write never reaches the logs.
    assert SCRIPT not in module_server.log_text()
    assert "alert(1)" not in module_server.log_text()


# -- bad frames ---------------------------------------------------------------------------------


BAD_FRAMES: dict[str, str | bytes] = {
    "not-json": "xin chào",
    "empty": "",
    "truncated-json": "{",
    "binary-not-utf8": b"\xff\xfe\x00",
    "json-null": "null",
    "json-array": json.dumps(["message", "xin chào"]),
    "json-string": json.dumps("xin chào"),
    "unknown-type": json.dumps({"type": "typing", "text": "xin chào"}),
    "no-type": json.dumps({"text": "xin chào"}),
    "second-hello": json.dumps({"type": "hello", "session": "b" * 32}),
    "missing-text": json.dumps({"type": "message", "id": new_id()}),
    "text-number": message(42),
    "text-null": message(None),
    "text-list": message(["xin chào"]),
    "text-object": message({"text": "xin chào"}),
    "text-too-long": message("a" * (MAX_TEXT_CHARS + 1)),
    "text-lone-surrogate": message("\ud800"),
    "id-too-short": message("xin chào", "short"),
    "id-number": json.dumps({"type": "message", "id": 10**20, "text": "xin chào"}),
    "id-bad-chars": message("xin chào", "x" * 16 + ":" + "y" * 16),
    "id-trailing-newline": message("xin chào", "x" * 20 + "\n"),
}


async def test_bad_frames_get_an_error_and_the_connection_keeps_working(
    module_server: Any,
) -> None:
    problems: dict[str, str] = {}
    async with chat(module_server) as ws:
        for case, frame in BAD_FRAMES.items():
            await ws.send(frame)
            error = await recv_frame(ws)
            if error["type"] != "error" or not isinstance(error.get("error"), str):
                problems[case] = f"answered {error!r}"
                # Let the wrongly accepted frame's ack and reply pass before going on.
                if error["type"] != "reply":
                    await recv_until(ws, lambda fs: bool(replies(fs)))
                continue
            # The bad frame was not taken as a message: the next valid one gets exactly
            # its own reply, on the same connection.
            frames, reply = await exchange(ws, "xin chào")
            if len(replies(frames)) != 1 or not reply["text"].startswith(GREETING):
                problems[case] = f"the next message got {frames!r}"
    assert problems == {}, problems
    assert_server_healthy(module_server)
    assert "Traceback" not in module_server.log_text()


async def test_oversized_frame_does_not_harm_the_server(module_server: Any) -> None:
    huge = message("a" * (MAX_FRAME_BYTES + 6 * 1024))
    assert len(huge.encode()) > MAX_FRAME_BYTES
    async with connect(ws_url(module_server), open_timeout=10, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "session": new_session()}))
        assert await recv_frame(ws) == {"type": "ready"}
        await ws.send(huge)
        try:
            frame = await recv_frame(ws)
        except ConnectionClosed as closed:
            # The server may refuse the frame by closing: then it must say why (1009,
            # "message too big"), not fail with an internal error.
            assert closed.rcvd is not None, "closed without a close frame"
            assert closed.rcvd.code == 1009, closed
        else:
            # Or it answers with an error and the connection goes on.
            assert frame["type"] == "error", frame
            _, reply = await exchange(ws, "xin chào")
            assert reply["text"].startswith(GREETING)
    assert_server_healthy(module_server)
    async with chat(module_server) as ws:
        _, reply = await exchange(ws, "xin chào")
        assert reply["text"].startswith(GREETING)


# -- reconnecting ------------------------------------------------------------------------------


async def test_reconnecting_with_the_same_session_redelivers_nothing_already_delivered(
    module_server: Any,
) -> None:
    session = new_session()
    async with chat(module_server, session) as ws:
        _, reply = await exchange(ws, "xin chào")
        assert reply["text"].startswith(GREETING)
    async with chat(module_server, session) as ws:
        # Anything waiting would be sent right after "ready", before the barrier's reply.
        frames, barrier = await exchange(ws, "/emergency")
    assert_emergency(barrier)
    assert greetings(frames) == [], frames
    assert len(replies(frames)) == 1, frames


async def test_reply_to_a_message_sent_just_before_disconnecting_arrives_exactly_once(
    module_server: Any,
) -> None:
    session, message_id, barrier_id = new_session(), new_id(), new_id()
    async with connect(ws_url(module_server), open_timeout=10, close_timeout=5) as ws:
        await ws.send(json.dumps({"type": "hello", "session": session}))
        assert await recv_frame(ws) == {"type": "ready"}
        await ws.send(message("xin chào", message_id))
    # Closed without reading; whatever the server sent before it saw the close counts too.
    first = await drain_closed(ws)

    async with chat(module_server, session) as ws:
        if not acks(first, message_id):
            # Like chat.js: a message nobody acknowledged is sent again after "ready".
            await ws.send(message("xin chào", message_id))
        await ws.send(message("/emergency", barrier_id))
        # Anything owed to this session comes before the barrier's reply.
        second = await recv_until(
            ws,
            lambda fs: bool(acks(fs, barrier_id)) and any("113" in r["text"] for r in replies(fs)),
        )
    union = first + second
    assert len(greetings(union)) == 1, union
    assert acks(union, message_id), union


@pytest.fixture
def slow_turn_server(settings: Any) -> Iterator[Any]:
    """A live server whose turns take 2 s, so a reply is surely made after a disconnect."""
    from conftest import LiveServer

    server = LiveServer(settings, env_extra={"DONGHANH_FAULT_TURN_DELAY_MS": "2000"}).start()
    yield server
    server.stop()


async def wait_for_row(database_url: str, query: str, why: str = "", **params: Any) -> Any:
    """Poll the server's database until ``query`` returns a row; return it."""
    from bot.storage.db import create_engine

    engine = create_engine(database_url)
    deadline = time.monotonic() + FRAME_TIMEOUT
    try:
        while True:
            async with engine.connect() as connection:
                row = (await connection.execute(text(query), params)).first()
            if row is not None:
                return row
            assert time.monotonic() < deadline, f"{why} (no row for {query!r} {params!r})"
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def test_reply_made_while_disconnected_is_delivered_on_reconnect(
    slow_turn_server: Any,
) -> None:
    server = slow_turn_server
    database_url = server.settings.database_url
    session, message_id = new_session(), new_id()
    async with connect(ws_url(server), open_timeout=10, close_timeout=5) as ws:
        await ws.send(json.dumps({"type": "hello", "session": session}))
        assert await recv_frame(ws) == {"type": "ready"}
        await ws.send(message("xin chào", message_id))
        # The server has stored the message; its turn is still running.
        await wait_for_row(
            database_url,
            "SELECT id FROM messages WHERE platform_message_id = :pid",
            pid=pseudonymise(
                server.settings.pseudonym_secret, "webchat#msg", f"{session}:{message_id}"
            ),
        )
    first = await drain_closed(ws)
    assert replies(first) == [], first

    # The reply is made while nobody is connected: it waits in the outbox, and waiting
    # for an absent person spends no delivery attempt.
    outbox = await wait_for_row(
        database_url,
        "SELECT id, status, attempts FROM outbox WHERE status = 'pending'",
        why="the turn of a message whose socket closed did not finish in time (it takes 2 s)",
    )
    assert outbox.attempts == 0, outbox

    barrier_id = new_id()
    async with chat(server, session) as ws:
        waiting = await recv_frame(ws)
        assert waiting["type"] == "reply", waiting
        assert waiting["text"].startswith(GREETING)
        assert len(waiting["buttons"]) == 2
        # chat.js resends the unacknowledged message: acknowledged, not answered again.
        await ws.send(message("xin chào", message_id))
        assert await recv_frame(ws) == {"type": "ack", "id": message_id}
        await ws.send(message("/emergency", barrier_id))
        second = await recv_until(
            ws,
            lambda fs: bool(acks(fs, barrier_id)) and any("113" in r["text"] for r in replies(fs)),
        )
    assert greetings(second) == [], second
    assert len(replies(second)) == 1, second
    row = await wait_for_row(database_url, "SELECT status FROM outbox WHERE id = :id", id=outbox.id)
    assert row.status == "sent"
