"""The content linter behind ``donghanh content check``.

Checks that the shipped FAQ answers, NLU data and fixed responses pass; that every kind
of broken FAQ file (on a temporary copy of ``data/faq``, and of ``data/nlu`` or
``responses.yml`` where the break lives there) gives a problem naming the file and
saying what is wrong; which strings ``phone_numbers`` takes for numbers a reader would
dial; and that the command exits 0 on good content and 1, with the problems on stderr,
on broken content.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

import services_directory
from bot.content.check import (
    Problem,
    check_content,
    check_faq,
    digits,
    mentions_retired_number,
    phone_numbers,
)
from bot.content.faq import read_faq_dir
from bot.errors import DataFormatError
from bot.nlu.rasa_yaml import read_nlu_dir

REPO = Path(__file__).resolve().parents[3]
FAQ_DIR = REPO / "data" / "faq"
NLU_DIR = REPO / "data" / "nlu"
RESPONSES = REPO / "data" / "responses.yml"
DIRECTORY_ROOT = REPO / "services_directory"
BROKEN = "deposit"  # the FAQ file most cases break: 2 buttons, room left under the limits
RETIRED_MESSAGE = "the retired anti-trafficking hotline number (merged into 111)"

Raw = dict[str, Any]


# -- helpers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nlu_intents() -> set[str]:
    """The shipped NLU intents, read once: reading ``data/nlu`` takes over a second."""
    return set(read_nlu_dir(NLU_DIR).full_intents)


@pytest.fixture(scope="module")
def known_phones() -> set[str]:
    return services_directory.load_directory(DIRECTORY_ROOT).phones()


@pytest.fixture
def faq_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FAQ_DIR, tmp_path / "faq"))


def read_raw(path: Path) -> Raw:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def write_raw(path: Path, raw: Raw) -> None:
    path.write_text(
        yaml.safe_dump(raw, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8"
    )


def edit_faq(faq_dir: Path, key: str, change: Callable[[Raw], object]) -> Path:
    path = faq_dir / f"{key}.yml"
    raw = read_raw(path)
    change(raw)
    write_raw(path, raw)
    return path


def lint(faq_dir: Path, intents: set[str], phones: set[str]) -> list[Problem]:
    """The FAQ part of ``check_content``, with the shipped NLU data and directory."""
    return check_faq(read_faq_dir(faq_dir), intents, phones, faq_dir)


def messages_for(problems: list[Problem], path: Path) -> list[str]:
    return [p.message for p in problems if p.path == path]


def append(field: str, text: str) -> Callable[[Raw], object]:
    def change(raw: Raw) -> None:
        raw[field] = f"{str(raw.get(field) or '').strip()} {text}"

    return change


def set_field(field: str, value: object) -> Callable[[Raw], object]:
    return lambda raw: raw.__setitem__(field, value)


def drop_field(field: str) -> Callable[[Raw], object]:
    return lambda raw: raw.pop(field)


def add_buttons(*buttons: dict[str, str]) -> Callable[[Raw], object]:
    return lambda raw: raw.setdefault("buttons", []).extend(buttons)


COUNSELLOR = {"title": "Gặp tư vấn viên", "payload": "/request_counsellor"}
FIND_SERVICE = {"title": "Tìm nơi hỗ trợ", "payload": "/find_service"}


# -- the shipped content -------------------------------------------------------------------


def test_shipped_content_passes() -> None:
    assert check_content(FAQ_DIR, NLU_DIR, RESPONSES) == []


def test_shipped_faq_files_pass_on_their_own(nlu_intents: set[str], known_phones: set[str]) -> None:
    # the control for every case below: an untouched copy has no problem at all
    assert lint(FAQ_DIR, nlu_intents, known_phones) == []
    assert len(read_faq_dir(FAQ_DIR)) >= 20


# -- one broken file, one problem naming it ------------------------------------------------


BROKEN_FILE_CASES = [
    pytest.param(drop_field("sources"), "missing 'sources'", id="no-sources"),
    pytest.param(set_field("sources", []), "missing 'sources'", id="empty-sources"),
    pytest.param(set_field("sources", ["", "  "]), "missing 'sources'", id="blank-sources"),
    pytest.param(drop_field("reviewed"), "missing 'reviewed'", id="no-reviewed"),
    pytest.param(set_field("reviewed", ""), "missing 'reviewed'", id="empty-reviewed"),
    pytest.param(
        set_field("reviewed", "23/11/2026"),
        "'reviewed: 23/11/2026' is not a date (YYYY-MM-DD)",
        id="reviewed-not-iso",
    ),
    pytest.param(
        set_field("reviewed", "hôm qua"), "'reviewed: hôm qua' is not a date", id="reviewed-words"
    ),
    pytest.param(
        set_field("reviewed", date.today() + timedelta(days=1)),
        f"'reviewed: {date.today() + timedelta(days=1)}' is in the future",
        id="reviewed-tomorrow",
    ),
    pytest.param(
        set_field("reviewed", str(date.today() + timedelta(days=400))),
        "is in the future",
        id="reviewed-future-string",
    ),
    pytest.param(
        set_field("answer", "a" * 601),
        "answer is 601 characters; at most 600",
        id="answer-601",
    ),
    pytest.param(
        set_field("more", "b " * 450 + "c"), "more is 901 characters; at most 900", id="more-901"
    ),
    pytest.param(drop_field("answer"), "missing 'answer'", id="no-answer"),
    pytest.param(set_field("title", " "), "missing 'title'", id="blank-title"),
    pytest.param(
        append("answer", "Hoặc gọi 1900 1234 để được giúp."),
        "answer: 1900 1234 is not in the services directory",
        id="unknown-hotline-in-answer",
    ),
    pytest.param(
        append("answer", "Văn phòng: 024 6284 4844."),
        "answer: 024 6284 4844 is not in the services directory",
        id="unknown-long-number-in-answer",
    ),
    pytest.param(
        append("more", "Hoặc gọi 1900 1234 để được giúp."),
        "more: 1900 1234 is not in the services directory",
        id="unknown-hotline-in-more",
    ),
    pytest.param(
        append("more", "Văn phòng: 024 6284 4844."),
        "more: 024 6284 4844 is not in the services directory",
        id="unknown-long-number-in-more",
    ),
    pytest.param(
        set_field("title", "Gọi 0912 345 678"),
        "title: 0912 345 678 is not in the services directory",
        id="unknown-number-in-title",
    ),
    pytest.param(
        add_buttons({"title": "Hỏi thêm", "payload": "/faq/no_such_topic"}),
        "button 3: payload '/faq/no_such_topic' leads to an unknown intent",
        id="button-unknown-faq",
    ),
    pytest.param(
        add_buttons({"title": "Chào", "payload": "/say_hello"}),
        "button 3: payload '/say_hello' leads to an unknown intent",
        id="button-unknown-intent",
    ),
    pytest.param(
        add_buttons({"title": "Hỏi thêm", "payload": "hỏi thêm"}),
        "button 3: payload 'hỏi thêm' is not /intent or /intent{...}",
        id="button-not-a-payload",
    ),
    pytest.param(
        add_buttons({"title": "Không có payload"}),
        "button 3: needs a title and a payload",
        id="button-without-payload",
    ),
    pytest.param(add_buttons(COUNSELLOR, FIND_SERVICE), "buttons: at most 3", id="four-buttons"),
    pytest.param(
        set_field("buttons", "/find_service"), "buttons: expected a list", id="buttons-str"
    ),
    pytest.param(set_field("author", "Lan"), "unknown fields ['author']", id="unknown-field"),
]


@pytest.mark.parametrize(("change", "expected"), BROKEN_FILE_CASES)
def test_a_broken_faq_file_is_reported_by_name(
    faq_copy: Path,
    nlu_intents: set[str],
    known_phones: set[str],
    change: Callable[[Raw], object],
    expected: str,
) -> None:
    broken = edit_faq(faq_copy, BROKEN, change)
    problems = lint(faq_copy, nlu_intents, known_phones)
    assert {p.path for p in problems} == {broken}, problems
    assert any(expected in message for message in messages_for(problems, broken)), problems
    assert all(str(broken) in str(p) for p in problems)


@pytest.mark.parametrize(
    ("field", "limit"),
    [("answer", 600), ("more", 900)],
)
def test_length_limits_are_inclusive_and_ignore_surrounding_space(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str], field: str, limit: int
) -> None:
    edit_faq(faq_copy, BROKEN, set_field(field, "  " + "ạ" * limit + "\n\n"))
    assert lint(faq_copy, nlu_intents, known_phones) == []
    broken = edit_faq(faq_copy, BROKEN, set_field(field, "ạ" * (limit + 1)))
    assert lint(faq_copy, nlu_intents, known_phones) == [
        Problem(broken, f"{field} is {limit + 1} characters; at most {limit}")
    ]


@pytest.mark.parametrize("spelling", ["1800 1567", "1800.1567", "18001567", "1800-1567"])
@pytest.mark.parametrize("field", ["answer", "more"])
def test_the_retired_hotline_is_reported_however_it_is_written(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str], field: str, spelling: str
) -> None:
    broken = edit_faq(faq_copy, BROKEN, append(field, f"Trước đây là số {spelling}."))
    # exactly one problem: retired, not also "not in the services directory"
    assert lint(faq_copy, nlu_intents, known_phones) == [
        Problem(broken, f"{field}: {RETIRED_MESSAGE}")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Ở nước ngoài, gọi +84 981 84 84 84.",
        "Ở nước ngoài, gọi 0981 848 484.",
        "Gọi 111, 113, 114 hoặc 115.",
        "Phí tối đa 1 tháng lương, hạn 120 ngày, ký quỹ 2.000.000 đồng (Điều 23 Luật 69/2020).",
    ],
)
def test_directory_numbers_and_non_numbers_pass(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str], text: str
) -> None:
    edit_faq(faq_copy, BROKEN, append("more", text))
    assert lint(faq_copy, nlu_intents, known_phones) == []


def test_a_topic_without_nlu_examples_is_reported(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str]
) -> None:
    raw = read_raw(faq_copy / f"{BROKEN}.yml")
    raw["key"] = "xyz"
    raw["title"] = "Một chủ đề mới"
    new = faq_copy / "xyz.yml"
    write_raw(new, raw)
    problems = lint(faq_copy, nlu_intents, known_phones)
    assert problems == [Problem(new, "no NLU examples for intent faq/xyz")]


def test_an_nlu_topic_without_an_answer_is_reported(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str]
) -> None:
    assert "faq/legal_aid" in nlu_intents
    (faq_copy / "legal_aid.yml").unlink()
    problems = lint(faq_copy, nlu_intents, known_phones)
    assert Problem(faq_copy / "legal_aid.yml", "NLU intent faq/legal_aid has no answer") in problems
    # buttons that led to the deleted answer now lead nowhere, and say so
    dangling = [p for p in problems if "'/faq/legal_aid' leads to an unknown intent" in p.message]
    linking = [
        f.path
        for f in read_faq_dir(FAQ_DIR)
        if any(b.get("payload") == "/faq/legal_aid" for b in f.raw.get("buttons") or [])
    ]
    assert sorted(faq_copy / p.name for p in linking) == sorted(p.path for p in dangling)


def test_a_key_that_does_not_match_its_file_is_reported(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str]
) -> None:
    broken = edit_faq(faq_copy, BROKEN, set_field("key", "deposits"))
    messages = messages_for(lint(faq_copy, nlu_intents, known_phones), broken)
    assert "key 'deposits' must be snake_case and match the file" in messages


def test_a_key_that_is_not_snake_case_is_reported(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str]
) -> None:
    path = faq_copy / f"{BROKEN}.yml"
    renamed = faq_copy / "Deposit.yml"
    path.rename(renamed)
    edit_faq(faq_copy, "Deposit", set_field("key", "Deposit"))
    messages = messages_for(lint(faq_copy, nlu_intents, known_phones), renamed)
    assert "key 'Deposit' must be snake_case and match the file" in messages


def test_every_problem_of_a_file_is_reported_at_once(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str]
) -> None:
    def break_everything(raw: Raw) -> None:
        raw.pop("sources")
        raw.pop("reviewed")
        raw["answer"] = "x" * 700
        raw["more"] = "Gọi 1800 1567."

    broken = edit_faq(faq_copy, BROKEN, break_everything)
    messages = messages_for(lint(faq_copy, nlu_intents, known_phones), broken)
    assert len(messages) == 4, messages
    for expected in ("missing 'sources'", "missing 'reviewed'", "answer is 700", "retired"):
        assert any(expected in m for m in messages), (expected, messages)


# -- through check_content: invalid YAML, NLU data, responses.yml, the directory -----------


def test_invalid_yaml_gives_a_problem_naming_the_file(faq_copy: Path) -> None:
    broken = faq_copy / f"{BROKEN}.yml"
    broken.write_text("key: deposit\ntitle: [chưa đóng\nanswer: x\n", encoding="utf-8")
    problems = check_content(faq_copy, NLU_DIR, RESPONSES)
    # read_faq_dir raises DataFormatError; check_content turns it into one problem
    assert [p.path for p in problems] == [broken]
    assert problems[0].message.startswith("invalid YAML")
    assert "line 2" in problems[0].message
    with pytest.raises(DataFormatError) as raised:
        read_faq_dir(faq_copy)
    assert (raised.value.path, raised.value.line) == (str(broken), 3)
    assert str(raised.value).startswith(f"{broken}:3: invalid YAML")


def _drop_nlu_intent(nlu_file: Path, intent: str) -> None:
    text = nlu_file.read_text(encoding="utf-8")
    block = re.compile(rf"^- intent: {re.escape(intent)}\n(?:(?!- intent:).*\n)*", re.MULTILINE)
    cut, count = block.subn("", text)
    assert count == 1
    nlu_file.write_text(cut, encoding="utf-8")


def test_a_topic_whose_nlu_examples_were_removed_is_reported(
    faq_copy: Path, tmp_path: Path
) -> None:
    nlu_copy = Path(shutil.copytree(NLU_DIR, tmp_path / "nlu"))
    _drop_nlu_intent(nlu_copy / "faq.yml", "faq/legal_aid")
    assert check_content(faq_copy, nlu_copy, RESPONSES) == [
        Problem(faq_copy / "legal_aid.yml", "no NLU examples for intent faq/legal_aid")
    ]


def test_numbers_in_responses_are_checked(faq_copy: Path, tmp_path: Path) -> None:
    responses = tmp_path / "responses.yml"
    shutil.copy(RESPONSES, responses)
    loaded = read_raw(responses)
    loaded["responses"]["utter_old_hotline"] = [{"text": "Gọi 1800.1567 (miễn phí)."}]
    loaded["responses"]["utter_made_up"] = [{"text": "Gọi tổng đài 1900 1234 nhé."}]
    write_raw(responses, loaded)
    assert check_content(faq_copy, NLU_DIR, responses) == [
        Problem(responses, f"utter_old_hotline: {RETIRED_MESSAGE}"),
        Problem(responses, "utter_made_up: 1900 1234 is not in the services directory"),
    ]


def test_a_broken_directory_is_reported(faq_copy: Path, tmp_path: Path) -> None:
    root = tmp_path / "directory"
    root.mkdir()
    for name in ("national.yml", "provinces.yml", "schema.yml"):
        shutil.copy(DIRECTORY_ROOT / name, root / name)
    shutil.copytree(DIRECTORY_ROOT / "provinces", root / "provinces")
    (root / "provinces" / "hue.yml").unlink()
    problems = check_content(faq_copy, NLU_DIR, RESPONSES, directory_root=root)
    assert Problem(root / "provinces", "no file for Huế") in problems


# -- phone_numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # not numbers anyone would dial
        ("Nơi ở tạm tối đa 120 ngày", []),
        ("ký quỹ 2.000.000 đồng", []),
        ("Điều 23 Luật 69/2020/QH14", []),
        ("từ 1/7/2025", []),
        ("năm 2024 có 323.615 cuộc gọi", []),
        ("hợp đồng 12 tháng", []),
        ("tối đa 1,5 tháng lương", []),
        ("Nghị định 162/2025/NĐ-CP", []),
        ("hơn 100 người", []),
        ("24/7", []),
        ("500 triệu đồng", []),
        ("", []),
        # numbers to dial
        ("gọi 111", ["111"]),
        ("gọi 113 hoặc 115", ["113", "115"]),
        ("gọi 111 (miễn phí, 24/7).", ["111"]),
        ("+84 981 84 84 84", ["+84 981 84 84 84"]),
        ("gọi 1900 1234 để được giúp", ["1900 1234"]),
        ("Gọi tới số 1234 nhé", ["1234"]),
        ("0912 345 678", ["0912 345 678"]),
        ("024 6284 4844", ["024 6284 4844"]),
        ("18001567", ["18001567"]),
        ("1800.1567", ["1800.1567"]),
        ("gọi 113, sau đó gọi 0912 345 678", ["113", "0912 345 678"]),
    ],
)
def test_phone_numbers(text: str, expected: list[str]) -> None:
    assert phone_numbers(text) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+84 981 84 84 84", "0981848484"),
        ("84 981 84 84 84", "0981848484"),
        ("0981.848.484", "0981848484"),
        ("1800 1567", "18001567"),
        ("111", "111"),
    ],
)
def test_digits_compare_numbers_however_written(number: str, expected: str) -> None:
    assert digits(number) == expected


@pytest.mark.parametrize(
    ("text", "retired"),
    [
        ("1800 1567", True),
        ("1800.1567", True),
        ("18001567", True),
        ("(1800) 1567", True),
        ("gọi 1800-1567 miễn phí", True),
        ("1800 1568", False),
        ("gọi 111", False),
        ("1800 và 1567", False),
    ],
)
def test_mentions_retired_number(text: str, retired: bool) -> None:
    assert mentions_retired_number(text) is retired


@pytest.mark.parametrize("text", ["lương tăng 150%", "phí 100 % lương"])
def test_percentages_are_not_phone_numbers(text: str) -> None:
    assert phone_numbers(text) == []


def test_an_article_of_the_penal_code_is_not_a_phone_number() -> None:
    # Điều 150 and 151 of the Penal Code are the trafficking offences
    assert phone_numbers("theo Điều 150 Bộ luật Hình sự") == []


def test_an_impossible_review_date_is_a_problem_not_a_crash(faq_copy: Path) -> None:
    path = faq_copy / f"{BROKEN}.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^reviewed: .*$", "reviewed: 2026-02-30", text), encoding="utf-8")
    problems = check_content(faq_copy, NLU_DIR, RESPONSES)
    assert any(p.path == path and "reviewed" in p.message for p in problems)


def test_a_review_timestamp_is_a_problem_not_a_crash(
    faq_copy: Path, nlu_intents: set[str], known_phones: set[str]
) -> None:
    from datetime import datetime

    broken = edit_faq(faq_copy, BROKEN, set_field("reviewed", datetime(2026, 1, 5, 10, 0)))
    problems = lint(faq_copy, nlu_intents, known_phones)
    assert all(p.path == broken for p in problems)


# -- the command -----------------------------------------------------------------------------


def run_check(faq_dir: Path, instance: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DONGHANH_")}
    env |= {"DONGHANH_INSTANCE_DIR": str(instance), "DONGHANH_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "content", "check", "--faq-dir", str(faq_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_command_passes_on_the_shipped_content(tmp_path: Path) -> None:
    done = run_check(FAQ_DIR, tmp_path / "instance")
    assert done.returncode == 0, done.stderr
    assert "Nội dung hợp lệ." in done.stdout


@pytest.mark.parametrize(
    ("break_file", "expected"),
    [
        pytest.param(
            lambda path: edit_faq(path.parent, path.stem, drop_field("sources")),
            "missing 'sources'",
            id="no-sources",
        ),
        pytest.param(
            lambda path: path.write_text("key: [\n", encoding="utf-8"),
            "invalid YAML",
            id="invalid-yaml",
        ),
    ],
)
def test_command_fails_with_the_problem_on_stderr(
    faq_copy: Path, tmp_path: Path, break_file: Callable[[Path], object], expected: str
) -> None:
    broken = faq_copy / f"{BROKEN}.yml"
    break_file(broken)
    done = run_check(faq_copy, tmp_path / "instance")
    assert done.returncode == 1, done.stderr
    assert f"{broken}: {expected}" in done.stderr
    assert "1 lỗi nội dung." in done.stderr
    assert "Nội dung hợp lệ." not in done.stdout
