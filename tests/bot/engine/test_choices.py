"""Picking a button by typing (bot/engine/choices.py ``resolve_choice``).

A number ("1", " 2 ", "2.", "3)", "số 2", "so 2") or a button's own title (exact, without
diacritics, in another case, with trailing punctuation) becomes that button's payload;
anything else (0, numbers past the list, three digits, a sentence that merely contains a
title, any text when there are no buttons) is returned unchanged.
"""

from __future__ import annotations

import unicodedata

import pytest

from bot.domain import Button
from bot.engine.choices import resolve_choice

BUTTONS = (
    Button("Đồng ý", "/agree"),
    Button("Không, cảm ơn", "/no_thanks"),
    Button("Gặp tư vấn viên", "/request_counsellor"),
)


@pytest.mark.parametrize(
    ("typed", "payload"),
    [
        ("1", "/agree"),
        (" 2 ", "/no_thanks"),
        ("2.", "/no_thanks"),
        ("3)", "/request_counsellor"),
        ("số 2", "/no_thanks"),
        ("so 2", "/no_thanks"),
        ("Số 3", "/request_counsellor"),
        ("SỐ 1", "/agree"),
        ("số2", "/no_thanks"),
        ("02", "/no_thanks"),
    ],
)
def test_a_number_picks_its_button(typed: str, payload: str) -> None:
    assert resolve_choice(typed, BUTTONS) == payload


@pytest.mark.parametrize("typed", ["0", "4", "99", "số 0", "so 7", "-1", "1.5", "2 3", "#2"])
def test_zero_numbers_past_the_list_and_other_numbers_pick_nothing(typed: str) -> None:
    assert resolve_choice(typed, BUTTONS) == typed


@pytest.mark.parametrize("typed", ["001", "100", "123", "999"])
def test_a_three_digit_number_is_unchanged(typed: str) -> None:
    many = tuple(Button(f"Lựa chọn {i}", f"/choice_{i}") for i in range(1, 151))
    assert resolve_choice("12", many) == "/choice_12"  # two digits still pick from a long list
    assert resolve_choice(typed, many) == typed
    assert resolve_choice(typed, BUTTONS) == typed


@pytest.mark.parametrize(
    ("typed", "payload"),
    [
        ("Đồng ý", "/agree"),
        ("dong y", "/agree"),
        ("ĐỒNG Ý", "/agree"),
        ("Dong Y", "/agree"),
        ("dong y!", "/agree"),
        ("đồng ý.", "/agree"),
        ("  gặp tư vấn viên...  ", "/request_counsellor"),
        ("gap tu van vien?", "/request_counsellor"),
        ("Không, cảm ơn", "/no_thanks"),
        ("khong cam on", "/no_thanks"),
        ("không cảm ơn!!", "/no_thanks"),
        (unicodedata.normalize("NFD", "Đồng ý"), "/agree"),  # decomposed Vietnamese input
    ],
)
def test_a_typed_title_picks_its_button(typed: str, payload: str) -> None:
    assert resolve_choice(typed, BUTTONS) == payload


@pytest.mark.parametrize(
    "typed",
    [
        "tôi đồng ý với bạn",
        "dong y gap tu van vien",
        "tôi muốn gặp tư vấn viên ngay",
        "không",
        "đồng",
        "!!!",
        "",
        "   ",
    ],
)
def test_a_sentence_that_merely_contains_a_title_is_unchanged(typed: str) -> None:
    assert resolve_choice(typed, BUTTONS) == typed


@pytest.mark.parametrize("typed", ["1", "2.", "số 2", "Đồng ý", "dong y", ""])
def test_without_buttons_the_text_is_unchanged(typed: str) -> None:
    assert resolve_choice(typed, ()) == typed
    assert resolve_choice(typed, []) == typed


def test_the_first_of_two_buttons_with_the_same_title_wins() -> None:
    twins = (Button("Có", "/first"), Button("có", "/second"))
    assert resolve_choice("co", twins) == "/first"
    assert resolve_choice("2", twins) == "/second"


def test_a_decomposed_so_number_picks_its_button() -> None:
    typed = unicodedata.normalize("NFD", "số 2")
    assert typed != "số 2"
    assert resolve_choice(typed, BUTTONS) == "/no_thanks"
