"""What editors and reviewers may do to the content, and what must hold before it
reaches people: the shapes of an FAQ topic and a directory service as the admin pages
send them, the linter run on every save, and the four-eyes rule on publishing.

- Editors (and admins) save drafts; a topic has one draft at a time.
- Publishing needs the reviewer right (admins have it; an editor may be given it) and
  a reviewer other than the draft's last editor; the linter must pass (422 otherwise,
  with its reasons).
- Rollback and retirement publish at once, by a reviewer, and pass the linter too.
- After anything that changes what the bot says or learns, ``on_change`` runs (the
  live content reloads and, if the examples changed, retrains).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from bot.content.check import check_faq_file, check_text
from bot.content.faq import KEY_PATTERN, FaqFile
from bot.domain import Button, FaqEntry, StaffMember
from bot.errors import BadInput, Conflict, Forbidden, NotFound, Unprocessable
from bot.nlu.training import printable
from bot.storage.content import ContentStore, Topic, Version

FAQ = "faq"
SERVICE = "service"
MIN_EXAMPLES = 3
MAX_EXAMPLES = 400
EXAMPLE_MAX_CHARS = 300
TITLE_MAX_CHARS = 200
TEXT_MAX_CHARS = 5000
FAQ_BODY_FIELDS = frozenset(
    {"title", "answer", "more", "sources", "reviewed", "buttons", "examples", "draft_updated_at"}
)
SERVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


class ContentFacts(Protocol):
    """What the linter checks content against: the live content of this worker."""

    def known_intents(self) -> set[str]: ...

    def known_phones(self) -> set[str]: ...

    def unit_names(self) -> set[str]: ...

    def faq_examples(self) -> dict[str, list[str]]: ...

    def topics_with_button_to(self, key: str) -> list[str]: ...


# -- shapes --------------------------------------------------------------------------------


def _text_field(body: dict[str, Any], name: str, *, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadInput(f"thiếu '{name}'")
        return None
    if not isinstance(value, str):
        raise BadInput(f"'{name}' phải là chữ")
    if len(value) > limit:
        raise BadInput(f"'{name}' dài quá {limit} ký tự")
    return value.strip()


def _text_list(body: dict[str, Any], name: str, *, limit: int, most: int) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"'{name}' phải là một danh sách chữ")
    items = [printable(v) for v in value if printable(v)]
    if len(items) > most:
        raise BadInput(f"'{name}': tối đa {most} mục")
    if any(len(v) > limit for v in items):
        raise BadInput(f"'{name}': mỗi mục tối đa {limit} ký tự")
    return items


def _buttons(body: dict[str, Any]) -> list[dict[str, str]]:
    value = body.get("buttons") or []
    if not isinstance(value, list):
        raise BadInput("'buttons' phải là một danh sách")
    buttons = []
    for raw in value:
        if not isinstance(raw, dict):
            raise BadInput("mỗi nút cần 'title' và 'payload'")
        title, payload = raw.get("title"), raw.get("payload")
        if not isinstance(title, str) or not isinstance(payload, str):
            raise BadInput("mỗi nút cần 'title' và 'payload' là chữ")
        buttons.append({"title": title.strip()[:80], "payload": payload.strip()[:200]})
    return buttons


def _iso_date(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"'{name}' phải là ngày dạng YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError as exc:
        raise BadInput(f"'{name}' phải là ngày dạng YYYY-MM-DD") from exc


def faq_data_from_body(body: Any) -> dict[str, Any]:
    """The stored form of a topic from what the admin page sent (400 if malformed)."""
    if not isinstance(body, dict):
        raise BadInput("cần một đối tượng JSON")
    unknown = set(body) - FAQ_BODY_FIELDS - {"key"}
    if unknown:
        raise BadInput(f"trường không hợp lệ: {', '.join(sorted(unknown))}")
    data: dict[str, Any] = {
        "title": _text_field(body, "title", limit=TITLE_MAX_CHARS, required=True),
        "answer": _text_field(body, "answer", limit=TEXT_MAX_CHARS, required=True),
        "sources": _text_list(body, "sources", limit=500, most=10),
        "reviewed": _iso_date(body.get("reviewed"), "reviewed"),
        "buttons": _buttons(body),
        "examples": _text_list(body, "examples", limit=EXAMPLE_MAX_CHARS, most=MAX_EXAMPLES),
    }
    more = _text_field(body, "more", limit=TEXT_MAX_CHARS, required=False)
    if more:
        data["more"] = more
    return data


def faq_data_from_entry(entry: FaqEntry, examples: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": entry.title,
        "answer": entry.answer,
        "sources": list(entry.sources),
        "reviewed": entry.reviewed.isoformat(),
        "buttons": [{"title": b.title, "payload": b.payload} for b in entry.buttons],
        "examples": list(examples),
    }
    if entry.more:
        data["more"] = entry.more
    return data


def entry_from_data(key: str, data: dict[str, Any]) -> FaqEntry:
    return FaqEntry(
        key=key,
        title=str(data["title"]),
        answer=str(data["answer"]),
        more=data.get("more") or None,
        sources=tuple(str(s) for s in data.get("sources") or ()),
        reviewed=date.fromisoformat(str(data["reviewed"])),
        buttons=tuple(
            Button(title=str(b["title"]), payload=str(b["payload"]))
            for b in data.get("buttons") or ()
        ),
    )


def service_data_from_body(key: str, body: Any) -> dict[str, Any]:
    """A directory record from what the admin page sent; the schema check is the
    linter's (``service_problems``)."""
    if not isinstance(body, dict):
        raise BadInput("cần một đối tượng JSON")
    data = {
        k: v
        for k, v in body.items()
        if k not in ("draft_updated_at", "key") and v not in (None, "")
    }
    data["id"] = key
    if "verified_at" in data:
        data["verified_at"] = _iso_date(data["verified_at"], "verified_at")
    return data


