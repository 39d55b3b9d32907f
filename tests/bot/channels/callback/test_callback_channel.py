"""Rasa's callback channel against a real server: the webhook answers "success" at once
and every reply reaches the callback URL (a recording server on loopback), retried when
that server fails, delivered once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import REPO, CallbackRecorder, LiveServer, make_settings

pytestmark = pytest.mark.slow

GREETING = yaml.safe_load((REPO / "data" / "responses.yml").read_text(encoding="utf-8"))[
    "responses"
]["utter_greet"][0]["text"]


@pytest.fixture(scope="module")
def recorder(callback_recorder: CallbackRecorder) -> CallbackRecorder:
    return callback_recorder


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    model_dir: Path,
    module_database_url: str,
    recorder: CallbackRecorder,
) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("callback"), module_database_url, model_dir)
    env = {"DONGHANH_CALLBACK_URL": recorder.url, "DONGHANH_OUTBOX_RETRY_BASE_SECONDS": "0.05"}
    live = LiveServer(settings, env).start()
    yield live
    live.stop()


def post(server: LiveServer, body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/webhooks/callback/webhook", json=body, timeout=30)


def test_the_reply_is_posted_to_the_callback_url(
    server: LiveServer, recorder: CallbackRecorder
) -> None:
    sender = f"cb-{uuid.uuid4().hex}"
    response = post(server, {"sender": sender, "message": "xin chào"})
    assert response.status_code == 200
    assert response.text == "success"
    (body,) = recorder.wait_for(sender, 1)
    assert body["recipient_id"] == sender
    assert body["text"] == GREETING.strip()
    assert {b["payload"] for b in body["buttons"]} == {"/emergency", "/request_counsellor"}


def test_a_failing_callback_server_gets_the_reply_later_once(
    server: LiveServer, recorder: CallbackRecorder
) -> None:
    sender = f"cb-{uuid.uuid4().hex}"
    recorder.fail = 2
    calls_before = recorder.calls
    assert post(server, {"sender": sender, "message": "/emergency"}).text == "success"
    (body,) = recorder.wait_for(sender, 1)
    assert "113" in body["text"] and "111" in body["text"]
    assert recorder.calls - calls_before >= 3  # two refusals, then the delivery
    time.sleep(0.5)
    assert len([b for b in recorder.bodies if b["recipient_id"] == sender]) == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"sender": ""}, {"sender": "x"}, {"sender": 5, "message": "hi"}, ["x"]],
)
def test_bad_bodies_are_clear_errors_and_nothing_is_sent(
    server: LiveServer, recorder: CallbackRecorder, body: Any
) -> None:
    before = len(recorder.bodies)
    response = post(server, body)
    assert response.status_code == 400
    assert "error" in response.json()
    time.sleep(0.2)
    assert len(recorder.bodies) == before


def test_without_a_callback_url_the_channel_is_not_mounted(module_server: LiveServer) -> None:
    response = httpx.post(
        f"{module_server.base_url}/webhooks/callback/webhook",
        json={"sender": "a", "message": "b"},
        timeout=30,
    )
    assert response.status_code == 404
