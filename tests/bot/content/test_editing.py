"""What editors and reviewers may do to the content (bot.content.editing).

The shapes the admin page sends (each malformed shape is a ``BadInput`` with a
Vietnamese message, unknown fields refused), the linter on one topic or service
against a small fake ``ContentFacts``, the review-date rule, and ``ContentEditor`` on a
real ``ContentStore`` (one SQLite database for the module, emptied before each test):
keys, stale drafts, the reviewer right, the four-eyes rule, the linter at publish,
rollback and retirement, and what ``on_change`` hears.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import RETIRED_HOTLINE, sqlite_only
from cryptography.fernet import Fernet
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.content.editing import (
    FAQ,
    MIN_EXAMPLES,
    SERVICE,
    Change,
    ContentEditor,
    example_problems,
    faq_data_from_body,
    faq_problems,
    needs_review,
    service_data_from_body,
    service_problems,
)
from bot.domain import StaffMember
from bot.errors import BadInput, Conflict, Forbidden, NotFound, Unprocessable
from bot.storage.content import ContentStore, VersionState
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import Base
from bot.storage.repository import Store

# the retired hotline, written the way people write numbers (never literally here)
RETIRED = f"{RETIRED_HOTLINE[:4]} {RETIRED_HOTLINE[4:]}"
VIETNAMESE = set("ảạăắằẳẵặâấầẩẫậđẻẽẹêếềểễệỉĩịỏọôốồổỗộơớờởỡợủũụưứừửữựỷỹỵáàéèíìóòúùýỳ")


@dataclass
class FakeFacts:
    """The live content the linter checks against, small and in the test's hands."""

    intents: set[str] = field(
        default_factory=lambda: {"greet", "request_counsellor", "faq/deposit", "faq/fees"}
    )
    phones: set[str] = field(default_factory=lambda: {"111", "113", "0912345678"})
    units: set[str] = field(default_factory=lambda: {"Hà Nội", "Huế"})
    examples: dict[str, list[str]] = field(
        default_factory=lambda: {"fees": ["phí đi xuất khẩu lao động", "phí môi giới"]}
    )
    pointing: dict[str, list[str]] = field(default_factory=dict)

    def known_intents(self) -> set[str]:
        return set(self.intents)

    def known_phones(self) -> set[str]:
        return set(self.phones)

    def unit_names(self) -> set[str]:
        return set(self.units)

    def faq_examples(self) -> dict[str, list[str]]:
        return {key: list(texts) for key, texts in self.examples.items()}

    def topics_with_button_to(self, key: str) -> list[str]:
        return list(self.pointing.get(key, []))


def body(**changes: Any) -> dict[str, Any]:
    """A valid topic as the admin page sends it."""
    sent: dict[str, Any] = {
        "title": "Tiền đặt cọc",
        "answer": "Công ty chỉ được thu tiền ký quỹ theo hợp đồng. Cần giúp, gọi 111.",
        "sources": ["Luật 69/2020/QH14, Điều 25"],
        "reviewed": "2025-01-15",
        "buttons": [{"title": "Phí", "payload": "/faq/fees"}],
        "examples": ["tiền cọc đi làm", "đặt cọc bao nhiêu là đúng", "mất tiền cọc phải làm sao"],
    }
    sent.update(changes)
    return sent


def is_vietnamese(message: str) -> bool:
    return bool(set(message.lower()) & VIETNAMESE)


# -- shapes --------------------------------------------------------------------------------


def test_a_valid_body_becomes_the_stored_form() -> None:
    data = faq_data_from_body(
        body(
            key="deposit",
            title="  Tiền đặt cọc  ",
            examples=["  tiền   cọc\tđi làm ", "", "   ", "đặt cọc", "mất cọc"],
            more="   ",
            draft_updated_at="2025-01-01T00:00:00+00:00",
            reviewed=" 2025-01-15 ",
        )
    )
    assert data["title"] == "Tiền đặt cọc"
    assert data["examples"] == ["tiền cọc đi làm", "đặt cọc", "mất cọc"]
    assert data["reviewed"] == "2025-01-15"
    assert data["buttons"] == [{"title": "Phí", "payload": "/faq/fees"}]
    assert "more" not in data and "draft_updated_at" not in data and "key" not in data
    assert faq_data_from_body(body(more="Chi tiết thêm."))["more"] == "Chi tiết thêm."


