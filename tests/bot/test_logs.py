"""Logging without personal data: the server's real log, and the formatter on its own."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import LiveServer

from bot.logs import SAFE_FIELDS, SafeJsonFormatter

NAME = "Nguyễn Thị Hoa"
PHONE = "0912345678"
MESSAGE = f"Tôi là {NAME}, số {PHONE}, tôi bị giữ hộ chiếu"
WEBHOOK = "/webhooks/rest/webhook"


def _json_lines(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


@pytest.mark.slow
def test_server_log_carries_events_but_no_personal_data(live_server: LiveServer) -> None:
    sender = f"zalo-user-8888777766-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        answered = http.post(WEBHOOK, json={"sender": sender, "message": MESSAGE})
        assert answered.status_code == 200
        assert answered.json() and answered.json()[0]["recipient_id"] == sender
        # Error paths log too: too long for the field, and not valid UTF-8.
        too_long = http.post(WEBHOOK, json={"sender": sender, "message": MESSAGE * 500})
        assert too_long.status_code == 400
        broken = http.post(WEBHOOK, content=f'{{"sender": "{sender}", "x": "{MESSAGE}'.encode())
        assert broken.status_code == 400
    live_server.stop()

    log = live_server.log_text()
    for secret in (NAME, "Hoa", PHONE, MESSAGE, "giữ hộ chiếu", sender, "8888777766"):
        assert secret not in log, f"{secret!r} leaked into the log"

    records = _json_lines(log)
    turns = [r for r in records if r.get("event") == "turn"]
    assert any(r.get("channel") == "rest" for r in turns), "the turn must be logged"
    (turn,) = [r for r in turns if r.get("channel") == "rest"]
    assert turn["contact"] and turn["contact"] not in sender, "a pseudonym, not the id"
    assert turn["replies"] >= 1
    assert set(turn) <= {"time", "level", "logger", "pid", "msg", *SAFE_FIELDS}
    http_lines = [r for r in records if r.get("event") == "http"]
    assert [r["status"] for r in http_lines if r.get("method") == "POST"] == [200, 400, 400]


# -- the formatter on its own --------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeJsonFormatter())
    logger = logging.getLogger(f"test.safe-json.{uuid.uuid4().hex}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.handlers[:] = []


def _only_record(stream: io.StringIO) -> dict[str, Any]:
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    record: dict[str, Any] = json.loads(lines[0])
    return record


def test_extras_outside_the_safe_fields_are_dropped(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info(
        "turn",
        extra={
            "event": "turn",
            "channel": "rest",
            "intent": "emergency",
            "latency_ms": 12.5,
            "text": MESSAGE,
            "sender_id": "zalo-user-8888777766",
            "phone": PHONE,
        },
    )

    record = _only_record(stream)
    assert record["event"] == "turn"
    assert record["channel"] == "rest"
    assert record["intent"] == "emergency"
    assert record["latency_ms"] == 12.5
    assert record["level"] == "INFO" and record["msg"] == "turn"
    assert "text" not in record and "sender_id" not in record and "phone" not in record
    assert set(record) <= {"time", "level", "logger", "pid", "msg", *SAFE_FIELDS}
    output = stream.getvalue()
    assert NAME not in output and PHONE not in output and "8888777766" not in output


def test_message_arguments_are_not_interpolated(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("user %s wrote %r", "zalo-user-8888777766", MESSAGE)

    record = _only_record(stream)
    assert record["msg"] == "user %s wrote %r"
    assert "8888777766" not in stream.getvalue() and NAME not in stream.getvalue()


def test_a_non_string_message_is_logged_by_type_only(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info({"text": MESSAGE})

    assert _only_record(stream)["msg"] == "dict"
    assert NAME not in stream.getvalue()


def test_exceptions_are_logged_by_type_name_only(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError(f"could not parse {MESSAGE}")
    except ValueError:
        logger.exception("parse failed", extra={"event": "parse_error"})

    record = _only_record(stream)
    assert record["error_type"] == "ValueError"
    assert record["event"] == "parse_error"
    assert record["level"] == "ERROR"
    output = stream.getvalue()
    assert "could not parse" not in output and NAME not in output and PHONE not in output
    assert "Traceback" not in output


def test_stack_info_is_not_logged(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("checkpoint", stack_info=True)

    assert "Stack (most recent call last)" not in stream.getvalue()
    assert _only_record(stream)["msg"] == "checkpoint"
