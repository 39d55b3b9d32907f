"""Fake platform servers on loopback, for the platforms tests cannot reach: Telegram's
Bot API, Messenger's Send API (Graph), and Zalo's OA message and OAuth APIs.

One ``FakePlatform`` serves all three under different path prefixes. It records every
call (path, headers, query and decoded body), answers as the real platform does, and
can be told to fail the next calls to an endpoint (``fail_next``). Telegram's
``getUpdates`` serves updates queued with ``queue_update``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TELEGRAM_TOKEN = "123456:TEST-token-for-the-fake"
GRAPH_PREFIX = "/graph/v21.0"
ZALO_API_PREFIX = "/zalo"
ZALO_OAUTH_PREFIX = "/zalo-oauth"


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]
    status: int = 200
    answer: Any = None

    @property
    def ok(self) -> bool:
        """Accepted: a 2xx, and for Zalo (which refuses with HTTP 200) error 0."""
        if self.status >= 300:
            return False
        return not (isinstance(self.answer, dict) and self.answer.get("error", 0) not in (0, None))


def _form(raw: bytes) -> dict[str, Any]:
    """PTB posts form fields; non-string values are JSON inside the field."""
    fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
    decoded: dict[str, Any] = {}
    for key, value in fields.items():
        try:
            decoded[key] = (
                json.loads(value)
                if key in ("reply_markup", "allowed_updates", "commands")
                else value
            )
        except ValueError:
            decoded[key] = value
    return decoded


@dataclass
class Failure:
    status: int
    body: Any
    remaining: int
    headers: dict[str, str] = field(default_factory=dict)


def _recipient_of(body: dict[str, Any]) -> str:
    """Whom a send is for: Telegram's chat_id, Messenger's recipient.id, Zalo's
    recipient.user_id ("" for other calls)."""
    recipient = body.get("recipient")
    if isinstance(recipient, dict):
        return str(recipient.get("id") or recipient.get("user_id") or "")
    return str(body.get("chat_id") or "")


@dataclass
class FakePlatform:
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    zalo_refresh_answer: dict[str, Any] | None = None  # None: issue a new pair
    zalo_pairs_issued: int = 0
    stalled: dict[str, float] = field(default_factory=dict)  # recipient -> seconds
    arrived: list[str] = field(default_factory=list)  # recipients of sends, on arrival

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._message_ids = iter(range(1000, 10**9))
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                platform._handle(self)

            def do_GET(self) -> None:
                platform._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # -- addresses for the service's configuration ---------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def telegram_base_url(self) -> str:
        return f"{self.base}/bot"

    @property
    def graph_url(self) -> str:
        return f"{self.base}{GRAPH_PREFIX}"

    @property
    def zalo_api_url(self) -> str:
        return f"{self.base}{ZALO_API_PREFIX}"

    @property
    def zalo_oauth_url(self) -> str:
        return f"{self.base}{ZALO_OAUTH_PREFIX}"

    # -- scripting ---------------------------------------------------------------------

    def fail_next(
        self,
        endpoint: str,
        status: int,
        body: Any = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` calls whose path ends with ``endpoint`` get ``status``
        (with ``headers``, such as Retry-After)."""
        with self._lock:
            failure = Failure(status, body, times, dict(headers or {}))
            self.failures.setdefault(endpoint, []).append(failure)

    def stall(self, recipient: str, seconds: float) -> None:
        """Sends to ``recipient`` take ``seconds`` before they are answered: the
        platform is slow for that one person."""
        with self._lock:
            self.stalled[recipient] = seconds

    def queue_update(self, update: dict[str, Any]) -> None:
        with self._lock:
            self.updates.append(update)

    def calls_to(self, endpoint: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.endswith(endpoint)]

    def delivered(self, channel: str, recipient: str) -> list[dict[str, Any]]:
        """Bodies of the messages the platform accepted for ``recipient``."""
        endpoint, key = {
            "telegram": ("/sendMessage", lambda b: str(b.get("chat_id"))),
            "facebook": ("/me/messages", lambda b: str(b.get("recipient", {}).get("id"))),
            "zalo": ("/v3.0/oa/message/cs", lambda b: str(b.get("recipient", {}).get("user_id"))),
        }[channel]
        return [c.body for c in self.calls_to(endpoint) if c.ok and key(c.body) == recipient]

    def wait_delivered(
        self, channel: str, recipient: str, count: int, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.delivered(channel, recipient)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"{channel}/{recipient}: {len(self.delivered(channel, recipient))} delivered, "
            f"wanted {count}, within {timeout} s"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- answering ---------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("content-length") or 0)
        raw = request.rfile.read(length) if length else b""
        content_type = request.headers.get("content-type", "")
        try:
            body = json.loads(raw) if "json" in content_type else _form(raw)
        except ValueError:
            body = {"_unreadable": raw.decode("utf-8", "replace")}
        call = Call(
            path=parts.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query={k: v[0] for k, v in parse_qs(parts.query).items()},
            body=body if isinstance(body, dict) else {"_value": body},
        )
        recipient = _recipient_of(call.body)
        with self._lock:
            self.arrived.append(recipient)
            delay = self.stalled.get(recipient, 0.0)
        time.sleep(delay)  # this request's own thread: other calls are answered meanwhile
        status, answer, extra_headers = self._scripted(parts.path) or (*self._answer(call), {})
        call.status = status
        call.answer = answer
        with self._lock:
            self.calls.append(call)
        data = json.dumps(answer).encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _scripted(self, path: str) -> tuple[int, Any, dict[str, str]] | None:
        with self._lock:
            for endpoint, queue in self.failures.items():
                if path.endswith(endpoint) and queue:
                    failure = queue[0]
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        queue.pop(0)
                    body = failure.body if failure.body is not None else {}
                    return failure.status, body, failure.headers
        return None

    def _answer(self, call: Call) -> tuple[int, Any]:
        path = call.path
        if path.startswith(f"/bot{TELEGRAM_TOKEN}/"):
            return self._telegram(path.rsplit("/", 1)[1], call.body)
        if path.startswith("/bot"):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if path == f"{GRAPH_PREFIX}/me/messages":
            return self._graph(call)
        if path == f"{ZALO_API_PREFIX}/v3.0/oa/message/cs":
            return 200, {
                "error": 0,
                "message": "Success",
                "data": {"message_id": f"z{next(self._message_ids)}", "user_id": "x"},
            }
        if path == f"{ZALO_OAUTH_PREFIX}/v4/oa/access_token":
            return self._zalo_refresh(call)
        return 404, {"error": "no such endpoint"}

    def _telegram(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "sendMessage":
            chat_id = int(body.get("chat_id", 0))
            return 200, {
                "ok": True,
                "result": {
                    "message_id": next(self._message_ids),
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"},
                    "text": body.get("text", ""),
                },
            }
        if method == "getUpdates":
            with self._lock:
                offset = int(body.get("offset") or 0)
                ready = [u for u in self.updates if u["update_id"] >= offset]
                self.updates = ready
            if not ready:
                time.sleep(0.2)
            return 200, {"ok": True, "result": ready}
        if method == "getMe":
            return 200, {
                "ok": True,
                "result": {
                    "id": 123456,
                    "is_bot": True,
                    "first_name": "Đồng Hành",
                    "username": "DongHanhBot",
                },
            }
        return 200, {"ok": True, "result": True}

    def _graph(self, call: Call) -> tuple[int, Any]:
        if not call.query.get("access_token"):
            return 400, {"error": {"message": "An access token is required", "code": 104}}
        recipient = call.body.get("recipient", {}).get("id")
        return 200, {"recipient_id": recipient, "message_id": f"m_{next(self._message_ids)}"}

    def _zalo_refresh(self, call: Call) -> tuple[int, Any]:
        if self.zalo_refresh_answer is not None:
            return 200, self.zalo_refresh_answer
        with self._lock:
            self.zalo_pairs_issued += 1
            issued = self.zalo_pairs_issued
        return 200, {
            "access_token": f"zalo-access-{issued}",
            "refresh_token": f"zalo-refresh-{issued}",
            "expires_in": "90000",
        }
