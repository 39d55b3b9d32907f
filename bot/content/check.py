"""The content linter behind ``donghanh content check``: what must hold before content
reaches people.

It fails on: an FAQ answer without a source or a review date; an answer or follow-up
over its length limit; a phone number that is neither in the services directory nor a
fact-base number; the retired anti-trafficking hotline (now 111) anywhere; a topic
with no NLU examples; an NLU FAQ topic with no answer; a button to nothing the bot
understands; and any problem in the services directory. ``check_*`` functions only read and report.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.content.faq import (
    ANSWER_MAX_CHARS,
    KEY_PATTERN,
    MAX_BUTTONS,
    MORE_MAX_CHARS,
    FaqFile,
    read_faq_dir,
)
from bot.datafiles import load_yaml
from bot.errors import DataFormatError

# The retired anti-trafficking hotline (merged into 111) is known here only by the SHA-256
# of its 8 digits, so no message can ever be built from it; tests spell it out.
RETIRED_NUMBER_DIGESTS = frozenset(
    {"84cd4e254e367b014fe2b70e4a2daebba6c09573a641c6c517b319c1ad637039"}
)
RETIRED_NUMBER_DIGITS = 8
RETIRED_MESSAGE = "the retired anti-trafficking hotline number (merged into 111)"
FAQ_FIELDS = frozenset({"key", "title", "answer", "more", "sources", "reviewed", "buttons"})
_LONG_NUMBER = re.compile(r"(?<![\w+])\+?\d[\d .\-]{5,}\d(?!\w)")
_THOUSANDS = re.compile(r"^\d{1,3}([.,]\d{3})+$")
_CALL_CONTEXT = re.compile(
    r"(?i)(gọi|số|tổng đài|đường dây|hotline|liên hệ|bấm|quay)(?:\W+\w+){0,3}?\W+"
    r"(?<!\d[.,])(\d{3,5})(?![\d/]|[.,]\d)"
)
_COUNT_WORDS = (
    "ngày|tháng|năm|tuần|giờ|phút|triệu|tỷ|nghìn|ngàn|đồng|người|cuộc|lần|tuổi|km|kg|"
    "điều|khoản|trang|bài|usd|đô"
)
_SHORT_CODE = re.compile(
    rf"(?i)(?<![\w/+])(?<!\d[.,])1\d{{2}}(?![\w/]|[.,]\d|\s*(?:{_COUNT_WORDS})\b|\s*%)"
)
# a number right after these words is a reference ("Điều 150"), not something to dial
_REFERENCE_WORDS = frozenset({"điều", "khoản", "điểm", "trang", "mục", "chương", "phụ", "lục"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PAYLOAD = re.compile(r"^/(?P<intent>[\w/]+)(?P<entities>\{.*\})?$")


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def digits(number: str) -> str:
    only = re.sub(r"\D", "", number)
    if number.strip().startswith("+84") or (only.startswith("84") and len(only) >= 11):
        return "0" + only[2:]
    return only


def phone_numbers(text: str) -> list[str]:
    """Numbers a reader would dial: long numbers (8+ digits, not amounts like
    2.000.000), three-digit codes starting with 1 (111, 113...) that are not counts
    ("120 ngày"), and short codes right after "gọi", "số", "tổng đài"..."""
    long_spans = [
        m.span()
        for m in _LONG_NUMBER.finditer(text)
        if len(re.sub(r"\D", "", m.group(0))) >= 8 and not _THOUSANDS.match(m.group(0).strip())
    ]
    found = {start: text[start:end].strip() for start, end in long_spans}
    for match in (*_SHORT_CODE.finditer(text), *_CALL_CONTEXT.finditer(text)):
        group = match.lastindex or 0
        start, end = match.span(group)
        inside_long = any(s <= start < e for s, e in long_spans)
        if not inside_long and not _follows_reference_word(text, start):
            found.setdefault(start, text[start:end])
    return [found[start] for start in sorted(found)]


def _follows_reference_word(text: str, start: int) -> bool:
    words = re.findall(r"\w+", text[max(0, start - 20) : start].lower())
    return bool(words) and words[-1] in _REFERENCE_WORDS


def mentions_retired_number(text: str) -> bool:
    squeezed = re.sub(r"[\s.\-()]", "", text)
    return any(
        is_retired_number(run[start : start + RETIRED_NUMBER_DIGITS])
        for run in re.findall(rf"\d{{{RETIRED_NUMBER_DIGITS},}}", squeezed)
        for start in range(len(run) - RETIRED_NUMBER_DIGITS + 1)
    )


def is_retired_number(number_digits: str) -> bool:
    digest = hashlib.sha256(number_digits.encode("ascii")).hexdigest()
    return digest in RETIRED_NUMBER_DIGESTS


def check_text(path: Path, where: str, text: str, known_phones: set[str] | None) -> list[Problem]:
    """The retired number, and numbers not in the directory (skipped when the directory
    itself is broken: its problems are reported instead)."""
    problems = []
    if mentions_retired_number(text):
        problems.append(Problem(path, f"{where}: {RETIRED_MESSAGE}"))
    if known_phones is None:
        return problems
    for number in phone_numbers(text):
        if digits(number) not in known_phones and not is_retired_number(digits(number)):
            problems.append(Problem(path, f"{where}: {number} is not in the services directory"))
    return problems


def _check_payload(path: Path, where: str, payload: str, known_intents: set[str]) -> list[Problem]:
    match = _PAYLOAD.match(payload)
    if not match:
        return [Problem(path, f"{where}: payload {payload!r} is not /intent or /intent{{...}}")]
    if match["intent"] not in known_intents:
        return [Problem(path, f"{where}: payload {payload!r} leads to an unknown intent")]
    return []


def _check_buttons(path: Path, raw: Any, known_intents: set[str]) -> list[Problem]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        return [Problem(path, "buttons: expected a list")]
    problems = []
    if len(raw) > MAX_BUTTONS:
        problems.append(Problem(path, f"buttons: at most {MAX_BUTTONS}"))
    for number, button in enumerate(raw, start=1):
        if not isinstance(button, dict) or not button.get("title") or not button.get("payload"):
            problems.append(Problem(path, f"button {number}: needs a title and a payload"))
            continue
        problems += _check_payload(path, f"button {number}", str(button["payload"]), known_intents)
    return problems


def _check_reviewed(path: Path, raw: Any) -> list[Problem]:
    if raw is None or raw == "":
        return [Problem(path, "missing 'reviewed' (the date the answer was last checked)")]
    not_a_date = [Problem(path, f"'reviewed: {raw}' is not a date (YYYY-MM-DD)")]
    if isinstance(raw, datetime):
        return not_a_date
    if isinstance(raw, date):
        reviewed = raw
    elif _ISO_DATE.match(str(raw)):
        try:
            reviewed = date.fromisoformat(str(raw))
        except ValueError:
            return not_a_date
    else:
        return not_a_date
    if reviewed > date.today():
        return [Problem(path, f"'reviewed: {reviewed}' is in the future")]
    return []


def _check_sources(path: Path, raw: Any) -> list[Problem]:
    if not isinstance(raw, list) or not any(str(s).strip() for s in raw if s is not None):
        return [Problem(path, "missing 'sources' (law and article, or the named source)")]
    return []


def _check_lengths(path: Path, raw: dict[str, Any]) -> list[Problem]:
    problems = []
    answer = str(raw.get("answer") or "").strip()
    if not answer:
        problems.append(Problem(path, "missing 'answer'"))
    elif len(answer) > ANSWER_MAX_CHARS:
        problems.append(
            Problem(path, f"answer is {len(answer)} characters; at most {ANSWER_MAX_CHARS}")
        )
    more = str(raw.get("more") or "").strip()
    if len(more) > MORE_MAX_CHARS:
        problems.append(Problem(path, f"more is {len(more)} characters; at most {MORE_MAX_CHARS}"))
    if not str(raw.get("title") or "").strip():
        problems.append(Problem(path, "missing 'title'"))
    return problems


def check_faq_file(
    faq: FaqFile, known_intents: set[str], known_phones: set[str] | None
) -> list[Problem]:
    raw, path = faq.raw, faq.path
    problems = []
    if not KEY_PATTERN.match(faq.key) or faq.key != path.stem:
        problems.append(Problem(path, f"key {faq.key!r} must be snake_case and match the file"))
    unknown = set(raw) - FAQ_FIELDS
    if unknown:
        problems.append(Problem(path, f"unknown fields {sorted(unknown)}"))
    problems += _check_lengths(path, raw)
    problems += _check_sources(path, raw.get("sources"))
    problems += _check_reviewed(path, raw.get("reviewed"))
    problems += _check_buttons(path, raw.get("buttons"), known_intents)
    for field in ("title", "answer", "more"):
        problems += check_text(path, field, str(raw.get(field) or ""), known_phones)
    return problems


def check_faq(
    files: list[FaqFile], nlu_intents: set[str], known_phones: set[str] | None, faq_dir: Path
) -> list[Problem]:
    """The FAQ files against each other, the NLU data and the directory's numbers."""
    nlu_keys = {intent.removeprefix("faq/") for intent in nlu_intents if intent.startswith("faq/")}
    file_keys = {faq.key for faq in files}
    known_intents = (nlu_intents - {f"faq/{k}" for k in nlu_keys - file_keys}) | {
        f"faq/{k}" for k in file_keys
    }
    problems = []
    for faq in files:
        problems += check_faq_file(faq, known_intents, known_phones)
        if faq.key not in nlu_keys:
            problems.append(Problem(faq.path, f"no NLU examples for intent faq/{faq.key}"))
    for key in sorted(nlu_keys - file_keys):
        problems.append(Problem(faq_dir / f"{key}.yml", f"NLU intent faq/{key} has no answer"))
    return problems