# -- the linter's words, in Vietnamese for the admin pages --------------------------------

FIELD_NAMES = {
    "title": "tên chủ đề",
    "answer": "câu trả lời",
    "more": "thông tin thêm",
    "name": "tên",
    "helps_with": "giúp gì",
    "hours": "giờ làm việc",
    "address": "địa chỉ",
}
_FIELD = "|".join(FIELD_NAMES)
TRANSLATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"^missing 'sources'.*", "thiếu nguồn (luật và điều, khoản, hoặc tên nguồn)"),
        (r"^missing 'reviewed'.*", "thiếu ngày rà soát"),
        (r"^missing '(\w+)'$", "thiếu {field1}"),
        (r"^'reviewed: (.*)' is not a date.*", r"ngày rà soát “\1” không đúng dạng YYYY-MM-DD"),
        (r"^'reviewed: (.*)' is in the future$", r"ngày rà soát \1 ở tương lai"),
        (r"^answer is (\d+) characters; at most (\d+)$", r"câu trả lời dài \1 ký tự, tối đa \2"),
        (r"^more is (\d+) characters; at most (\d+)$", r"thông tin thêm dài \1 ký tự, tối đa \2"),
        (r"^buttons: at most (\d+)$", r"tối đa \1 nút"),
        (r"^buttons: expected a list$", "các nút phải là một danh sách"),
        (r"^button (\d+): needs a title and a payload$", r"nút \1 cần tiêu đề và mã"),
        (
            r"^button (\d+): payload (.*) is not /intent.*",
            r"nút \1: mã \2 không đúng dạng /ý_định",
        ),
        (
            r"^button (\d+): payload (.*) leads to an unknown intent$",
            r"nút \1: mã \2 dẫn tới ý định không có",
        ),
        (
            rf"^({_FIELD}): the retired anti-trafficking hotline.*",
            "{field1}: số đường dây nóng cũ đã ngừng hoạt động (nay là 111)",
        ),
        (
            rf"^({_FIELD}): (.*) is not in the services directory$",
            r"{field1}: số \2 không có trong danh bạ dịch vụ",
        ),
        (
            r"^provinces must be .*",
            "phạm vi phải là toàn quốc hoặc một trong 34 tỉnh, thành phố hiện hành",
        ),
        (r"^verified_at is in the future$", "ngày xác minh ở tương lai"),
        (r"^phone (.*) is not a phone number$", r"\1 không phải số điện thoại"),
        (r"^unknown fields (.*)$", r"trường không hợp lệ: \1"),
    )
)


