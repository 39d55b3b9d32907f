"""The web chat page at ``/chat`` in a real browser (Debian's chromium via Playwright).

A phone-sized viewport, the real server in its own process, and no network: the only
site outside the server the page may go to is the neutral site of the quick exit, which
is intercepted and answered locally.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import headless_chromium, require_chromium
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 360, "height": 740}
NEUTRAL_SITE = "https://www.google.com/"
NEUTRAL_BODY = "<!doctype html><html><head><title>Neutral</title></head><body>neutral</body>"
SESSION_KEY = "dh_session"
SCREENSHOT = Path("/tmp/chat_page.png")
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
GREETING = re.compile(r"^Xin chào")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _chromium_installed() -> None:
    """Checked before any server starts."""
    require_chromium()


@pytest.fixture
def browser(module_server: Any) -> Iterator[Browser]:
    with headless_chromium() as launched:  # after the server is up (see its docstring)
        yield launched


class Recorder:
    """Every request, web socket and console error a browser context produced."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.websockets: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def context(browser: Browser, recorder: Recorder) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="vi-VN",
    )
    context.set_default_timeout(15_000)

    def neutral_site(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=NEUTRAL_BODY)

    context.route("https://www.google.com/**", neutral_site)
    context.on("request", lambda request: recorder.requests.append(request.url))
    # Whatever the page runs at the start of every document, before chat.js.
    context.add_init_script(
        "window.__initialSession = window.sessionStorage.getItem('dh_session');"
    )
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, recorder: Recorder) -> Page:
    page = context.new_page()
    page.on("websocket", lambda ws: recorder.websockets.append(ws.url))
    page.on(
        "console",
        lambda msg: recorder.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda error: recorder.page_errors.append(str(error)))
    return page


# -- helpers ---------------------------------------------------------------------------------------


def open_chat(page: Page, module_server: Any) -> Any:
    response = page.goto(f"{module_server.base_url}/chat")
    assert response is not None
    assert response.status == 200
    # Connected: chat.js clears the status line when the server says "ready".
    expect(page.locator("#status")).to_have_text("")
    return response


def say(page: Page, text: str) -> None:
    box = page.locator("#text")
    box.click()
    box.press_sequentially(text)
    box.press("Enter")


def greet(page: Page) -> None:
    say(page, "xin chào")
    expect(page.locator(".msg.user")).to_have_text(["xin chào"])
    expect(page.locator(".msg.bot")).to_have_text([GREETING])
    expect(page.locator(".chips .chip")).to_have_count(2)


def session_in_storage(page: Page) -> str | None:
    value: str | None = page.evaluate(f"window.sessionStorage.getItem('{SESSION_KEY}')")
    return value


def assert_left_for_neutral_site(page: Page, module_server: Any, old_session: str) -> None:
    page.wait_for_url(f"{NEUTRAL_SITE}**")
    assert urlsplit(page.url).hostname == "www.google.com"
    expect(page.locator("body")).to_have_text("neutral")
    # location.replace: the chat is not in the history. The entry before it was /health.
    page.go_back()
    assert "/chat" not in page.url, page.url
    assert page.url == f"{module_server.base_url}/health"
    # A fresh visit starts with nothing from before in this tab.
    page.goto(f"{module_server.base_url}/chat")
    assert page.evaluate("window.__initialSession") is None
    expect(page.locator("#status")).to_have_text("")
    assert session_in_storage(page) not in (None, old_session)
    assert page.evaluate("window.localStorage.length") == 0
    expect(page.locator("#log .msg")).to_have_count(0)


# -- tests -----------------------------------------------------------------------------------------


