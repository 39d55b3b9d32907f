"""Masking what could identify a person before editors see a message (bot.nlu.masking).

Phone numbers in the ways Vietnamese people write them, every other number (amounts,
ages, dates), e-mails, links, @handles, names after a cue (with or without diacritics,
in lower case), names underthesea recognises; words after "tôi là" that are not names
stay; text with nothing personal, NFD input, empty and very long input.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.nlu.masking import (
    EMAIL,
    HANDLE,
    LINK,
    NAME,
    NER_CHUNK_CHARS,
    NER_MAX_PIECES,
    NUMBER,
    PHONE,
    fold,
    mask_personal,
)

DIGIT = re.compile(r"\d")


@pytest.fixture
def no_name_model(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """underthesea's tagger replaced by one that finds nothing and notes how much text
    it was given each time (the rules alone are under test)."""
    import underthesea

    lengths: list[int] = []

    def tag_nothing(text: str) -> list[Any]:
        lengths.append(len(text))
        return []

    monkeypatch.setattr(underthesea, "ner", tag_nothing)
    return lengths


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("gọi cho em 0912 345 678 nhé", f"gọi cho em {PHONE} nhé"),
        ("số của chị: +84 912345678", f"số của chị: {PHONE}"),
        ("0912.345.678", PHONE),
        ("0912-345-678 ạ", f"{PHONE} ạ"),
        ("zalo 84912345678", f"zalo {PHONE}"),
        ("bàn 024 3333 3333", f"bàn {PHONE}"),
    ],
)
def test_phone_numbers_in_the_ways_people_write_them(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


def test_a_phone_number_with_brackets_leaves_no_digit() -> None:
    masked = mask_personal("(+84) 912 345 678")
    assert PHONE in masked and not DIGIT.search(masked)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("họ đòi 5.000.000 đồng", f"họ đòi {NUMBER} đồng"),
        ("phí 150 triệu", f"phí {NUMBER} triệu"),
        ("lương 1,200 USD một tháng", f"lương {NUMBER} USD một tháng"),
        ("em 17 tuổi", f"em {NUMBER} tuổi"),
        ("ngày 12/03/2024 em bay", f"ngày {NUMBER} em bay"),
        ("hẹn lúc 10:30 ở bến xe", f"hẹn lúc {NUMBER} ở bến xe"),
        ("hộ chiếu C1234567", f"hộ chiếu C{NUMBER}"),
    ],
)
def test_amounts_ages_dates_and_other_numbers(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


@pytest.mark.parametrize(
    "text", ["họ đòi 2.500.000đ", "biển số 29A-123.45", "em 17t", "sđt0912345678"]
)
def test_no_digit_survives_odd_spellings(text: str) -> None:
    assert not DIGIT.search(mask_personal(text))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail em: lan.nguyen+vn@gmail.com nhé", f"mail em: {EMAIL} nhé"),
        ("xem https://vieclam-dailoan.example.com/dang-ky?id=7", f"xem {LINK}"),
        ("vào www.tuyendung.vn mà xem", f"vào {LINK} mà xem"),
        ("trang congtyabc.vn/tuyen-dung", f"trang {LINK}"),
        ("nhắn @lan_nguyen.99 trên tele", f"nhắn {HANDLE} trên tele"),
    ],
)
def test_emails_links_and_handles(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Tên tôi là Nguyễn Thị Lan, tôi cần giúp", f"Tên tôi là {NAME}, tôi cần giúp"),
        ("ten toi la Nguyen Thi Lan", f"ten toi la {NAME}"),
        ("ten em la hoa", f"ten em la {NAME}"),
        ("tên em là hoa ạ", f"tên em là {NAME} ạ"),
        ("Em tên là Mai", f"Em tên là {NAME}"),
        ("Tôi tên Lan", f"Tôi tên {NAME}"),
        ("chồng tôi là Minh", f"chồng tôi là {NAME}"),
        ("vo toi ten la Hoa", f"vo toi ten la {NAME}"),
        ("TÔI LÀ LAN", f"TÔI LÀ {NAME}"),
    ],
)
def test_names_after_a_cue(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Anh Tuấn bảo em đi Đài Loan làm", "Tuấn"),
        ("Chị Hương giới thiệu việc ở Nhật", "Hương"),
        ("hôm qua Nguyễn Văn Hùng gọi em", "Hùng"),
    ],
)
def test_names_the_name_model_recognises(text: str, name: str) -> None:
    masked = mask_personal(text)
    assert name not in masked and NAME in masked


@pytest.mark.parametrize(
    "text",
    [
        "tôi là người lao động ở Đài Loan",
        "em là nạn nhân",
        "tôi là học sinh",
        "mình là sinh viên năm cuối",
        "Tôi là người bị lừa",
    ],
)
def test_words_after_a_cue_that_are_not_names_stay(text: str) -> None:
    assert mask_personal(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Làm sao để đi xuất khẩu lao động an toàn?",
        "tôi muốn đi Nhật Bản làm việc",
        "công ty giữ hộ chiếu của em thì làm sao",
        "xin chào",
    ],
)
def test_text_with_nothing_personal_is_unchanged(text: str) -> None:
    assert mask_personal(text) == text


def test_nfd_input_is_masked_as_its_nfc_form() -> None:
    nfc = "Tên tôi là Nguyễn Thị Lan, số 0912345678, ở Hà Tĩnh"
    masked = mask_personal(unicodedata.normalize("NFD", nfc))
    assert masked == mask_personal(nfc)
    assert masked == unicodedata.normalize("NFC", masked)
    assert "Lan" not in masked and PHONE in masked


def test_empty_and_blank_text() -> None:
    assert mask_personal("") == ""
    assert mask_personal("   ") == "   "


def test_a_very_long_message_is_masked_throughout(no_name_model: list[int]) -> None:
    text = "tôi cần giúp đỡ " * 240 + "Tên tôi là Lan, số 0912345678, mail lan@abc.vn"
    masked = mask_personal(text)
    assert masked.startswith("tôi cần giúp đỡ tôi cần")
    assert masked.endswith(f"Tên tôi là {NAME}, số {PHONE}, mail {EMAIL}")
    assert no_name_model  # the name model was asked too


def test_the_name_model_only_ever_reads_a_bounded_piece(no_name_model: list[int]) -> None:
    mask_personal("X@" * 2000)
    mask_personal("Tôi cần giúp đỡ. " * 235)
    assert no_name_model and max(no_name_model) <= NER_CHUNK_CHARS
    assert len(no_name_model) <= 2 * NER_MAX_PIECES  # beyond that only the rules mask


def test_text_without_a_capital_letter_is_not_given_to_the_name_model(
    no_name_model: list[int],
) -> None:
    assert mask_personal("x@" * 2000 + " ten em la hoa").endswith(f"ten em la {NAME}")
    assert no_name_model == []


def test_fold_is_lower_case_without_diacritics() -> None:
    assert fold("Tên Tôi Là ĐẶNG Thị Lan") == "ten toi la dang thi lan"


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("0123456789０９ .-+()/,:@abcđêTôi\n")),
        max_size=60,
    )
)
def test_no_digit_is_ever_left(text: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        import underthesea

        patch.setattr(underthesea, "ner", lambda _text: [])
        masked = mask_personal(text)
    assert not DIGIT.search(masked)