def in_vietnamese(problem: str) -> str:
    """The linter's message for editors; anything not in the table is shown as is,
    after a Vietnamese lead (schema details from pykwalify stay technical)."""
    for pattern, text in TRANSLATIONS:
        match = pattern.match(problem)
        if match:
            field = FIELD_NAMES.get(match.group(1), match.group(1)) if match.groups() else ""
            return match.expand(text.replace("{field1}", field))
    return f"dữ liệu chưa đúng mẫu: {problem}"


# -- the linter, on one topic --------------------------------------------------------------


def faq_problems(key: str, data: dict[str, Any], facts: ContentFacts) -> list[str]:
    """Why this topic may not be published (empty when it may)."""
    raw = {k: v for k, v in data.items() if k not in ("examples", "retired")}
    known = facts.known_intents() | {f"{FAQ}/{key}"}
    problems = [p.message for p in check_faq_file(FaqFile(Path(f"{key}.yml"), raw), known, None)]
    for field in ("title", "answer", "more"):
        problems += [
            p.message
            for p in check_text(Path(key), field, str(data.get(field) or ""), facts.known_phones())
        ]
    problems = [in_vietnamese(p) for p in problems]
    problems += example_problems(key, data.get("examples") or [], facts)
    return list(dict.fromkeys(problems))  # the same problem found twice is said once


def example_problems(key: str, examples: list[str], facts: ContentFacts) -> list[str]:
    problems = []
    if len(examples) < MIN_EXAMPLES:
        problems.append(f"cần ít nhất {MIN_EXAMPLES} câu hỏi mẫu để bot nhận ra chủ đề")
    owners = {
        " ".join(text.lower().split()): other
        for other, texts in facts.faq_examples().items()
        if other != key
        for text in texts
    }
    for text in examples:
        other = owners.get(" ".join(text.lower().split()))
        if other:
            problems.append(f"câu mẫu “{text}” đã thuộc chủ đề {other}")
    return problems


def service_problems(key: str, data: dict[str, Any], facts: ContentFacts) -> list[str]:
    import services_directory

    record = dict(data)
    if isinstance(record.get("verified_at"), str):
        record["verified_at"] = date.fromisoformat(record["verified_at"])
    problems = services_directory.record_problems(record, facts.unit_names())
    for field in ("name", "helps_with", "hours", "address"):
        problems += [
            p.message for p in check_text(Path(key), field, str(data.get(field) or ""), None)
        ]
    return [in_vietnamese(p) for p in problems]


def needs_review(reviewed: str | None, today: date, max_days: int) -> bool:
    if not reviewed:
        return True
    try:
        return (today - date.fromisoformat(reviewed)).days > max_days
    except ValueError:
        return True