@pytest.mark.parametrize(
    ("sent", "says"),
    [
        pytest.param([], "cần một đối tượng JSON", id="not-an-object"),
        pytest.param(body(answer=None), "thiếu 'answer'", id="no-answer"),
        pytest.param(body(title="   "), "thiếu 'title'", id="blank-title"),
        pytest.param(body(title=5), "'title' phải là chữ", id="title-not-text"),
        pytest.param(body(title="x" * 201), "'title' dài quá 200 ký tự", id="title-too-long"),
        pytest.param(body(answer="x" * 5001), "'answer' dài quá", id="answer-too-long"),
        pytest.param(body(more=["a"]), "'more' phải là chữ", id="more-not-text"),
        pytest.param(body(sources="Luật"), "'sources' phải là một danh sách", id="sources-text"),
        pytest.param(body(sources=["a", 3]), "'sources' phải là một danh sách", id="source-num"),
        pytest.param(body(sources=["s"] * 11), "'sources': tối đa 10 mục", id="many-sources"),
        pytest.param(body(sources=["s" * 501]), "mỗi mục tối đa 500", id="long-source"),
        pytest.param(body(reviewed=None), "'reviewed' phải là ngày", id="no-date"),
        pytest.param(body(reviewed="15/01/2025"), "YYYY-MM-DD", id="date-written-dmy"),
        pytest.param(body(reviewed="2025-02-30"), "YYYY-MM-DD", id="no-such-day"),
        pytest.param(body(reviewed=20250115), "YYYY-MM-DD", id="date-a-number"),
        pytest.param(body(buttons={"title": "a"}), "'buttons' phải là một danh sách", id="btns"),
        pytest.param(body(buttons=["/faq/fees"]), "mỗi nút cần 'title'", id="button-text"),
        pytest.param(body(buttons=[{"title": "a"}]), "là chữ", id="button-no-payload"),
        pytest.param(body(examples="một câu"), "'examples' phải là", id="examples-text"),
        pytest.param(body(examples=["câu"] * 401), "tối đa 400 mục", id="many-examples"),
        pytest.param(body(examples=["c" * 301]), "mỗi mục tối đa 300", id="long-example"),
        pytest.param(body(retired=True), "trường không hợp lệ: retired", id="unknown-field"),
        pytest.param(body(id=1, zz=2), "trường không hợp lệ: id, zz", id="unknown-fields"),
    ],
)
def test_each_bad_shape_is_refused_in_vietnamese(sent: Any, says: str) -> None:
    with pytest.raises(BadInput) as refused:
        faq_data_from_body(sent)
    assert says in str(refused.value)
    assert is_vietnamese(str(refused.value))


def test_a_service_body_takes_its_id_from_the_key() -> None:
    data = service_data_from_body(
        "tro-giup-ha-noi",
        {
            "id": "something-else",
            "name": "Trợ giúp pháp lý",
            "website": "",
            "address": None,
            "verified_at": "2025-03-01",
            "draft_updated_at": "2025-01-01T00:00:00+00:00",
        },
    )
    assert data == {
        "id": "tro-giup-ha-noi",
        "name": "Trợ giúp pháp lý",
        "verified_at": "2025-03-01",
    }
    with pytest.raises(BadInput, match="YYYY-MM-DD"):
        service_data_from_body("x", {"verified_at": "01/03/2025"})
    with pytest.raises(BadInput, match="đối tượng JSON"):
        service_data_from_body("x", "tên")


# -- the linter ----------------------------------------------------------------------------


