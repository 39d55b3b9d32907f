"""Splitting replies to platform message limits (``bot.channels.text``).

Checks, as properties over Vietnamese-like text with emoji, that every part fits, none is
empty and nothing is lost or added; that over-long words are cut and emoji count as two
units; that clean boundaries are preferred (paragraph, line, sentence, space); that
buttons go with the last part; and that everything the bot actually sends (fixed
responses, FAQ answers, services lists for all 34 units) fits every channel's limit.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import services_directory
from actions.services import URGENT_KINDS, service_line
from bot.channels.text import CHANNEL_TEXT_LIMITS, split_reply, split_text, text_length
from bot.config import PROJECT_ROOT
from bot.content.faq import answer_reply, more_reply, read_faq_dir, to_entry
from bot.domain import Button, Reply
from bot.engine.responses import ResponseCatalog, fill

REPO = PROJECT_ROOT
MESSENGER_LIMIT = CHANNEL_TEXT_LIMITS["facebook"]
PROPERTY_LIMITS = [50, 2000, 4096]

LETTERS = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
)
LETTERS += LETTERS.upper() + "0123456789"
EMOJI = ["😀", "🙏", "❤️", "🇻🇳", "👩‍👩‍👧", "⚠️", "☎"]
SEPARATORS = [" ", " ", " ", "\n", "\n\n", ". ", "! ", "? ", "… ", ", ", "; ", ": ", " \n "]

WORD = st.text(alphabet=LETTERS, min_size=1, max_size=12)
TOKEN = st.one_of(WORD, WORD, st.sampled_from(EMOJI))
PIECE = st.tuples(TOKEN, st.sampled_from(SEPARATORS)).map("".join)


def collapse(text: str) -> str:
    return " ".join(text.split())


def assert_split_well(text: str, limit: int, parts: list[str]) -> None:
    assert parts
    for part in parts:
        assert text_length(part) <= limit
        assert part.strip() == part != ""
    assert collapse(" ".join(parts)) == collapse(text)


@st.composite
def long_text(draw: st.DrawFn, limit: int) -> str:
    """Vietnamese-like text: a few drawn paragraphs, cycled with drawn separators until
    the text is one to three times the limit (hypothesis cannot draw 4,000 pieces)."""
    chunk = st.lists(PIECE, min_size=1, max_size=30).map("".join)
    chunks = draw(st.lists(chunk, min_size=1, max_size=4))
    joins = draw(st.lists(st.sampled_from(SEPARATORS), min_size=1, max_size=6))
    size = sum(map(len, chunks)) / len(chunks)
    repeats = draw(st.integers(1, 3)) * max(1, round(limit / size))
    return "".join(chunks[n % len(chunks)] + joins[n % len(joins)] for n in range(repeats))


# -- properties --------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", PROPERTY_LIMITS)
@hypothesis_settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_parts_fit_and_nothing_is_lost_or_added(limit: int, data: st.DataObject) -> None:
    text = data.draw(long_text(limit))
    parts = split_text(text, limit)
    assert_split_well(text, limit, parts)
    if text_length(text.strip()) > limit:
        assert len(parts) > 1


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(PIECE, min_size=1, max_size=40),
    limit=st.integers(min_value=24, max_value=120),
)
def test_short_texts_at_any_limit_above_the_longest_word(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    assert_split_well(text, limit, split_text(text, limit))


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    text=st.lists(st.sampled_from([*LETTERS[:20], *EMOJI, " ", "\n", "."]), max_size=400)
    .map("".join)
    .filter(str.strip),
    limit=st.sampled_from([2, 3, 7, 50]),
)
def test_long_words_are_cut_without_losing_characters(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    for part in parts:
        assert text_length(part) <= limit
        assert part.strip() == part != ""
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)


@pytest.mark.parametrize("limit", [1, 50, 4096])
def test_a_text_that_fits_is_one_stripped_part(limit: int) -> None:
    assert split_text("  Xin chào  \n", max(limit, 9)) == ["Xin chào"]
    exact = "ạ" * limit
    assert split_text(exact, limit) == [exact]


# -- cutting -----------------------------------------------------------------------------------


def test_a_word_longer_than_the_limit_is_cut() -> None:
    assert split_text("Gọi 111 ngay " + "x" * 25 + " nhé", 10) == [
        "Gọi 111",
        "ngay",
        "x" * 10,
        "x" * 10,
        "x" * 5 + " nhé",
    ]


def test_text_without_spaces_is_cut_into_full_parts() -> None:
    assert split_text("a" * 4500, 2000) == ["a" * 2000, "a" * 2000, "a" * 500]
    assert split_text("đ" * 9, 3) == ["đđđ"] * 3


def test_emoji_count_as_two_units() -> None:
    assert text_length("😀") == 2
    assert text_length("Chào 😀") == 7
    parts = split_text("😀" * 3000, 4096)
    assert parts == ["😀" * 2048, "😀" * 952]
    assert all(text_length(p) <= 4096 for p in parts)


def test_an_emoji_is_never_split_in_half() -> None:
    parts = split_text("a" + "😀" * 3, 2)
    assert parts == ["a", "😀", "😀", "😀"]


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_rejected(limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be positive"):
        split_text("Xin chào", limit)


def test_an_emoji_wider_than_the_limit_does_not_hang() -> None:
    import subprocess
    import sys

    code = "from bot.channels.text import split_text; print(split_text('😀😀', 1))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=3
        )
    except subprocess.TimeoutExpired:
        pytest.fail("split_text('😀😀', 1) did not return within 3 s")
    assert done.returncode == 0


# -- boundaries --------------------------------------------------------------------------------


def sentences(count: int) -> str:
    return " ".join(f"Đây là câu số {n} về quyền của bạn." for n in range(count))


def test_a_paragraph_break_near_the_limit_is_preferred() -> None:
    first = sentences(50)  # about 1,800 characters
    second = sentences(10)
    assert 1700 < len(first) < 2000 < len(first) + len(second)
    assert split_text(f"{first}\n\n{second}", 2000) == [first, second]


def test_a_line_break_is_preferred_over_a_sentence_end() -> None:
    first = sentences(2)
    text = f"{first}\nDòng sau. Còn nữa đây."
    limit = len(first) + 12
    assert split_text(text, limit)[0] == first


def test_a_sentence_end_is_preferred_over_a_plain_space() -> None:
    text = "Bạn gọi 111 nhé. Tổng đài miễn phí và làm việc suốt ngày đêm cả tuần"
    parts = split_text(text, 40)
    assert parts[0] == "Bạn gọi 111 nhé."
    assert parts[1].startswith("Tổng đài")


@pytest.mark.parametrize("mark", [".", "!", "?", "…", ";", ":"])
def test_every_sentence_mark_counts(mark: str) -> None:
    text = f"Câu một{mark} rồi câu hai dài hơn một chút nữa"
    assert split_text(text, 30)[0] == f"Câu một{mark}"


def test_a_mark_inside_a_number_is_not_a_sentence_end() -> None:
    text = "Phí 2.000.000 đồng là quá cao so với luật"
    parts = split_text(text, 25)
    assert parts[0] == "Phí 2.000.000 đồng là quá"


def test_a_space_right_after_the_limit_counts() -> None:
    assert split_text("a" * 50 + " " + "b" * 10, 50) == ["a" * 50, "b" * 10]


def test_the_break_is_the_last_one_that_fits() -> None:
    text = "một hai ba bốn năm sáu bảy tám chín mười"
    assert split_text(text, 20) == ["một hai ba bốn năm", "sáu bảy tám chín", "mười"]


# -- replies -----------------------------------------------------------------------------------


BUTTONS = (
    Button(title="Gặp tư vấn viên", payload="/request_counsellor"),
    Button(title="Tìm nơi hỗ trợ", payload="/find_service"),
)


def test_split_reply_puts_the_buttons_on_the_last_part_only() -> None:
    reply = Reply(text=sentences(20), buttons=BUTTONS)
    parts = split_reply(reply, 100)
    assert len(parts) > 2
    assert [p.buttons for p in parts[:-1]] == [()] * (len(parts) - 1)
    assert parts[-1].buttons == BUTTONS
    assert [p.text for p in parts] == split_text(reply.text, 100)


def test_split_reply_of_a_short_reply_keeps_it_whole() -> None:
    reply = Reply(text="Xin chào", buttons=BUTTONS)
    assert split_reply(reply, 2000) == [reply]


# -- what the bot sends ------------------------------------------------------------------------


def fixed_responses() -> list[tuple[str, str]]:
    catalog = ResponseCatalog.from_file(REPO / "data" / "responses.yml")
    return [
        (name, variant["text"])
        for name, variants in catalog.as_rasa_domain().items()
        for variant in variants
    ]


def faq_messages() -> list[tuple[str, str]]:
    entries = [to_entry(faq) for faq in read_faq_dir(REPO / "data" / "faq")]
    return [(f"faq/{e.key}", answer_reply(e).text) for e in entries] + [
        (f"faq_more/{e.key}", more_reply(e).text) for e in entries
    ]


def services_messages() -> list[tuple[str, str]]:
    directory = services_directory.default_directory()
    catalog = ResponseCatalog.from_file(REPO / "data" / "responses.yml")
    national = "\n".join(service_line(s) for s in directory.national(URGENT_KINDS))
    messages = [
        ("national", national),
        (
            "national-sent",
            fill(catalog.get("utter_services_national").text, {"services": national}),
        ),
        (
            "unknown-place-sent",
            fill(catalog.get("utter_services_unknown_place").text, {"services": national}),
        ),
    ]
    for name, unit in sorted(directory.units.items()):
        local = "\n".join(service_line(s) for s in directory.local(name))
        messages.append((f"local/{name}", local))
        sent = fill(
            catalog.get("utter_services_local").text, {"place": unit.label, "services": local}
        )
        messages.append((f"local-sent/{name}", sent))
    return messages


SENT = fixed_responses() + faq_messages() + services_messages()


def test_the_sent_messages_cover_everything() -> None:
    names = [name for name, _ in SENT]
    assert len([n for n in names if n.startswith("local/")]) == 34
    assert len([n for n in names if n.startswith("faq/")]) >= 20
    assert "utter_greet" in names
    assert all(text.strip() for _, text in SENT)


@pytest.mark.parametrize("channel", sorted(CHANNEL_TEXT_LIMITS))
@pytest.mark.parametrize(("name", "text"), SENT, ids=[name for name, _ in SENT])
def test_every_sent_message_fits_each_channel(channel: str, name: str, text: str) -> None:
    limit = CHANNEL_TEXT_LIMITS[channel]
    assert_split_well(text, limit, split_text(text, limit))


@pytest.mark.parametrize(("name", "text"), faq_messages(), ids=[n for n, _ in faq_messages()])
def test_every_faq_message_fits_one_messenger_message(name: str, text: str) -> None:
    assert text_length(text) <= MESSENGER_LIMIT
    assert split_text(text, MESSENGER_LIMIT) == [text]


def test_services_lists_show_111_first_and_no_unverified_record() -> None:
    national = dict(services_messages())["national"]
    assert national.splitlines()[0].startswith("• Tổng đài quốc gia 111")
    assert ": 111 (24/7, miễn phí)." in national.splitlines()[0]
    local = dict(services_messages())["local/Huế"]
    assert local.splitlines()[0].startswith("• UBND xã")
    assert "Trợ giúp pháp lý" not in local  # unverified, never shown
