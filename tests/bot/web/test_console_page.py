"""The counsellor console at ``/console`` and the web chat at ``/chat``, both in real
browsers (Debian's chromium via Playwright) against one real server and database.

The person is on a phone (360x740), the counsellor on a tablet (768x1024) or a laptop
(1280x800). Nothing is faked between them: the person's messages go through the chat
WebSocket and the engine, the counsellor's through the console API, and what each sees
arrives live (the console's events WebSocket, the chat's reply frames). Every wait is an
``expect``/``wait_for_function`` with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import (
    REPO,
    LiveServer,
    create_staff,
    headless_chromium,
    make_settings,
    require_chromium,
    sqlite_only,
)
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Response,
    Route,
    ViewportSize,
    expect,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
PHONE = ViewportSize(width=360, height=740)
TABLET = ViewportSize(width=768, height=1024)
LAPTOP = ViewportSize(width=1280, height=800)
PASSWORD = "mật khẩu bàn tư vấn 2026 đủ dài"
STAFF = (("tuvan_a", "counsellor"), ("tuvan_b", "counsellor"), ("giamsat", "supervisor"))
BASE_TITLE = "Đồng Hành – Bàn tư vấn"
URGENT_TITLE = "(!) Khẩn cấp – " + BASE_TITLE

RESPONSES: dict[str, str] = {
    name: " ".join(str(variants[0]["text"]).split())
    for name, variants in yaml.safe_load(
        (REPO / "data" / "responses.yml").read_text(encoding="utf-8")
    )["responses"].items()
}
CONSENT = RESPONSES["utter_handoff_consent"]
NOT_SHARED = RESPONSES["utter_handoff_not_shared"]
ACCEPTED = RESPONSES["utter_handoff_accepted"]
CLOSED = RESPONSES["utter_handoff_closed"]
GREET = RESPONSES["utter_greet"]
EMERGENCY = RESPONSES["utter_emergency"]
# With a counsellor on duty the person is told they are queued; once a few requests
# have been accepted the message gives the typical wait in minutes instead.
QUEUED = re.compile(
    "^(?:{}|{})$".format(
        re.escape(RESPONSES["utter_handoff_queued"]),
        re.escape(RESPONSES["utter_handoff_queued_estimate"]).replace(
            re.escape("{minutes}"), r"\d+"
        ),
    )
)
LOGGED_OUT_PROBE = (
    "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
)
CONSENT_CHIPS = ["Đồng ý", "Không, chỉ nói chuyện từ bây giờ", "Hủy"]
ASK_COUNSELLOR = "tôi muốn nói chuyện với tư vấn viên"
REPLY = "Chào bạn, mình là tư vấn viên. Bạn đang ở đâu?"
ANSWER = "Mình đang ở Hà Nội"
DANGER = "cứu tôi với, họ đang đánh tôi"  # the NLU: emergency, cue violence, "đang": now


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page cannot depend on the database: SQLite only here (the same path runs
    on PostgreSQL too in test_console_api.py)."""
    with sqlite_only(tmp_path_factory) as url:
        yield url


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _chromium_installed() -> None:
    """Checked before any server starts."""
    require_chromium()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, module_database_url: str
) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("console"), module_database_url, model_dir)
    live = LiveServer(settings, {"DONGHANH_SERVICE_HOURS": "mon-sun 00:00-24:00"}).start()
    try:
        asyncio.run(create_staff(settings, STAFF, PASSWORD))
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[Browser]:
    with headless_chromium(TIMEOUT_MS) as launched:  # after the server and its users
        yield launched


class Actor:
    """One browser context with one page, and everything it did that a test may check:
    requests, web sockets and their frames, failed responses, console and page errors."""

    def __init__(self, context: BrowserContext, origin: str) -> None:
        self.context = context
        self.origin = origin
        self.requests: list[str] = []
        self.websockets: list[str] = []
        self.frames: list[str] = []
        self.failed_responses: list[tuple[int, str]] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        context.set_default_timeout(TIMEOUT_MS)
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("response", self._on_response)
        # Nothing may leave the machine: anything not for the server is recorded above
        # and then refused here.
        context.route(lambda url: not url.startswith(origin + "/"), self._refuse)
        self.page = context.new_page()
        self.page.on("websocket", self._on_websocket)
        self.page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    @staticmethod
    def _refuse(route: Route) -> None:
        route.abort()

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed_responses.append((response.status, urlsplit(response.url).path))

    def _on_websocket(self, ws: Any) -> None:
        self.websockets.append(ws.url)
        ws.on("framereceived", lambda payload: self.frames.append(str(payload)))

    def foreign_requests(self) -> list[str]:
        host = urlsplit(self.origin).netloc
        return [url for url in self.requests if urlsplit(url).netloc != host]


