"""The admin page at ``/admin`` in real browsers (Debian's chromium via Playwright)
against one real server and database.

Editors and reviewers work in their own browser contexts: an edit saved by ``ed1`` is
published by ``rev1`` (four eyes) and the bot answers with it at once; a draft the
linter refuses cannot be published; an older version is compared and restored; a
message the bot did not understand is shown masked and assigned to a topic; the
numbers are shown with the small-number rule; the page is labelled, quiet in the
console and self-contained.

Two changes teach the model something (an example added to a topic, a missed message
assigned to another), and each starts a background retrain (about a minute each): they
are made by the first tests, the other tests run while the model trains, and the last
two tests wait for the retrained model and check what it learnt. Every wait is an
``expect`` with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import (
    REPO,
    RETIRED_HOTLINE,
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
    Dialog,
    Locator,
    Page,
    Route,
    ViewportSize,
    expect,
)

from bot.config import Settings
from bot.content.faq import read_faq_dir, to_entry
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Contact, Conversation, ConversationEvent

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
RETRAIN_SECONDS = 240  # the longest one retrain may take here; two run in this module
LAPTOP = ViewportSize(width=1280, height=800)
PASSWORD = "mật khẩu biên tập 2026 đủ dài"
STAFF = (
    ("ed1", "editor"),
    ("rev1", "editor", True),
    ("sup1", "supervisor"),
    ("co1", "counsellor"),
)
WEBHOOK = "/webhooks/rest/webhook"
PARSE = "/model/parse"
FALLBACK = "nlu_fallback"
LOGGED_OUT_PROBE = (
    "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
)
CONTENT_TABS = ("Chủ đề hỏi đáp", "Dịch vụ hỗ trợ", "Tin nhắn bot chưa hiểu", "Mô hình ngôn ngữ")
SAVED = "Đã lưu bản nháp. Người có quyền duyệt có thể xuất bản."
SAVED_WITH_PROBLEMS = "Đã lưu bản nháp. Cần sửa các điểm dưới đây trước khi xuất bản."
REFUSED = "nội dung chưa đạt yêu cầu, chưa xuất bản"

FAQ = {entry.key: entry for entry in map(to_entry, read_faq_dir(REPO / "data" / "faq"))}

# The edit: a new answer and one more example for "deposit"; the example is the first
# candidate the shipped model does not place in that topic.
EDITED = "deposit"
NEW_ANSWER = (
    "Tiền ký quỹ được gửi vào tài khoản đứng tên bạn tại ngân hàng, công ty không được "
    "giữ. Khi thanh lý hợp đồng, bạn nhận lại cả tiền ký quỹ và tiền lãi (Điều 25 Luật "
    "69/2020/QH14). Cần giúp, bạn gọi 111 (miễn phí, 24/7)."
)
NEW_EXAMPLES = (
    "tiền đặt cọc bảo đảm với hãng đưa người đi có rút ra được không",
    "khoản cọc nộp cho hãng đưa người đi bao giờ mới rút về được",
    "tiền cọc xuất ngoại bị ôm mất biết đòi ở đâu",
)

# The missed message: slang about a broker ("cò") who took the money for the papers;
# the first one the shipped model does not understand is sent, then assigned here.
ASSIGNED_TOPIC = "faq/recruitment_fees"
MISSED_CANDIDATES = (
    "con cò cầm tiền lo giấy tờ xong bặt vô âm tín",
    "đưa cò tiền lo thủ tục giờ gọi không bắt máy",
    "thằng cò ẵm tiền visa rồi biến",
)
# ... and one with a name and a phone number, which editors must only see masked
PHONE = "0912345678"
NAME = "Tuấn"
PERSONAL_CANDIDATES = (
    f"thằng cò tên nó là {NAME} số {PHONE} giữ tiền rồi biến đâu mất",
    f"cò tên là {NAME} sđt {PHONE} cầm tiền rồi mất tăm",
)

# The refused draft: the retired hotline number (built, never written here) and no
# sources. The rollback: an answer changed, published, then the first version restored.
REFUSED_TOPIC = "legal_aid"
RETIRED = RETIRED_HOTLINE
BAD_ANSWER = f"Cần trợ giúp pháp lý miễn phí, bạn gọi {RETIRED[:4]} {RETIRED[4:]} để được tư vấn."
ROLLED_BACK = "support_fund"
CHANGED_ANSWER = (
    "Quỹ Hỗ trợ việc làm ngoài nước hỗ trợ người lao động gặp rủi ro khi làm việc ở nước "
    "ngoài theo hợp đồng. Hãy hỏi 111 (miễn phí, 24/7) về mức hỗ trợ và thủ tục."
)

# The numbers: a past week, so the REST conversations of the other tests stay out of it.
# 12 people on Telegram, 3 on Zalo and 6 on Messenger: the 3 is shown as "<5", and the
# 6 is the cell hidden ("ẩn") so that the 3 cannot be worked out from the total: without
# a third channel that cell would be Telegram's (bot/storage/stats.py, secondary
# suppression), and the 12 could not be shown.
STATS_END = datetime.now(UTC).date() - timedelta(days=7)
STATS_START = STATS_END - timedelta(days=6)
STATS_PEOPLE = {"telegram": 12, "zalo": 3, "facebook": 6}
STATS_FALLBACKS = 5  # Telegram people who also got "nlu_fallback" once
FALLBACK_RATE = round(100 * STATS_FALLBACKS / (sum(STATS_PEOPLE.values()) + STATS_FALLBACKS), 1)

VIETNAMESE_LETTER = re.compile(
    "[àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđ]", re.IGNORECASE
)


@dataclass
class Journal:
    """What the tests that start a retrain leave for the tests that check its outcome."""

    missed_text: str | None = None
    edited_example: str | None = None
    first_retrain_at: float | None = None

    def note_retrain(self) -> None:
        if self.first_retrain_at is None:
            self.first_retrain_at = time.monotonic()


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page cannot depend on the database: SQLite only here (the content and stats
    storage run on PostgreSQL too in their own tests)."""
    with sqlite_only(tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module", autouse=True)
def _chromium_installed() -> None:
    """Checked before any server starts."""
    require_chromium()


async def seed_stats_week(settings: Settings) -> None:
    """People of ``STATS_PEOPLE`` writing once on the middle day of the past week (the
    way tests/bot/storage/test_stats.py seeds: the ORM models, straight in the
    database); ``STATS_FALLBACKS`` Telegram people also were not understood once."""
    when = datetime.combine(STATS_START + timedelta(days=3), datetime.min.time(), UTC)
    when += timedelta(hours=10)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            for channel, people in STATS_PEOPLE.items():
                for n in range(people):
                    contact = Contact(
                        pseudonym=f"admin-page-{channel}-{n}",
                        channel=channel,
                        platform_user_id_enc="not-a-real-token",
                    )
                    session.add(contact)
                    await session.flush()
                    conversation = Conversation(contact_id=contact.id, created_at=when)
                    session.add(conversation)
                    await session.flush()
                    intents = ["greet"]
                    if channel == "telegram" and n < STATS_FALLBACKS:
                        intents.append(FALLBACK)
                    for intent in intents:
                        data = {"intent": intent, "confidence": 0.9, "entities": [], "cues": []}
                        session.add(
                            ConversationEvent(
                                conversation_id=conversation.id,
                                type="user_intent",
                                data=data,
                                created_at=when,
                            )
                        )
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, module_database_url: str
) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("admin"), module_database_url, model_dir)
    # the assignment and the publish a few tests later land in one retrain: it starts
    # once the examples have been still for 30 s
    env = {"DONGHANH_CONTENT_POLL_SECONDS": "0.5", "DONGHANH_RETRAIN_DELAY_SECONDS": "30"}
    live = LiveServer(settings, env).start()
    try:
        asyncio.run(create_staff(settings, STAFF, PASSWORD))
        asyncio.run(seed_stats_week(settings))
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[Browser]:
    with headless_chromium(TIMEOUT_MS) as launched:  # after the server and its numbers
        yield launched


