"""A counsellor's side of the console API, for tests that hand a person over: log in,
read the queue, accept, reply, and listen to the live events socket."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from conftest import LiveServer
from websockets.sync.client import ClientConnection, connect


class Counsellor:
    """A member of staff logged in to the console API, with the CSRF token."""

    def __init__(self, server: LiveServer, username: str, password: str) -> None:
        self.server = server
        self.username = username
        self.http = httpx.Client(base_url=server.base_url, timeout=30)
        response = self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]
        self.id = response.json()["user"]["id"]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"/api/v1{path}", params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(
            f"/api/v1{path}", json=body or {}, headers={"X-CSRF-Token": self.csrf}
        )

    def queue(self) -> dict[str, Any]:
        response = self.get("/queue")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def waiting_item(self, person_marker: int) -> dict[str, Any]:
        return next(i for i in self.queue()["waiting"] if i["id"] == person_marker)

    def events(self) -> Events:
        cookie = f"dh_session={self.http.cookies['dh_session']}"
        url = self.server.base_url.replace("http://", "ws://") + "/api/v1/events"
        return Events(connect(url, additional_headers={"Cookie": cookie}, open_timeout=10))

    def close(self) -> None:
        self.post("/me/availability", {"available": False})
        self.http.close()


class Events:
    """The console's live events socket."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        hello = self.next(lambda e: True)
        assert hello["type"] == "hello"

    def next(self, wanted: Any, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event: dict[str, Any] = json.loads(self.socket.recv(timeout=0.5))
            except TimeoutError:
                continue
            if wanted(event):
                return event
        raise AssertionError("the expected event did not come")

    def close(self) -> None:
        self.socket.close()