class Stage:
    """Opens people and counsellors in their own browser contexts; closes them all."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.actors: list[Actor] = []

    def _actor(self, **options: Any) -> Actor:
        context = self.browser.new_context(locale="vi-VN", **options)
        actor = Actor(context, self.server.base_url)
        self.actors.append(actor)
        return actor

    def person(self) -> Actor:
        """A person on a phone with the chat open and connected."""
        actor = self._actor(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        response = actor.page.goto(f"{self.server.base_url}/chat")
        assert response is not None and response.status == 200
        expect(actor.page.locator("#status")).to_have_text("")  # "ready" from the server
        return actor

    def console(self, viewport: ViewportSize = TABLET) -> tuple[Actor, Response]:
        """The console's login form, not logged in yet."""
        actor = self._actor(viewport=viewport)
        response = actor.page.goto(f"{self.server.base_url}/console")
        assert response is not None and response.status == 200
        expect(actor.page.locator("#login-form")).to_be_visible()
        return actor, response

    def counsellor(self, username: str, viewport: ViewportSize = TABLET) -> Actor:
        """Logged in on the console, connected and counted as on duty."""
        actor, _ = self.console(viewport)
        page = actor.page
        page.locator("#login-username").fill(username)
        page.locator("#login-password").fill(PASSWORD)
        page.locator("#login-submit").click()
        wait_until_on_duty(page, username)
        return actor

    def close(self) -> None:
        for actor in self.actors:
            actor.context.close()


@pytest.fixture
def stage(browser: Browser, server: LiveServer) -> Iterator[Stage]:
    opened = Stage(browser, server)
    yield opened
    opened.close()


# -- the counsellor's side -----------------------------------------------------------------------


def wait_until_on_duty(page: Page, username: str) -> None:
    """The workspace is shown, the events socket is open, and the server counts this
    member as available (an open console counts, without ticking availability)."""
    expect(page.locator("#workspace")).to_be_visible()
    expect(page.locator("#me")).to_have_text(username)
    expect(page.locator("#connection-status")).to_have_text("Đã kết nối")
    # the queue was loaded once: from here on a new item is one that arrived
    expect(page.locator("#queue-summary")).to_contain_text("Tư vấn viên đang sẵn sàng")
    page.wait_for_function(
        """async (name) => {
            const response = await fetch("/api/v1/console/options");
            const options = await response.json();
            return options.staff.some((s) => s.username === name && s.available);
        }""",
        arg=username,
        polling=100,
    )
    # A marker that only survives if the page is never reloaded.
    page.evaluate("window.__sameDocument = true")


def waiting_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator("#queue-waiting li.queue-item").evaluate_all(
        "items => items.map((item) => item.dataset.conversationId)"
    )
    return ids


def wait_for_new_waiting(page: Page, before: list[str], timeout: float = 10_000) -> str:
    """The id of the queue item that was not there before; it must arrive live (the
    console polls the queue only every 30 s from login, so this means the events socket
    told it)."""
    handle = page.wait_for_function(
        """(before) => {
            const items = document.querySelectorAll("#queue-waiting li.queue-item");
            const ids = Array.from(items, (item) => item.dataset.conversationId);
            return ids.find((id) => !before.includes(id)) || false;
        }""",
        arg=before,
        timeout=timeout,
    )
    found = str(handle.json_value())
    assert page.evaluate("window.__sameDocument === true"), "the console was reloaded"
    return found


def queue_item(page: Page, group: str, conversation_id: str) -> Locator:
    return page.locator(f'#queue-{group} li.queue-item[data-conversation-id="{conversation_id}"]')


def panel(page: Page, conversation_id: str) -> Locator:
    return page.locator(f'section.conversation[data-conversation-id="{conversation_id}"]')


def messages(page: Page, conversation_id: str, author: str) -> Locator:
    return panel(page, conversation_id).locator(
        f'.messages .message[data-author="{author}"] .message-text'
    )