def test_page_is_vietnamese_with_quick_exit_and_hotlines(page: Page, module_server: Any) -> None:
    response = open_chat(page, module_server)
    assert page.locator("html").get_attribute("lang") == "vi"
    exit_button = page.get_by_role("button", name="Thoát nhanh")
    expect(exit_button).to_be_visible()
    expect(exit_button).to_be_in_viewport()
    note = page.locator(".note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("113")
    expect(note).to_contain_text("111")
    expect(page.locator('a[href="tel:113"]')).to_be_visible()
    expect(page.locator('a[href="tel:111"]')).to_be_visible()
    expect(page.locator("#text")).to_be_in_viewport()
    expect(page.get_by_role("button", name="Gửi")).to_be_in_viewport()
    csp = response.headers.get("content-security-policy")
    assert csp, response.headers
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp


def test_typing_a_greeting_shows_both_bubbles_and_chips(page: Page, module_server: Any) -> None:
    open_chat(page, module_server)
    greet(page)
    # The server acknowledged the message: the bubble is no longer marked pending.
    expect(page.locator(".msg.user")).not_to_have_class(re.compile(r"\bpending\b"))
    expect(page.locator(".chips .chip")).to_have_text(["Tôi đang gặp nguy hiểm", "Gặp tư vấn viên"])
    expect(page.locator("#text")).to_have_value("")
    expect(page.locator("#status")).to_have_text("")


def test_tapping_the_danger_chip_gives_113_and_111(page: Page, module_server: Any) -> None:
    open_chat(page, module_server)
    greet(page)
    chip = page.get_by_role("button", name="Tôi đang gặp nguy hiểm")
    expect(chip).to_be_in_viewport()
    chip.tap()
    # The chip's title is shown as the person's message; the payload is what is sent.
    expect(page.locator(".msg.user")).to_have_text(["xin chào", "Tôi đang gặp nguy hiểm"])
    bot = page.locator(".msg.bot")
    expect(bot).to_have_count(2)
    expect(bot.nth(1)).to_contain_text("113")
    expect(bot.nth(1)).to_contain_text("111")
    # A chip can be used once.
    expect(chip).to_be_disabled()
    page.screenshot(path=str(SCREENSHOT), full_page=False)


def test_quick_exit_stays_in_view_during_screening(page: Page, module_server: Any) -> None:
    open_chat(page, module_server)
    say(page, "kiểm tra giúp tôi")
    page.get_by_role("button", name="Bắt đầu").tap()
    for _ in range(4):  # answer a few questions by tapping, as a person would
        expect(page.get_by_role("button", name="Bỏ qua").last).to_be_enabled()
        page.get_by_role("button", name="Bỏ qua").last.tap()
    expect(page.locator(".msg.bot").last).to_contain_text("?")
    for name in ("Có", "Không", "Không chắc", "Bỏ qua"):
        expect(page.get_by_role("button", name=name, exact=True).last).to_be_visible()
    exit_button = page.get_by_role("button", name="Thoát nhanh")
    expect(exit_button).to_be_visible()
    expect(exit_button).to_be_in_viewport()


def test_markup_is_shown_as_text_and_never_runs(page: Page, module_server: Any) -> None:
    open_chat(page, module_server)
    say(page, XSS)
    bubble = page.locator(".msg.user")
    expect(bubble).to_have_count(1)
    expect(page.locator(".msg.bot")).to_have_count(1)  # the turn went all the way round
    assert bubble.evaluate("el => el.textContent") == XSS
    assert page.locator("#log img").count() == 0
    assert page.locator("#log script").count() == 0
    assert bubble.evaluate("el => el.children.length") == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_quick_exit_button_leaves_no_trace(page: Page, module_server: Any) -> None:
    page.goto(f"{module_server.base_url}/health")
    open_chat(page, module_server)
    greet(page)
    old_session = session_in_storage(page)
    assert old_session
    page.get_by_role("button", name="Thoát nhanh").tap()
    assert_left_for_neutral_site(page, module_server, old_session)


def test_three_quick_escapes_leave_like_the_button(page: Page, module_server: Any) -> None:
    page.goto(f"{module_server.base_url}/health")
    open_chat(page, module_server)
    greet(page)
    old_session = session_in_storage(page)
    assert old_session
    title = page.title()
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    # Two presses are not enough (so a stray Escape does not throw the person out).
    assert page.title() == title
    assert session_in_storage(page) == old_session
    page.keyboard.press("Escape")
    assert_left_for_neutral_site(page, module_server, old_session)


def test_page_loads_nothing_from_third_parties(
    page: Page, module_server: Any, recorder: Recorder
) -> None:
    open_chat(page, module_server)
    greet(page)
    origin = urlsplit(module_server.base_url)
    assert recorder.requests, "no requests were recorded"
    foreign = [url for url in recorder.requests if urlsplit(url).netloc != origin.netloc]
    assert foreign == [], foreign
    assert {urlsplit(url).path for url in recorder.requests} >= {
        "/chat",
        "/static/chat.css",
        "/static/chat.js",
    }
    assert [urlsplit(url).netloc for url in recorder.websockets] == [origin.netloc]
    assert recorder.console_errors == []
    assert recorder.page_errors == []
    # Leaving through the quick exit goes to the neutral site and nowhere else.
    page.get_by_role("button", name="Thoát nhanh").tap()
    page.wait_for_url(f"{NEUTRAL_SITE}**")
    foreign = [url for url in recorder.requests if urlsplit(url).netloc != origin.netloc]
    assert foreign, recorder.requests
    assert {urlsplit(url).hostname for url in foreign} == {"www.google.com"}