def check_responses(path: Path, known_phones: set[str] | None) -> list[Problem]:
    """The fixed messages in ``responses.yml``: numbers and the retired hotline."""
    loaded = load_yaml(path.read_text(encoding="utf-8")) or {}
    problems = []
    for name, variants in (loaded.get("responses") or {}).items():
        for variant in variants or []:
            problems += check_text(path, str(name), str(variant.get("text", "")), known_phones)
    return problems


def check_content(
    faq_dir: Path, nlu_dir: Path, responses_file: Path, directory_root: Path | None = None
) -> list[Problem]:
    """Everything the linter checks, for ``donghanh content check``."""
    import services_directory
    from bot.nlu.training import training_intents

    root = directory_root or services_directory.HERE
    problems = [Problem(p, m) for p, m in services_directory.check_directory(root)]
    phones = None if problems else services_directory.load_directory(root).phones()
    try:
        files = read_faq_dir(faq_dir)
    except DataFormatError as exc:
        return [*problems, Problem(Path(exc.path), exc.detail)]
    intents = training_intents(nlu_dir)
    problems += check_faq(files, intents, phones, faq_dir)
    if responses_file.exists():
        problems += check_responses(responses_file, phones)
    return problems


def format_problems(problems: Iterable[Problem]) -> str:
    return "\n".join(str(problem) for problem in problems)