def accept(page: Page, conversation_id: str) -> Locator:
    queue_item(page, "waiting", conversation_id).locator("button.accept").click()
    conversation = panel(page, conversation_id)
    expect(conversation).to_be_visible()
    expect(queue_item(page, "mine", conversation_id)).to_be_visible()
    expect(queue_item(page, "waiting", conversation_id)).to_have_count(0)
    expect(conversation.locator("textarea.reply-text")).to_be_enabled()
    return conversation


def close_conversation(page: Page, conversation_id: str) -> None:
    conversation = panel(page, conversation_id)
    conversation.locator("select.outcome").select_option("resolved")
    conversation.locator("button.close-conversation").click()
    expect(conversation.locator(".ended")).to_have_text("Cuộc trò chuyện đã kết thúc.")
    expect(conversation.locator("textarea.reply-text")).to_be_disabled()
    expect(conversation.locator("button.close-conversation")).to_be_disabled()
    expect(queue_item(page, "mine", conversation_id)).to_have_count(0)


def pushed(actor: Actor, start: int = 0) -> list[tuple[Any, ...]]:
    """The console's events since frame ``start``: ("queue",), ("alert", id), and
    ("message", conversation id, author, text)."""
    found: list[tuple[Any, ...]] = []
    for frame in actor.frames[start:]:
        event = json.loads(frame)
        if event["type"] == "message":
            message = event["message"]
            found.append(("message", event["conversation_id"], message["author"], message["text"]))
        elif event["type"] == "alert":
            found.append(("alert", event["conversation_id"]))
        else:
            found.append((event["type"],))
    return found


# -- the person's side ---------------------------------------------------------------------------


def say(page: Page, text: str) -> None:
    box = page.locator("#text")
    box.click()
    box.press_sequentially(text)
    box.press("Enter")
    # acknowledged by the server: stored, so its turn runs
    expect(page.locator(".msg.user").last).to_have_text(text)
    expect(page.locator(".msg.user").last).not_to_have_class(re.compile(r"\bpending\b"))


def ask_for_counsellor(person: Page, counsellor: Page, choice: str) -> tuple[str, int]:
    """The person asks, is asked for consent, taps ``choice`` and is queued; returns the
    new queue item's id on the counsellor's console and the person's bot-bubble count."""
    bot = person.locator(".msg.bot")
    before_bot = bot.count()
    say(person, ASK_COUNSELLOR)
    expect(bot).to_have_count(before_bot + 1)
    expect(bot.last).to_have_text(CONSENT)
    expect(person.locator(".chips").last.locator(".chip")).to_have_text(CONSENT_CHIPS)
    chips = person.locator(".chips").nth(person.locator(".chips").count() - 1).locator(".chip")
    queued_before = waiting_ids(counsellor)
    person.get_by_role("button", name=choice, exact=True).tap()
    expect(chips).to_have_count(3)
    for chip in chips.all():
        expect(chip).to_be_disabled()  # one answer only
    replies = [NOT_SHARED] if choice == CONSENT_CHIPS[1] else []
    expect(bot).to_have_count(before_bot + 2 + len(replies))
    for offset, text in enumerate(replies):
        expect(bot.nth(before_bot + 1 + offset)).to_have_text(text)
    expect(bot.last).to_have_text(QUEUED)
    conversation_id = wait_for_new_waiting(counsellor, queued_before)
    return conversation_id, bot.count()


# -- tests -----------------------------------------------------------------------------------------