def test_a_good_topic_has_no_problems() -> None:
    assert faq_problems("deposit", faq_data_from_body(body()), FakeFacts()) == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({"sources": []}, "thiếu nguồn", id="no-sources"),
        pytest.param(
            {"answer": f"Gọi {RETIRED} nhé."}, "số đường dây nóng cũ", id="retired-number"
        ),
        pytest.param(
            {"more": f"Hoặc số {RETIRED}."},
            "thông tin thêm: số đường dây nóng cũ",
            id="retired-in-more",
        ),
        pytest.param({"answer": "a" * 601}, "tối đa 600", id="answer-too-long"),
        pytest.param({"examples": ["một", "hai"]}, "ít nhất 3", id="few-examples"),
        pytest.param({"examples": ["a", "b", "PHÍ  môi giới"]}, "đã thuộc chủ đề fees", id="taken"),
        pytest.param(
            {"buttons": [{"title": "?", "payload": "/faq/nowhere"}]},
            "dẫn tới ý định không có",
            id="button-nowhere",
        ),
        pytest.param(
            {"buttons": [{"title": "?", "payload": "faq/fees"}]},
            "không đúng dạng /ý_định",
            id="payload",
        ),
        pytest.param(
            {"answer": "Gọi 0987 654 321 ngay."},
            "số 0987 654 321 không có trong danh bạ dịch vụ",
            id="unknown-number",
        ),
        pytest.param(
            {"title": "Gọi 0987654321"}, "tên chủ đề: số 0987654321 không có", id="number-in-title"
        ),
        pytest.param({"reviewed": "2999-01-01"}, "ở tương lai", id="reviewed-later"),
    ],
)
def test_each_reason_not_to_publish_is_found(changes: dict[str, Any], says: str) -> None:
    problems = faq_problems("deposit", {**faq_data_from_body(body()), **changes}, FakeFacts())
    assert any(says in problem for problem in problems), problems


def test_a_problem_found_twice_is_said_once() -> None:
    data = {**faq_data_from_body(body()), "answer": f"Gọi {RETIRED} hoặc {RETIRED}."}
    problems = faq_problems("deposit", data, FakeFacts())
    assert len([p for p in problems if "đường dây nóng cũ" in p]) == 1


def test_numbers_of_the_directory_and_buttons_to_the_topic_itself_pass() -> None:
    data = {
        **faq_data_from_body(body()),
        "answer": "Gọi 113 khi nguy hiểm, 111 để trình báo, hoặc 0912 345 678.",
        "buttons": [{"title": "Lại", "payload": "/faq/brand_new"}],
    }
    assert faq_problems("brand_new", data, FakeFacts()) == []


def test_examples_a_topic_already_owns_are_its_own() -> None:
    facts = FakeFacts(examples={"fees": ["phí môi giới", "phí đi làm", "phí visa"]})
    assert example_problems("fees", ["phí môi giới", "phí đi làm", "phí visa"], facts) == []
    problems = example_problems("deposit", ["Phí visa", "tiền cọc", "cọc"], facts)
    assert problems == ["câu mẫu “Phí visa” đã thuộc chủ đề fees"]
    assert example_problems("deposit", [], facts) == [
        f"cần ít nhất {MIN_EXAMPLES} câu hỏi mẫu để bot nhận ra chủ đề"
    ]


def service_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "tro-giup-ha-noi",
        "name": "Trung tâm trợ giúp pháp lý Hà Nội",
        "kind": "legal_aid",
        "provinces": ["Hà Nội"],
        "phone": "024 3333 3333",
        "helps_with": "Tư vấn pháp luật miễn phí cho người bị hại.",
        "source": "Sở Tư pháp Hà Nội",
        "verified_at": "2025-03-01",
    }
    record.update(changes)
    return record


def test_a_good_service_has_no_problems() -> None:
    assert service_problems("tro-giup-ha-noi", service_record(), FakeFacts()) == []
    nationwide = service_record(provinces=["all"], phone="111")
    assert service_problems("tro-giup-ha-noi", nationwide, FakeFacts()) == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({"provinces": ["Atlantis"]}, "phạm vi phải là", id="unknown-unit"),
        pytest.param({"provinces": ["Hà Nội", "Huế"]}, "phạm vi phải là", id="two-units"),
        pytest.param({"phone": "gọi ngay"}, "không phải số điện thoại", id="bad-phone"),
        pytest.param(
            {"verified_at": "2999-01-01"}, "ngày xác minh ở tương lai", id="verified-later"
        ),
        pytest.param({"kind": "bank"}, "bank", id="unknown-kind"),
        pytest.param(
            {"helps_with": f"Số cũ {RETIRED}."}, "giúp gì: số đường dây nóng cũ", id="old"
        ),
    ],
)
def test_each_reason_a_service_may_not_be_published(changes: dict[str, Any], says: str) -> None:
    problems = service_problems("tro-giup-ha-noi", service_record(**changes), FakeFacts())
    assert any(says in problem for problem in problems), problems


def test_a_service_missing_what_the_schema_requires_is_refused() -> None:
    record = service_record()
    del record["source"]
    assert service_problems("tro-giup-ha-noi", record, FakeFacts()) != []