# -- the editor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What just changed, for the live content: which kind, and whether the examples
    the model learns from may have."""

    kind: str
    examples_changed: bool
    by: int | None


OnChange = Callable[[Change], Awaitable[None]]


class ContentEditor:
    def __init__(self, store: ContentStore, facts: ContentFacts, on_change: OnChange) -> None:
        self.store = store
        self.facts = facts
        self.on_change = on_change

    def problems(self, kind: str, key: str, data: dict[str, Any]) -> list[str]:
        if data.get("retired"):
            return []
        if kind == FAQ:
            return faq_problems(key, data, self.facts)
        return service_problems(key, data, self.facts)

    async def topic(self, kind: str, key: str) -> Topic:
        found = await self.store.get_topic(kind, key)
        if found is None:
            raise NotFound("không có chủ đề này" if kind == FAQ else "không có dịch vụ này")
        return found

    async def create(
        self, kind: str, key: str, data: dict[str, Any], member: StaffMember
    ) -> Version:
        check_key(kind, key)
        if await self.store.count_versions(kind, key):
            raise Conflict("mã này đã có: hãy chọn mã khác hoặc sửa mục đã có")
        return await self.store.do_save_draft(kind, key, data, member.id)

    async def save_draft(
        self, kind: str, key: str, data: dict[str, Any], member: StaffMember
    ) -> Version:
        topic = await self.topic(kind, key)
        expected = data.pop("draft_updated_at", None)
        if expected and topic.draft and topic.draft.updated_at.isoformat() != expected:
            raise Conflict("bản nháp vừa được người khác sửa: hãy tải lại")
        return await self.store.do_save_draft(kind, key, data, member.id)

    async def publish(
        self, kind: str, key: str, member: StaffMember, expected_updated_at: str | None
    ) -> Version:
        require_reviewer(member)
        topic = await self.topic(kind, key)
        draft = topic.draft
        if draft is None:
            raise Conflict("không có bản nháp nào để xuất bản")
        if draft.edited_by_id == member.id:
            raise Conflict("cần một người duyệt khác với người sửa cuối cùng (nguyên tắc bốn mắt)")
        problems = self.problems(kind, key, draft.data)
        if problems:
            raise Unprocessable("nội dung chưa đạt yêu cầu, chưa xuất bản", problems)
        version = await self.store.do_publish_draft(
            kind, key, member.id, _parse_time(expected_updated_at)
        )
        before = topic.published.data.get("examples") if topic.published else None
        await self.on_change(Change(kind, before != draft.data.get("examples"), member.id))
        return version

    async def rollback(self, kind: str, key: str, number: int, member: StaffMember) -> Version:
        require_reviewer(member)
        topic = await self.topic(kind, key)
        old = await self.store.get_version(kind, key, number)
        if old is None or old.state not in ("published", "superseded"):
            raise NotFound(f"không có phiên bản đã xuất bản số {number}")
        problems = self.problems(kind, key, old.data)
        if kind == FAQ and old.retired:  # rolling back to a retirement retires it again
            problems += [f"nút trong chủ đề {o}" for o in self.facts.topics_with_button_to(key)]
        if problems:
            raise Unprocessable("phiên bản cũ không còn đạt yêu cầu", problems)
        version = await self.store.do_publish_data(
            kind, key, old.data, member.id, f"khôi phục phiên bản {number}"
        )
        before = topic.published.data.get("examples") if topic.published else None
        await self.on_change(Change(kind, before != old.data.get("examples"), member.id))
        return version

    async def retire(self, kind: str, key: str, member: StaffMember) -> Version:
        require_reviewer(member)
        topic = await self.topic(kind, key)
        if topic.published is None or topic.published.retired:
            raise Conflict("chủ đề chưa xuất bản hoặc đã ngừng dùng")
        if kind == FAQ:
            pointing = self.facts.topics_with_button_to(key)
            if pointing:
                raise Unprocessable(
                    "còn chủ đề khác có nút dẫn tới chủ đề này",
                    [f"nút trong chủ đề {other}" for other in pointing],
                )
        data = {**topic.published.data, "retired": True}
        version = await self.store.do_publish_data(kind, key, data, member.id, "ngừng dùng")
        await self.on_change(Change(kind, kind == FAQ, member.id))
        return version


def require_reviewer(member: StaffMember) -> None:
    if not member.may_publish:
        raise Forbidden("chỉ người có quyền duyệt mới xuất bản được")


def check_key(kind: str, key: str) -> None:
    pattern = KEY_PATTERN if kind == FAQ else SERVICE_ID
    if not pattern.match(key) or len(key) > 100:
        raise BadInput(
            "mã chủ đề chỉ gồm chữ thường không dấu, số và dấu _"
            if kind == FAQ
            else "mã dịch vụ chỉ gồm chữ thường không dấu, số và dấu -"
        )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadInput("'draft_updated_at' không hợp lệ") from exc