def test_the_whole_path_in_two_browsers(stage: Stage) -> None:
    counsellor = stage.counsellor("tuvan_a")
    console = counsellor.page
    # Availability is left as it is: the open console counts (wait_until_on_duty).
    person = stage.person()
    chat = person.page
    frames_before = len(counsellor.frames)
    conversation_id, bot_count = ask_for_counsellor(chat, console, "Đồng ý")
    assert ("queue",) in pushed(counsellor, frames_before), counsellor.frames
    item = queue_item(console, "waiting", conversation_id)
    expect(item).to_contain_text("Trò chuyện web")
    expect(item).to_contain_text("Cho xem lịch sử")
    expect(item.locator("button.accept")).to_have_accessible_name(
        f"Nhận cuộc trò chuyện #{conversation_id}"
    )

    conversation = accept(console, conversation_id)
    bot = chat.locator(".msg.bot")
    expect(bot).to_have_count(bot_count + 1)
    expect(bot.last).to_have_text(ACCEPTED)
    # The consented history, from before the consent question on.
    expect(messages(console, conversation_id, "user").first).to_have_text(ASK_COUNSELLOR)
    expect(messages(console, conversation_id, "bot").filter(has_text=CONSENT)).to_have_count(1)
    expect(messages(console, conversation_id, "bot").last).to_have_text(ACCEPTED)
    expect(conversation.locator(".history-note")).to_be_hidden()

    reply = conversation.locator("textarea.reply-text")
    reply.click()
    reply.press_sequentially(REPLY)
    reply.press("Enter")
    expect(reply).to_have_value("")
    # shown once, although both the answer to the POST and the live event carry it
    expect(messages(console, conversation_id, "counsellor")).to_have_text([REPLY])
    expect(bot).to_have_count(bot_count + 2)
    expect(bot.last).to_have_text(REPLY)

    say(chat, ANSWER)
    expect(messages(console, conversation_id, "user").last).to_have_text(ANSWER)
    # it came over the events socket (the console never polls for messages)
    assert ("message", int(conversation_id), "user", ANSWER) in pushed(counsellor)
    expect(bot).to_have_count(bot_count + 2)
    last = conversation.locator(".messages .message").last
    expect(last).to_have_attribute("data-author", "user")
    expect(last.locator(".message-text")).to_have_text(ANSWER)

    close_conversation(console, conversation_id)
    # The bot said nothing while the counsellor held the conversation: the person's
    # bot-side bubbles are exactly these (the goodbye is recorded after any reply the
    # bot could have made to the answer, so it would be in between).
    expect(bot).to_have_text([CONSENT, QUEUED, ACCEPTED, REPLY, CLOSED])

    say(chat, "xin chào")
    expect(bot).to_have_count(6)
    expect(bot.last).to_have_text(GREET)
    # A new conversation with the bot: nothing of it reaches the closed one.
    expect(messages(console, conversation_id, "user")).to_have_count(3)
    expect(messages(console, conversation_id, "user").filter(has_text="xin chào")).to_have_count(0)
    assert console.evaluate("window.__sameDocument === true")
    assert counsellor.page_errors == [] and person.page_errors == []


def test_refused_history_shows_only_messages_since_the_handoff(stage: Stage) -> None:
    console = stage.counsellor("tuvan_a").page
    chat = stage.person().page
    say(chat, "xin chào")
    expect(chat.locator(".msg.bot").last).to_have_text(GREET)
    conversation_id, _ = ask_for_counsellor(chat, console, "Không, chỉ nói chuyện từ bây giờ")
    item = queue_item(console, "waiting", conversation_id)
    expect(item).to_contain_text("Chỉ từ lúc chuyển")
    expect(item).not_to_contain_text("Sàng lọc")

    conversation = accept(console, conversation_id)
    expect(chat.locator(".msg.bot").last).to_have_text(ACCEPTED)
    expect(conversation.locator(".history-note")).to_be_visible()
    expect(conversation.locator(".history-note")).to_have_text(
        "Người dùng chỉ đồng ý chia sẻ từ lúc chuyển đến tư vấn viên."
    )
    # What is shown starts at the handoff ...
    expect(messages(console, conversation_id, "bot").last).to_have_text(ACCEPTED)
    expect(messages(console, conversation_id, "bot").filter(has_text=NOT_SHARED)).to_have_count(1)
    # ... and nothing from before the consent question is there.
    texts = conversation.locator(".messages .message .message-text")
    for earlier in ("xin chào", ASK_COUNSELLOR, GREET, CONSENT):
        expect(texts.filter(has_text=earlier)).to_have_count(0)
    expect(conversation.locator(".screening")).to_be_hidden()
    expect(conversation.locator(".cues-box")).to_be_hidden()

    # From now on the person's messages do reach the counsellor, live.
    say(chat, ANSWER)
    expect(messages(console, conversation_id, "user").last).to_have_text(ANSWER)
    close_conversation(console, conversation_id)
    expect(chat.locator(".msg.bot").last).to_have_text(CLOSED)