def test_needs_review_after_the_allowed_days() -> None:
    today = date(2026, 1, 31)
    assert not needs_review("2026-01-01", today, 30)
    assert not needs_review((today - timedelta(days=30)).isoformat(), today, 30)
    assert needs_review((today - timedelta(days=31)).isoformat(), today, 30)
    assert needs_review(None, today, 30)
    assert needs_review("", today, 30)
    assert needs_review("không rõ", today, 30)


# -- the editor ----------------------------------------------------------------------------


@dataclass
class Desk:
    editor: ContentEditor
    store: ContentStore
    facts: FakeFacts
    changes: list[Change]
    writer: StaffMember  # an editor without the reviewer right
    other_writer: StaffMember  # an editor who may publish
    admin: StaffMember


async def empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "audit_log":
                await connection.execute(delete(table))


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sqlite_only(tmp_path_factory) as url:
        yield url


@pytest.fixture
async def desk(database: str) -> AsyncIterator[Desk]:
    engine = create_engine(database)
    await empty_tables(engine)
    vault = Vault([Fernet.generate_key().decode()])
    store = Store(session_factory(engine), vault, "secret")
    members = []
    for username, role, reviewer in (
        ("lan", "editor", False),
        ("minh", "editor", True),
        ("quan_tri", "admin", False),
    ):
        staff_id = await store.do_create_staff_user(username, "hash", role, reviewer=reviewer)
        members.append(StaffMember(staff_id, username, role, reviewer))
    content = ContentStore(session_factory(engine), vault)
    changes: list[Change] = []

    async def on_change(change: Change) -> None:
        changes.append(change)

    facts = FakeFacts()
    yield Desk(ContentEditor(content, facts, on_change), content, facts, changes, *members)
    await engine.dispose()


async def drafted(desk: Desk, key: str = "deposit", **changes: Any) -> None:
    await desk.editor.create(FAQ, key, faq_data_from_body(body(**changes)), desk.writer)


async def test_create_makes_a_draft_and_refuses_a_key_in_use(desk: Desk) -> None:
    version = await desk.editor.create(FAQ, "deposit", faq_data_from_body(body()), desk.writer)
    assert (version.number, version.state, version.edited_by) == (1, "draft", "lan")
    with pytest.raises(Conflict):
        await desk.editor.create(FAQ, "deposit", faq_data_from_body(body()), desk.admin)
    assert desk.changes == []  # a draft changes nothing the bot says


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (FAQ, "Deposit"),
        (FAQ, "tiền_cọc"),
        (FAQ, "1deposit"),
        (FAQ, "deposit-money"),
        (FAQ, "faq/deposit"),
        (FAQ, "d" * 101),
        (SERVICE, "Ha-Noi"),
        (SERVICE, "ha_noi"),
        (SERVICE, "-ha-noi"),
    ],
)
async def test_create_refuses_a_malformed_key(desk: Desk, kind: str, key: str) -> None:
    with pytest.raises(BadInput) as refused:
        await desk.editor.create(kind, key, {}, desk.writer)
    assert is_vietnamese(str(refused.value))
    assert await desk.store.count_versions(kind) == 0


async def test_save_draft_edits_in_place_and_refuses_a_stale_draft(desk: Desk) -> None:
    await drafted(desk)
    topic = await desk.editor.topic(FAQ, "deposit")
    assert topic.draft is not None
    read_at = topic.draft.updated_at.isoformat()
    saved = await desk.editor.save_draft(
        FAQ,
        "deposit",
        {**faq_data_from_body(body(answer="Mới.")), "draft_updated_at": read_at},
        desk.other_writer,
    )
    assert (saved.number, saved.data["answer"], saved.edited_by) == (1, "Mới.", "minh")
    assert "draft_updated_at" not in saved.data
    with pytest.raises(Conflict):  # someone read the draft before minh's save
        await desk.editor.save_draft(
            FAQ,
            "deposit",
            {**faq_data_from_body(body(answer="Cũ.")), "draft_updated_at": read_at},
            desk.writer,
        )
    current = await desk.editor.topic(FAQ, "deposit")
    assert current.draft is not None and current.draft.data["answer"] == "Mới."
    with pytest.raises(NotFound):
        await desk.editor.save_draft(FAQ, "nothing", faq_data_from_body(body()), desk.writer)