class Actor:
    """One member of staff in a browser context of their own: one login for the whole
    module, a fresh page per test, and what the pages did that a test may check."""

    def __init__(self, context: BrowserContext, origin: str) -> None:
        self.context = context
        self.origin = origin
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.page: Page | None = None
        context.set_default_timeout(TIMEOUT_MS)
        context.on("request", lambda request: self.requests.append(request.url))
        # Nothing may leave the machine: anything not for the server is recorded above
        # and then refused here.
        context.route(lambda url: not url.startswith(origin + "/"), self._refuse)

    @staticmethod
    def _refuse(route: Route) -> None:
        route.abort()

    def _accept(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def open_page(self) -> Page:
        """A new tab on /admin (the previous one closed)."""
        if self.page is not None:
            self.page.close()
        page = self.context.new_page()
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("dialog", self._accept)
        self.page = page
        response = page.goto(f"{self.origin}/admin")
        assert response is not None and response.status == 200
        return page

    def foreign_requests(self) -> list[str]:
        host = urlsplit(self.origin).netloc
        return [url for url in self.requests if urlsplit(url).netloc != host]


def log_in(page: Page, username: str) -> None:
    expect(page.locator("#login-view")).to_be_visible()
    page.locator("#login-username").fill(username)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-submit").click()
    expect(page.locator("#workspace")).to_be_visible()
    expect(page.locator("#me")).to_have_text(username)


class Stage:
    """The staff's browser contexts, one per username, logged in once."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.actors: dict[str, Actor] = {}

    def fresh(self) -> Actor:
        """A context of its own, not logged in (closed with the stage)."""
        actor = Actor(self._context(), self.server.base_url)
        self.actors[f"fresh-{uuid.uuid4().hex}"] = actor
        return actor

    def _context(self) -> BrowserContext:
        return self.browser.new_context(
            locale="vi-VN", viewport=LAPTOP, base_url=self.server.base_url
        )

    def staff(self, username: str) -> Page:
        """A new /admin page of ``username``, logged in."""
        actor = self.actors.get(username)
        if actor is None:
            actor = Actor(self._context(), self.server.base_url)
            self.actors[username] = actor
            log_in(actor.open_page(), username)
        else:
            expect(actor.open_page().locator("#workspace")).to_be_visible()
        assert actor.page is not None
        return actor.page

    def actor(self, username: str) -> Actor:
        return self.actors[username]

    def close(self) -> None:
        for actor in self.actors.values():
            actor.context.close()


@pytest.fixture(scope="module")
def stage(browser: Browser, server: LiveServer) -> Iterator[Stage]:
    staged = Stage(browser, server)
    try:
        yield staged
    finally:
        staged.close()


@pytest.fixture(scope="module")
def journal() -> Journal:
    return Journal()


# -- helpers ----------------------------------------------------------------------------------


def new_sender() -> str:
    return f"admin-page-{uuid.uuid4().hex}"


def say(client: httpx.Client, message: str) -> list[str]:
    """What the bot answers a new person through the REST channel."""
    response = client.post(WEBHOOK, json={"sender": new_sender(), "message": message})
    assert response.status_code == 200, response.text
    return [str(reply["text"]) for reply in response.json()]


def answer_of(client: httpx.Client, key: str) -> str:
    """The bot's answer when a person taps the topic's button (``/faq/<key>``)."""
    replies = say(client, f"/faq/{key}")
    assert len(replies) == 1, replies
    return replies[0]


def intent_of(client: httpx.Client, text: str) -> str:
    response = client.post(PARSE, json={"text": text})
    assert response.status_code == 200, response.text
    return str(response.json()["intent"]["name"])


def first_not_understood(client: httpx.Client, candidates: tuple[str, ...]) -> str:
    for text in candidates:
        if intent_of(client, text) == FALLBACK:
            return text
    raise AssertionError(f"the model understands every candidate: {candidates}")


def tab(page: Page, name: str) -> Locator:
    return page.locator(".admin-tabs").get_by_role("button", name=name, exact=True)


def open_topic(page: Page, key: str) -> None:
    """Open an FAQ topic from the list on the first tab."""
    expect(page.locator("#view-faq")).to_be_visible()
    page.locator("#faq-list").get_by_role("button", name=FAQ[key].title, exact=True).click()
    expect(page.locator("#faq-editor-title")).to_have_text(f"{FAQ[key].title} ({key})")


def open_service(page: Page, name: str) -> None:
    tab(page, "Dịch vụ hỗ trợ").click()
    page.locator("#svc-list").get_by_role("button", name=name, exact=True).click()
    expect(page.locator("#svc-editor-title")).to_contain_text(name)


def version_item(page: Page, list_id: str, number: int) -> Locator:
    return page.locator(f"#{list_id} li.version").filter(
        has_text=re.compile(rf"^Phiên bản {number} –")
    )


def edit_answer(stage: Stage, key: str, answer: str) -> None:
    """ed1 saves a draft with a new answer; rev1 publishes it."""
    editor = stage.staff("ed1")
    open_topic(editor, key)
    editor.locator("#faq-answer").fill(answer)
    editor.get_by_role("button", name="Lưu bản nháp").click()
    expect(editor.locator("#notice")).to_have_text(SAVED)
    reviewer = stage.staff("rev1")
    open_topic(reviewer, key)
    expect(reviewer.locator("#faq-answer")).to_have_value(answer)
    reviewer.get_by_role("button", name="Xuất bản", exact=True).click()
    expect(reviewer.locator("#notice")).to_contain_text("Đã xuất bản phiên bản")


def wait_for_the_retrained_model(stage: Stage, journal: Journal) -> Page:
    """The "Mô hình ngôn ngữ" tab until both retrains are done (the page asks the
    server every two seconds while one runs)."""
    if journal.first_retrain_at is None:
        pytest.skip("needs the tests that start the retrains to have run first")
    remaining = journal.first_retrain_at + 2 * RETRAIN_SECONDS - time.monotonic()
    page = stage.staff("rev1")
    tab(page, "Mô hình ngôn ngữ").click()
    expect(page.locator("#training-last")).to_contain_text(
        "Đã dùng mô hình mới", timeout=max(remaining, 1.0) * 1000
    )
    return page


# -- what an edit does ------------------------------------------------------------------------


def test_a_missed_message_is_shown_masked_and_assigned_to_a_topic(
    stage: Stage, client: httpx.Client, journal: Journal
) -> None:
    text = first_not_understood(client, MISSED_CANDIDATES)
    personal = first_not_understood(client, PERSONAL_CANDIDATES)
    assert say(client, text) and say(client, personal)

    page = stage.staff("ed1")
    tab(page, "Tin nhắn bot chưa hiểu").click()
    items = page.locator("#missed-list li.missed")
    item = items.filter(has=page.get_by_text(text, exact=True))
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Bot không hiểu")
    masked = items.filter(has_text="[số điện thoại]")
    expect(masked).to_have_count(1)
    expect(masked.locator(".missed-text")).to_contain_text("[tên]")
    expect(items.filter(has_text=PHONE)).to_have_count(0)
    expect(items.filter(has_text=NAME)).to_have_count(0)
    # every topic's select is labelled
    expect(item.locator("select")).to_have_accessible_name("Chủ đề để gán")

    item.locator("select").select_option(ASSIGNED_TOPIC)
    item.get_by_role("button", name="Gán vào chủ đề").click()
    expect(page.locator("#notice")).to_have_text(
        "Đã gán. Bot sẽ học câu này khi huấn luyện lại xong (xem mục Mô hình ngôn ngữ)."
    )
    journal.note_retrain()
    expect(item).to_have_count(0)
    masked.get_by_role("button", name="Bỏ qua").click()
    expect(page.locator("#notice")).to_have_text("Đã bỏ qua.")
    expect(masked).to_have_count(0)

    assigned = page.request.get("/api/v1/missed?status=assigned").json()["items"]
    (mine,) = [m for m in assigned if m["text"] == text]
    assert mine["assigned_intent"] == ASSIGNED_TOPIC
    assert mine["reason"] == "fallback" and mine["channel"] == "rest"
    # nothing leads back to the person or their conversation
    assert set(mine) == {
        "id",
        "text",
        "reason",
        "channel",
        "guessed_intent",
        "confidence",
        "status",
        "assigned_intent",
        "created_at",
    }
    dismissed = page.request.get("/api/v1/missed?status=dismissed").json()["items"]
    assert [m["text"] for m in dismissed if "[số điện thoại]" in m["text"]], dismissed
    assert all(PHONE not in m["text"] and NAME not in m["text"] for m in dismissed)
    assert intent_of(client, text) == FALLBACK  # learnt only once the model is retrained
    journal.missed_text = text
    assert stage.actor("ed1").page_errors == []


def test_an_edit_published_by_a_reviewer_reaches_the_bot_at_once(
    stage: Stage, client: httpx.Client, server: LiveServer, journal: Journal
) -> None:
    old = FAQ[EDITED].answer
    new_example = next(
        (text for text in NEW_EXAMPLES if intent_of(client, text) != f"faq/{EDITED}"), None
    )
    assert new_example, f"the model already places every candidate in {EDITED}"
    assert answer_of(client, EDITED).startswith(old)

    editor = stage.staff("ed1")
    open_topic(editor, EDITED)
    expect(editor.locator("#faq-answer")).to_have_value(old)
    editor.locator("#faq-answer").fill(NEW_ANSWER)
    examples = editor.locator("#faq-examples")
    shown = [line for line in examples.input_value().split("\n") if line.strip()]
    examples.fill("\n".join([*shown, new_example]))
    expect(editor.locator("#faq-examples-count")).to_have_text(f"({len(shown) + 1} câu)")
    editor.get_by_role("button", name="Lưu bản nháp").click()
    expect(editor.locator("#notice")).to_have_text(SAVED)
    expect(editor.locator("#faq-problems li")).to_have_count(0)
    expect(editor.locator("#faq-status")).to_contain_text("Bản nháp sửa bởi ed1")
    expect(editor.locator("#faq-publish")).to_be_hidden()  # an editor without the right
    assert answer_of(client, EDITED).startswith(old)  # a draft is not what the bot says

    reviewer = stage.staff("rev1")
    expect(reviewer.locator("#me-role")).to_have_text("(Biên tập, được duyệt)")
    open_topic(reviewer, EDITED)
    expect(reviewer.locator("#faq-answer")).to_have_value(NEW_ANSWER)
    expect(reviewer.locator("#faq-examples")).to_have_value(re.compile(re.escape(new_example)))
    publish = reviewer.get_by_role("button", name="Xuất bản", exact=True)
    expect(publish).to_be_enabled()
    publish.click()
    expect(reviewer.locator("#notice")).to_have_text(
        "Đã xuất bản phiên bản 2. Bot dùng nội dung mới ngay."
    )
    expect(reviewer.locator("#faq-status")).to_contain_text(
        "Đang dùng: phiên bản 2, duyệt bởi rev1"
    )
    journal.note_retrain()
    journal.edited_example = new_example

    answer = answer_of(client, EDITED)
    assert answer.startswith(NEW_ANSWER), answer
    assert server.process.poll() is None  # the same server process, never restarted

    tab(reviewer, "Mô hình ngôn ngữ").click()
    expect(reviewer.locator("#training-progress-wrap")).to_be_visible()
    expect(reviewer.locator("#training-stage")).to_have_text(
        re.compile(r"^(Đang huấn luyện: \d+%|Sắp huấn luyện lại: chờ vài giây.*)$")
    )
    expect(reviewer.locator("#training-model")).to_have_text(
        "Mô hình đang dùng chưa học nội dung mới nhất (đang huấn luyện)."
    )
    assert stage.actor("rev1").page_errors == []


def test_a_draft_the_linter_refuses_cannot_be_published(stage: Stage, client: httpx.Client) -> None:
    old = FAQ[REFUSED_TOPIC].answer
    editor = stage.staff("ed1")
    open_topic(editor, REFUSED_TOPIC)
    editor.locator("#faq-answer").fill(BAD_ANSWER)
    editor.locator("#faq-sources").fill("")
    editor.get_by_role("button", name="Lưu bản nháp").click()
    expect(editor.locator("#notice")).to_have_text(SAVED_WITH_PROBLEMS)
    problems = editor.locator("#faq-problems li")
    expect(problems).to_have_count(2)
    expect(problems.filter(has_text=re.compile("sources|nguồn", re.IGNORECASE))).to_have_count(1)
    expect(problems.filter(has_text=re.compile("retired|111", re.IGNORECASE))).to_have_count(1)
    marker = problems.first.evaluate("(li) => getComputedStyle(li, '::before').content")
    assert marker == '"⚠ "', marker

    reviewer = stage.staff("rev1")
    open_topic(reviewer, REFUSED_TOPIC)
    expect(reviewer.locator("#faq-problems li")).to_have_count(2)  # seen before publishing
    reviewer.get_by_role("button", name="Xuất bản", exact=True).click()
    expect(reviewer.locator("#api-error")).to_have_text(REFUSED)
    expect(reviewer.locator("#faq-problems li")).to_have_count(2)
    expect(reviewer.locator("#faq-status")).to_contain_text("Đang dùng: phiên bản 1")
    answer = answer_of(client, REFUSED_TOPIC)
    assert answer.startswith(old), answer
    assert RETIRED not in re.sub(r"\D", "", answer)

    editor = stage.staff("ed1")  # the editor gives the draft up
    open_topic(editor, REFUSED_TOPIC)
    editor.get_by_role("button", name="Bỏ bản nháp").click()
    expect(editor.locator("#notice")).to_have_text("Đã bỏ bản nháp.")
    expect(editor.locator("#faq-answer")).to_have_value(old)
    expect(editor.locator("#faq-discard")).to_be_hidden()
    assert stage.actor("ed1").dialogs[-1].startswith("Bỏ bản nháp này?")


def test_an_older_version_is_compared_and_restored(stage: Stage, client: httpx.Client) -> None:
    old = FAQ[ROLLED_BACK].answer
    edit_answer(stage, ROLLED_BACK, CHANGED_ANSWER)
    assert answer_of(client, ROLLED_BACK).startswith(CHANGED_ANSWER)

    reviewer = stage.staff("rev1")
    open_topic(reviewer, ROLLED_BACK)
    expect(reviewer.locator("#faq-versions li.version")).to_have_count(2)
    first = version_item(reviewer, "faq-versions", 1)
    expect(first).to_contain_text("Phiên bản cũ")
    first.get_by_role("button", name="So sánh với bản đang dùng").click()
    compare = reviewer.locator("#faq-compare")
    expect(compare).to_be_visible()
    expect(compare.locator("h4")).to_have_text("1 mục khác nhau")
    changed = compare.locator("tr.changed")
    expect(changed).to_have_count(1)
    expect(changed.locator("th")).to_have_text("answer")
    expect(changed.locator("td")).to_have_text([old, CHANGED_ANSWER])

    first.get_by_role("button", name="Khôi phục phiên bản này").click()
    expect(reviewer.locator("#notice")).to_have_text(
        "Đã khôi phục: phiên bản 3 có nội dung của phiên bản 1."
    )
    assert stage.actor("rev1").dialogs[-1] == "Khôi phục phiên bản 1 và dùng ngay?"
    expect(reviewer.locator("#faq-status")).to_contain_text("Đang dùng: phiên bản 3")
    expect(reviewer.locator("#faq-answer")).to_have_value(old)
    expect(version_item(reviewer, "faq-versions", 3)).to_contain_text("khôi phục phiên bản 1")
    answer = answer_of(client, ROLLED_BACK)
    assert answer.startswith(old), answer


# -- the numbers, the page itself, who sees what ----------------------------------------------


def test_the_dashboard_shows_the_numbers_with_the_small_number_rule(stage: Stage) -> None:
    page = stage.staff("sup1")
    for name in CONTENT_TABS:  # a supervisor sees the numbers only
        expect(tab(page, name)).to_be_hidden()
    expect(page.locator("#role-denied")).to_be_hidden()
    expect(page.locator("#view-stats")).to_be_visible()
    expect(page.locator("#stats-from")).not_to_have_value("")  # the first report is in
    page.locator("#stats-from").fill(STATS_START.isoformat())
    page.locator("#stats-to").fill(STATS_END.isoformat())
    page.locator("#stats-form").get_by_role("button", name="Xem").click()

    channels = page.locator('[data-table="channels"] table')
    expect(channels.locator("caption")).to_have_text("Theo kênh")

    def cell(label: str) -> Locator:
        return channels.locator("tr").filter(has=page.locator("th", has_text=label)).locator("td")

    expect(cell("Telegram")).to_have_text("12")
    expect(cell("Zalo")).to_have_text("<5")  # never the 3 itself
    expect(cell("Facebook Messenger")).to_have_text("ẩn")
    expect(cell("Tổng")).to_have_text(str(sum(STATS_PEOPLE.values())))
    expect(page.locator("#stats-suppression")).to_contain_text("<5")

    query = f"from={STATS_START.isoformat()}&to={STATS_END.isoformat()}"
    report = page.request.get(f"/api/v1/stats?{query}").json()
    charts = page.locator("#stats-charts figure.chart > svg")
    expect(charts).to_have_count(len(report["charts"]))
    assert charts.count() >= 4
    assert charts.first.evaluate("(svg) => svg.namespaceURI") == "http://www.w3.org/2000/svg"
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0

    measures = page.locator("#stats-measures .measure")
    expect(measures).to_have_count(len(report["measures"]))
    fallback = measures.filter(has_text="Tỷ lệ tin nhắn bot không hiểu")
    expect(fallback.locator(".measure-value")).to_have_text(f"{FALLBACK_RATE} %")
    waits = measures.filter(has_text="Thời gian chờ tư vấn viên (trung vị)")
    expect(waits.locator(".measure-value")).to_have_text("Không có dữ liệu.")

    link = page.get_by_role("link", name="Tải CSV")
    expect(link).to_have_attribute("href", f"/api/v1/stats.csv?{query}")
    download = page.request.get(str(link.get_attribute("href")))
    assert download.status == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(download.text().lstrip("\ufeff"))))
    people = {
        row["row"]: row["value"]
        for row in rows
        if row["table"] == "channels" and row["column"] == "people"
    }
    total = str(sum(STATS_PEOPLE.values()))
    assert people == {"telegram": "12", "zalo": "<5", "facebook": "ẩn", "total": total}, people
    assert stage.actor("sup1").page_errors == []


def test_the_page_is_labelled_quiet_and_self_contained(stage: Stage) -> None:
    actor = stage.fresh()
    page = actor.open_page()
    response = page.request.get("/admin")
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp, csp
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("[style]").count() == 0
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    assert unlabelled(page) == []  # the login form
    log_in(page, "ed1")

    open_topic(page, EDITED)
    open_service(page, "Sở Y tế Thành phố Hà Nội")
    tab(page, "Tin nhắn bot chưa hiểu").click()
    expect(page.locator("#view-missed")).to_be_visible()
    tab(page, "Thống kê").click()
    expect(page.locator("#stats-tables table").first).to_be_visible()
    tab(page, "Mô hình ngôn ngữ").click()
    expect(tab(page, "Mô hình ngôn ngữ")).to_have_attribute("aria-current", "page")
    expect(page.locator("#training-model")).not_to_be_empty()
    controls = page.locator("input, select, textarea")
    assert controls.count() >= 25
    assert unlabelled(page) == []

    assert actor.requests, "no requests were recorded"
    assert actor.foreign_requests() == []
    assert actor.page_errors == []
    # The logged-out page asks who is logged in (401, as the API's contract says) and
    # Chromium notes that as "Failed to load resource"; nothing else is logged.
    assert actor.console_errors == [LOGGED_OUT_PROBE], actor.console_errors


def unlabelled(page: Page) -> list[str]:
    """Every form control without a label (a <label>, aria-label or aria-labelledby)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.type !== 'hidden')
            .filter((el) => !(el.labels && el.labels.length)
                && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
            .map((el) => el.id || el.outerHTML)"""
    )
    return found


def test_a_counsellor_is_told_the_page_is_not_for_them(stage: Stage) -> None:
    page = stage.staff("co1")
    expect(page.locator("#role-denied")).to_be_visible()
    expect(page.locator("#role-denied")).to_have_text(
        re.compile(r"^Trang này dành cho biên tập viên và quản trị viên\.")
    )
    for name in CONTENT_TABS:
        expect(tab(page, name)).to_be_hidden()
    expect(page.locator("section.view:visible")).to_have_count(0)


# -- roles, problems in Vietnamese, comparing services ---------------------------------------


def test_a_counsellor_sees_no_tab_at_all(stage: Stage) -> None:
    page = stage.staff("co1")
    expect(page.locator("#role-denied")).to_be_visible()
    expect(tab(page, "Thống kê")).to_be_hidden(timeout=2_000)


def test_the_problems_shown_to_editors_are_in_vietnamese(stage: Stage) -> None:
    editor = stage.staff("ed1")
    open_topic(editor, "marriage_brokers")
    editor.locator("#faq-sources").fill("")
    editor.locator("#faq-answer").fill(BAD_ANSWER)
    editor.get_by_role("button", name="Lưu bản nháp").click()
    try:
        expect(editor.locator("#notice")).to_have_text(SAVED_WITH_PROBLEMS)
        problems = editor.locator("#faq-problems li").all_inner_texts()
        assert len(problems) == 2, problems
    finally:
        editor.get_by_role("button", name="Bỏ bản nháp").click()
        expect(editor.locator("#notice")).to_have_text("Đã bỏ bản nháp.")
    assert all(VIETNAMESE_LETTER.search(problem) for problem in problems), problems


def test_a_service_version_can_be_compared(stage: Stage) -> None:
    name = "Sở Y tế Thành phố Hà Nội"
    editor = stage.staff("ed1")
    open_service(editor, name)
    editor.locator("#svc-hours").fill("Giờ hành chính, thứ Hai đến thứ Sáu")
    editor.locator("#svc-form").get_by_role("button", name="Lưu bản nháp").click()
    expect(editor.locator("#notice")).to_have_text("Đã lưu bản nháp.")
    reviewer = stage.staff("rev1")
    open_service(reviewer, name)
    reviewer.locator("#svc-form").get_by_role("button", name="Xuất bản", exact=True).click()
    expect(reviewer.locator("#notice")).to_contain_text("Đã xuất bản phiên bản 2.")
    first = version_item(reviewer, "svc-versions", 1)
    first.get_by_role("button", name="So sánh với bản đang dùng").click()
    expect(reviewer.locator("#view-services table.compare-table")).to_be_visible(timeout=2_000)


def test_saving_a_service_keeps_the_fields_the_form_does_not_show(stage: Stage) -> None:
    editor = stage.staff("ed1")
    open_service(editor, "Tổng đài quốc gia 111 (phòng, chống mua bán người và bảo vệ trẻ em)")
    editor.locator("#svc-hours").fill("24/7, cả ngày lễ")
    editor.locator("#svc-form").get_by_role("button", name="Lưu bản nháp").click()
    try:
        expect(editor.locator("#notice")).to_have_text("Đã lưu bản nháp.")
        draft = editor.request.get("/api/v1/services/hotline-111").json()["draft"]["data"]
    finally:
        editor.locator("#svc-form").get_by_role("button", name="Bỏ bản nháp").click()
        expect(editor.locator("#notice")).to_have_text("Đã bỏ bản nháp.")
    assert draft["hours"] == "24/7, cả ngày lễ"
    assert draft["free"] is True and draft["languages"] == ["vi"], draft


def test_a_service_covers_one_unit_or_the_whole_country(stage: Stage) -> None:
    """The directory's rule: provinces is [all] or one unit in force; the form offers
    exactly those choices, and a record naming two units cannot be published."""
    editor = stage.staff("ed1")
    open_service(editor, "Sở Y tế Thành phố Hà Nội")
    options = editor.locator("#svc-province option").all_inner_texts()
    assert options[0] == "Toàn quốc" and len(options) == 35, options
    assert editor.locator("#svc-province").evaluate("(select) => select.multiple") is False


# -- after the retrains -------------------------------------------------------------------------


def test_the_retrained_model_knows_the_new_example(
    stage: Stage, client: httpx.Client, journal: Journal
) -> None:
    if journal.edited_example is None:
        pytest.skip("needs test_an_edit_published_by_a_reviewer_reaches_the_bot_at_once")
    page = wait_for_the_retrained_model(stage, journal)
    expect(page.locator("#training-progress-wrap")).to_be_hidden()
    expect(page.locator("#training-model")).to_have_text(
        "Mô hình đang dùng đã khớp với nội dung mới nhất."
    )
    status = page.request.get("/api/v1/training/status").json()
    assert status["training"] is False and status["model"]["current"] is True
    # the changes made together were trained together (one run; two if the tests
    # between them took longer than the delay), each installed: nothing else (the
    # rollback, the refused draft, the services) made the model lag the content
    states = [run["state"] for run in status["recent"]]
    assert states in (["installed"], ["installed", "installed"]), status
    assert intent_of(client, journal.edited_example) == f"faq/{EDITED}"
    assert answer_of(client, EDITED).startswith(NEW_ANSWER)  # the swap kept the content


def test_the_assigned_message_now_reaches_its_topic(
    stage: Stage, client: httpx.Client, journal: Journal
) -> None:
    if journal.missed_text is None:
        pytest.skip("needs test_a_missed_message_is_shown_masked_and_assigned_to_a_topic")
    wait_for_the_retrained_model(stage, journal)
    assert intent_of(client, journal.missed_text) == ASSIGNED_TOPIC
    assert stage.actor("rev1").page_errors == []