def test_danger_while_held_alerts_the_counsellor(stage: Stage) -> None:
    counsellor = stage.counsellor("tuvan_a", viewport=LAPTOP)
    console = counsellor.page
    chat = stage.person().page
    conversation_id, bot_count = ask_for_counsellor(chat, console, "Đồng ý")
    conversation = accept(console, conversation_id)
    bot = chat.locator(".msg.bot")
    expect(bot.last).to_have_text(ACCEPTED)
    expect(console).to_have_title(BASE_TITLE)
    chip_count = chat.locator(".chip").count()

    say(chat, DANGER)
    expect(bot).to_have_count(bot_count + 2)
    expect(bot.last).to_have_text(EMERGENCY)
    expect(bot.last).to_contain_text("113")
    expect(bot.last).to_contain_text("111")
    expect(chat.locator(".chip")).to_have_count(chip_count)  # no button while held

    banner = conversation.locator(".alert-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("113")
    expect(banner).to_contain_text("111")
    expect(console).to_have_title(URGENT_TITLE)
    assert ("alert", int(conversation_id)) in pushed(counsellor)
    expect(queue_item(console, "mine", conversation_id)).to_contain_text("Cảnh báo nguy hiểm")
    expect(messages(console, conversation_id, "user").last).to_have_text(DANGER)
    expect(messages(console, conversation_id, "bot").last).to_have_text(EMERGENCY)

    conversation.locator(".alert-ack").click()
    expect(banner).to_be_hidden()
    expect(console).to_have_title(BASE_TITLE)
    close_conversation(console, conversation_id)
    expect(bot.last).to_have_text(CLOSED)
    assert counsellor.page_errors == []


def test_no_errors_no_third_parties_and_a_strict_csp(stage: Stage) -> None:
    counsellor, response = stage.console(LAPTOP)
    csp = response.headers.get("content-security-policy")
    assert csp, response.headers
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    console = counsellor.page
    assert console.locator("script:not([src])").count() == 0
    assert console.locator("[style]").count() == 0

    console.locator("#login-username").fill("tuvan_b")
    console.locator("#login-password").fill(PASSWORD)
    console.locator("#login-submit").click()
    wait_until_on_duty(console, "tuvan_b")
    person = stage.person()
    chat = person.page
    conversation_id, _ = ask_for_counsellor(chat, console, "Đồng ý")
    conversation = accept(console, conversation_id)
    conversation.locator("textarea.reply-text").fill(REPLY)
    conversation.locator("button.reply-send").click()
    expect(chat.locator(".msg.bot").last).to_have_text(REPLY)
    say(chat, ANSWER)
    expect(messages(console, conversation_id, "user").last).to_have_text(ANSWER)
    close_conversation(console, conversation_id)
    expect(chat.locator(".msg.bot").last).to_have_text(CLOSED)

    host = urlsplit(stage.server.base_url).netloc
    for actor in (counsellor, person):
        assert actor.requests, "no requests were recorded"
        assert actor.foreign_requests() == []
        assert [urlsplit(url).netloc for url in actor.websockets] == [host]
        assert actor.page_errors == []
    paths = {urlsplit(url).path for url in counsellor.requests}
    assert {"/console", "/static/console.css", "/static/console.js"} <= paths
    # The one failed request is the logged-out page asking who is logged in (the API
    # answers 401, as its contract says); Chromium itself notes that in the console as
    # "Failed to load resource". Nothing else failed and nothing else was logged.
    assert counsellor.failed_responses == [(401, "/api/v1/me")], counsellor.failed_responses
    assert counsellor.console_errors == [LOGGED_OUT_PROBE], counsellor.console_errors
    assert person.failed_responses == []
    assert person.console_errors == [], person.console_errors


def test_keyboard_only_at_tablet_width(stage: Stage) -> None:
    counsellor, _ = stage.console(TABLET)
    console = counsellor.page
    keyboard = console.keyboard
    # The login form: the name field has the focus; Tab moves on; Enter submits.
    expect(console.locator("#login-username")).to_be_focused()
    keyboard.type("tuvan_b")
    keyboard.press("Tab")
    expect(console.locator("#login-password")).to_be_focused()
    keyboard.type(PASSWORD)
    keyboard.press("Tab")
    expect(console.locator("#login-submit")).to_be_focused()
    keyboard.press("Enter")
    wait_until_on_duty(console, "tuvan_b")

    chat = stage.person().page
    conversation_id, bot_count = ask_for_counsellor(chat, console, "Đồng ý")
    accept_button = queue_item(console, "waiting", conversation_id).locator("button.accept")
    tab_to(console, accept_button)
    keyboard.press("Enter")
    conversation = panel(console, conversation_id)
    expect(conversation).to_be_visible()
    expect(conversation.locator(".conv-title")).to_be_focused()  # the panel took the focus
    expect(chat.locator(".msg.bot").last).to_have_text(ACCEPTED)

    reply = conversation.locator("textarea.reply-text")
    tab_to(console, reply)
    keyboard.type(REPLY)
    keyboard.press("Enter")
    expect(reply).to_have_value("")
    expect(chat.locator(".msg.bot")).to_have_count(bot_count + 2)
    expect(chat.locator(".msg.bot").last).to_have_text(REPLY)
    # Shift+Enter is a new line, not a send.
    keyboard.type("dòng một")
    keyboard.press("Shift+Enter")
    keyboard.type("dòng hai")
    expect(reply).to_have_value("dòng một\ndòng hai")
    keyboard.press("Enter")
    expect(reply).to_have_value("")
    expect(messages(console, conversation_id, "counsellor")).to_have_text(
        [REPLY, "dòng một\ndòng hai"]
    )

    # At 768 px everything a counsellor needs is on the page and reachable by scrolling.
    assert console.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for target in (
        console.locator("#queue-panel"),
        queue_item(console, "mine", conversation_id),
        conversation.locator(".conv-title"),
        conversation.locator(".messages"),
        reply,
        conversation.locator("button.reply-send"),
        conversation.locator("select.outcome"),
        conversation.locator("button.close-conversation"),
    ):
        target.scroll_into_view_if_needed()
        expect(target).to_be_visible()
        expect(target).to_be_in_viewport()
    box = reply.bounding_box()
    assert box is not None and box["width"] >= 300, box
    expect(reply).to_be_enabled()

    conversation.locator("select.outcome").select_option("resolved")
    tab_to(console, conversation.locator("button.close-conversation"))
    keyboard.press("Enter")
    expect(conversation.locator(".ended")).to_have_text("Cuộc trò chuyện đã kết thúc.")
    expect(chat.locator(".msg.bot").last).to_have_text(CLOSED)
    assert counsellor.page_errors == []


def test_the_queue_is_live_for_every_counsellor_and_the_supervisor(stage: Stage) -> None:
    first = stage.counsellor("tuvan_a").page
    second = stage.counsellor("tuvan_b").page
    supervisor = stage.counsellor("giamsat", viewport=LAPTOP).page
    expect(supervisor.locator("#others-group")).to_be_visible()
    expect(first.locator("#others-group")).to_be_hidden()
    before = {page: waiting_ids(page) for page in (second, supervisor)}
    chat = stage.person().page
    conversation_id, _ = ask_for_counsellor(chat, first, "Đồng ý")
    for page, ids in before.items():
        assert wait_for_new_waiting(page, ids) == conversation_id

    accept(second, conversation_id)
    expect(chat.locator(".msg.bot").last).to_have_text(ACCEPTED)
    # gone from the other counsellor's queue at once; the supervisor sees who holds it
    expect(queue_item(first, "waiting", conversation_id)).to_have_count(0)
    expect(queue_item(first, "mine", conversation_id)).to_have_count(0)
    held = queue_item(supervisor, "others", conversation_id)
    expect(held).to_contain_text("Tư vấn viên: tuvan_b")
    expect(queue_item(supervisor, "waiting", conversation_id)).to_have_count(0)

    close_conversation(second, conversation_id)
    expect(held).to_have_count(0)
    expect(chat.locator(".msg.bot").last).to_have_text(CLOSED)


def tab_to(page: Page, target: Locator, limit: int = 60) -> None:
    """Press Tab until ``target`` has the focus (a keyboard user's way there)."""
    for _ in range(limit):
        if target.evaluate("(node) => document.activeElement === node"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


def test_the_counsellor_sees_a_tapped_button_as_the_person_saw_it(stage: Stage) -> None:
    console = stage.counsellor("tuvan_a").page
    chat = stage.person().page
    conversation_id, _ = ask_for_counsellor(chat, console, "Đồng ý")
    accept(console, conversation_id)
    expect(chat.locator(".msg.bot").last).to_have_text(ACCEPTED)
    expect(messages(console, conversation_id, "bot").last).to_have_text(ACCEPTED)
    shown = messages(console, conversation_id, "user").all_inner_texts()
    close_conversation(console, conversation_id)  # first, so a failure leaves nothing held
    expect(chat.locator(".msg.user")).to_have_text([ASK_COUNSELLOR, "Đồng ý"])
    assert shown == [ASK_COUNSELLOR, "Đồng ý"], shown