async def test_publishing_needs_the_reviewer_right(desk: Desk) -> None:
    await drafted(desk)
    with pytest.raises(Forbidden):
        await desk.editor.publish(FAQ, "deposit", desk.writer, None)
    counsellor = StaffMember(desk.writer.id, "lan", "counsellor", False)
    with pytest.raises(Forbidden):
        await desk.editor.publish(FAQ, "deposit", counsellor, None)
    assert await desk.store.get_published(FAQ) == [] and desk.changes == []


async def test_the_last_editor_may_not_publish_their_own_draft(desk: Desk) -> None:
    await desk.editor.create(FAQ, "deposit", faq_data_from_body(body()), desk.admin)
    with pytest.raises(Conflict, match="bốn mắt"):
        await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    published = await desk.editor.publish(FAQ, "deposit", desk.other_writer, None)
    assert published.published_by == "minh" and published.edited_by == "quan_tri"


async def test_a_draft_failing_the_linter_is_not_published(desk: Desk) -> None:
    await drafted(desk, examples=["chỉ một câu"], sources=[], answer=f"Gọi {RETIRED}.")
    with pytest.raises(Unprocessable) as refused:
        await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    problems = refused.value.problems
    assert any("ít nhất 3" in p for p in problems)
    assert any("thiếu nguồn" in p for p in problems)
    assert any("đường dây nóng cũ" in p for p in problems)
    topic = await desk.editor.topic(FAQ, "deposit")
    assert topic.published is None and topic.draft is not None and desk.changes == []


async def test_publishing_a_stale_draft_is_refused(desk: Desk) -> None:
    await drafted(desk)
    read = (await desk.editor.topic(FAQ, "deposit")).draft
    assert read is not None
    await desk.editor.save_draft(
        FAQ, "deposit", faq_data_from_body(body(answer="Sửa.")), desk.writer
    )
    with pytest.raises(Conflict):
        await desk.editor.publish(FAQ, "deposit", desk.admin, read.updated_at.isoformat())
    with pytest.raises(BadInput):
        await desk.editor.publish(FAQ, "deposit", desk.admin, "hôm qua")
    assert desk.changes == []


async def test_publishing_tells_whether_the_examples_changed(desk: Desk) -> None:
    await drafted(desk)
    read = (await desk.editor.topic(FAQ, "deposit")).draft
    assert read is not None
    first = await desk.editor.publish(FAQ, "deposit", desk.admin, read.updated_at.isoformat())
    assert first.state == VersionState.PUBLISHED.value
    assert desk.changes == [Change(FAQ, True, desk.admin.id)]  # a new topic: new examples
    await desk.editor.save_draft(
        FAQ, "deposit", faq_data_from_body(body(answer="Khác.")), desk.writer
    )
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    assert desk.changes[-1] == Change(FAQ, False, desk.admin.id)  # only the answer changed
    more = body(examples=[*body()["examples"], "cọc bao nhiêu tiền"])
    await desk.editor.save_draft(FAQ, "deposit", faq_data_from_body(more), desk.writer)
    await desk.editor.publish(FAQ, "deposit", desk.other_writer, None)
    assert desk.changes[-1] == Change(FAQ, True, desk.other_writer.id)
    with pytest.raises(Conflict):  # nothing left to publish
        await desk.editor.publish(FAQ, "deposit", desk.admin, None)


async def test_rollback_publishes_an_old_version_as_a_new_one(desk: Desk) -> None:
    await drafted(desk)
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    await desk.editor.save_draft(
        FAQ, "deposit", faq_data_from_body(body(answer="Hai.")), desk.writer
    )
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    back = await desk.editor.rollback(FAQ, "deposit", 1, desk.admin)
    assert back.number == 3 and back.state == VersionState.PUBLISHED.value
    assert back.note == "khôi phục phiên bản 1"
    assert back.data == faq_data_from_body(body())
    assert desk.changes[-1] == Change(FAQ, False, desk.admin.id)
    history = await desk.store.get_history(FAQ, "deposit")
    assert [(v.number, v.state) for v in history] == [
        (3, "published"),
        (2, "superseded"),
        (1, "superseded"),
    ]


async def test_rollback_needs_a_published_version_and_the_reviewer_right(desk: Desk) -> None:
    await drafted(desk)
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    await desk.editor.save_draft(
        FAQ, "deposit", faq_data_from_body(body(answer="Nháp.")), desk.writer
    )
    with pytest.raises(NotFound):
        await desk.editor.rollback(FAQ, "deposit", 9, desk.admin)
    with pytest.raises(NotFound):  # version 2 is the open draft, never published
        await desk.editor.rollback(FAQ, "deposit", 2, desk.admin)
    with pytest.raises(NotFound):
        await desk.editor.rollback(FAQ, "nothing", 1, desk.admin)
    with pytest.raises(Forbidden):
        await desk.editor.rollback(FAQ, "deposit", 1, desk.writer)
    assert desk.changes == [Change(FAQ, True, desk.admin.id)]


async def test_rollback_to_a_version_the_linter_now_refuses_is_refused(desk: Desk) -> None:
    await drafted(desk)
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    await desk.editor.save_draft(
        FAQ, "deposit", faq_data_from_body(body(answer="Hai.")), desk.writer
    )
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    desk.facts.intents.discard("faq/fees")  # version 1's button now leads nowhere
    with pytest.raises(Unprocessable) as refused:
        await desk.editor.rollback(FAQ, "deposit", 1, desk.admin)
    assert any("ý định không có" in p for p in refused.value.problems)


async def test_retiring_a_topic_others_point_to_is_refused(desk: Desk) -> None:
    await drafted(desk)
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    desk.facts.pointing["deposit"] = ["fees", "visa"]
    with pytest.raises(Unprocessable) as refused:
        await desk.editor.retire(FAQ, "deposit", desk.admin)
    assert refused.value.problems == ["nút trong chủ đề fees", "nút trong chủ đề visa"]
    topic = await desk.editor.topic(FAQ, "deposit")
    assert topic.published is not None and not topic.published.retired


async def test_retiring_publishes_a_retired_version_once(desk: Desk) -> None:
    await drafted(desk)
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    with pytest.raises(Forbidden):
        await desk.editor.retire(FAQ, "deposit", desk.writer)
    retired = await desk.editor.retire(FAQ, "deposit", desk.other_writer)
    assert retired.retired and retired.note == "ngừng dùng" and retired.number == 2
    assert desk.changes[-1] == Change(FAQ, True, desk.other_writer.id)
    with pytest.raises(Conflict):
        await desk.editor.retire(FAQ, "deposit", desk.admin)
    await drafted(desk, key="fees")
    with pytest.raises(Conflict):  # never published
        await desk.editor.retire(FAQ, "fees", desk.admin)


async def test_retiring_a_service_changes_no_examples(desk: Desk) -> None:
    await desk.editor.create(SERVICE, "tro-giup-ha-noi", service_record(), desk.writer)
    await desk.editor.publish(SERVICE, "tro-giup-ha-noi", desk.admin, None)
    assert desk.changes == [Change(SERVICE, False, desk.admin.id)]
    desk.facts.pointing["tro-giup-ha-noi"] = ["deposit"]  # buttons point to FAQ topics only
    retired = await desk.editor.retire(SERVICE, "tro-giup-ha-noi", desk.admin)
    assert retired.retired
    assert desk.changes[-1] == Change(SERVICE, False, desk.admin.id)


async def test_a_service_failing_the_linter_is_not_published(desk: Desk) -> None:
    await desk.editor.create(
        SERVICE, "tro-giup-ha-noi", service_record(provinces=["Atlantis"]), desk.writer
    )
    with pytest.raises(Unprocessable) as refused:
        await desk.editor.publish(SERVICE, "tro-giup-ha-noi", desk.admin, None)
    assert any("phạm vi" in p for p in refused.value.problems)
    with pytest.raises(NotFound, match="dịch vụ"):
        await desk.editor.topic(SERVICE, "nothing")


async def test_rolling_back_to_a_retired_version_checks_buttons_pointing_to_it(
    desk: Desk,
) -> None:
    await drafted(desk)
    await desk.editor.publish(FAQ, "deposit", desk.admin, None)
    await desk.editor.retire(FAQ, "deposit", desk.admin)  # version 2: retired
    await desk.editor.rollback(FAQ, "deposit", 1, desk.admin)  # version 3: back in use
    desk.facts.pointing["deposit"] = ["fees"]  # since then, "fees" has a button to it
    with pytest.raises(Unprocessable):
        await desk.editor.rollback(FAQ, "deposit", 2, desk.admin)
    topic = await desk.editor.topic(FAQ, "deposit")
    assert topic.published is not None and not topic.published.retired
