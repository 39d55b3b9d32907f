"""The safety rules of data/safety.yml: "danger now" detection and the one-time
acknowledgement of risk cues.

Checks that the shipped rules load; that ``is_danger_now`` fires on the emergency intent or
on a danger cue said in the present (with or without diacritics) and not on past events,
non-danger cues or cue-less messages; that ``cue_acknowledgement`` thanks, gives at most two
lines in the data's order and offers screening or a counsellor, once per cue; that every cue
has a short line and no hotline but 111 and 113 appears; and that a file without
``cue_lines`` is rejected naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain import IntentScore, ParseResult, RiskCue
from bot.engine.safety import MAX_CUE_LINES, SafetyRules, load_safety_rules
from bot.errors import DataFormatError
from bot.nlu.cues import CUE_NAMES

REPO = Path(__file__).resolve().parents[3]
SAFETY_FILE = REPO / "data" / "safety.yml"

# Law numbers ("53/2024/QH15", "24/7") and years are not phone numbers.
NOT_A_PHONE = re.compile(r"\d+(?:/\d+)+(?:/[\w-]+)?|\b(?:19|20)\d{2}\b")
PHONE_LIKE = re.compile(r"\+?\d(?:[ .\-]?\d){2,}")


def phone_numbers(text: str) -> set[str]:
    return {re.sub(r"\D", "", m) for m in PHONE_LIKE.findall(NOT_A_PHONE.sub(" ", text))}


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def rules() -> SafetyRules:
    return load_safety_rules(SAFETY_FILE)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(SAFETY_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def data_lines(raw: dict[str, Any]) -> dict[str, str]:
    """The cue lines as shown (whitespace folded), in the data's order."""
    return {str(cue): one_line(str(line)) for cue, line in raw["cue_lines"].items()}


def parse(text: str, *cues: str, intent: str = "nlu_fallback") -> ParseResult:
    return ParseResult(
        text=text,
        intent=IntentScore(intent, 0.8),
        risk_cues=tuple(RiskCue(cue, 0.9) for cue in cues),
    )


# -- the shipped rules --------------------------------------------------------------------


def test_shipped_rules_load(rules: SafetyRules, raw: dict[str, Any]) -> None:
    assert rules.danger_cues == frozenset(raw["danger_now"]["cues"])
    assert {"violence", "movement_restricted", "ransom"} <= rules.danger_cues
    assert "documents_withheld" not in rules.danger_cues
    assert rules.acknowledge == str(raw["acknowledge"]).strip()
    assert [b.payload for b in rules.offer_buttons] == ["/start_screening", "/request_counsellor"]


def test_every_cue_has_a_line(raw: dict[str, Any]) -> None:
    missing = set(CUE_NAMES) - set(raw["cue_lines"])
    assert not missing
    assert set(raw["cue_lines"]) <= set(CUE_NAMES)


def test_shipped_file_never_mentions_old_hotlines() -> None:
    text = SAFETY_FILE.read_text(encoding="utf-8")
    digits_only = re.sub(r"\D", "", text)
    for old in ("1800", "1567"):
        assert old not in text
        assert old not in digits_only


def test_only_phone_numbers_are_111_and_113(raw: dict[str, Any]) -> None:
    texts = [raw["acknowledge"], raw["offer"], *raw["cue_lines"].values()]
    texts += [b["title"] for b in raw["offer_buttons"]]
    found = set().union(*(phone_numbers(str(t)) for t in texts))
    assert found == {"111", "113"}


@pytest.mark.parametrize("cue", CUE_NAMES)
def test_each_cue_line_is_short(data_lines: dict[str, str], cue: str) -> None:
    assert 0 < len(data_lines[cue]) <= 220, data_lines[cue]


def test_load_rejects_file_without_cue_lines(tmp_path: Path, raw: dict[str, Any]) -> None:
    broken = {k: v for k, v in raw.items() if k != "cue_lines"}
    path = tmp_path / "safety.yml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_safety_rules(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert "cue_lines" in caught.value.detail


def test_load_accepts_an_unmodified_round_tripped_copy(
    tmp_path: Path, raw: dict[str, Any], rules: SafetyRules
) -> None:
    """The control for the rejection above."""
    path = tmp_path / "safety.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    copy = load_safety_rules(path)
    assert copy.cue_lines == rules.cue_lines
    assert copy.present.pattern == rules.present.pattern


# -- danger now ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cues", "intent", "expected"),
    [
        pytest.param("", (), "emergency", True, id="emergency-empty"),
        pytest.param("xin chào", (), "emergency", True, id="emergency-any-text"),
        pytest.param("năm ngoái", ("documents_withheld",), "emergency", True, id="emergency-past"),
        pytest.param("họ đang đánh tôi", ("violence",), "nlu_fallback", True, id="dang"),
        pytest.param("ho dang danh toi", ("violence",), "nlu_fallback", True, id="dang-bare"),
        pytest.param("HỌ ĐANG ĐÁNH TÔI!!", ("violence",), "nlu_fallback", True, id="dang-upper"),
        pytest.param(
            "bây giờ bị nhốt", ("movement_restricted",), "nlu_fallback", True, id="bay-gio"
        ),
        pytest.param(
            "bay gio bi nhot", ("movement_restricted",), "nlu_fallback", True, id="bay-gio-bare"
        ),
        pytest.param(
            "cứu, bị giữ đòi tiền chuộc", ("ransom",), "nlu_fallback", True, id="cuu-ransom"
        ),
        pytest.param(
            "cuu, bi giu doi tien chuoc", ("ransom",), "nlu_fallback", True, id="cuu-bare"
        ),
        pytest.param(
            "tối nay họ sẽ đánh tôi", ("violence", "threats"), "threats", True, id="toi-nay"
        ),
        pytest.param("năm ngoái tôi bị đánh", ("violence",), "nlu_fallback", False, id="past"),
        pytest.param(
            "hồi trước tôi bị nhốt", ("movement_restricted",), "nlu_fallback", False, id="past-2"
        ),
        pytest.param(
            "năm 2019 họ đòi tiền chuộc", ("ransom",), "nlu_fallback", False, id="past-ransom"
        ),
        pytest.param(
            "họ đang giữ hộ chiếu của tôi",
            ("documents_withheld",),
            "nlu_fallback",
            False,
            id="present-non-danger-cue",
        ),
        pytest.param("tôi đang bị đánh", (), "nlu_fallback", False, id="no-cues"),
        pytest.param("cứu", (), "greet", False, id="marker-only"),
        pytest.param(
            "tôi bị đánh, dangerous", ("violence",), "nlu_fallback", False, id="whole-words"
        ),
    ],
)
def test_is_danger_now(
    rules: SafetyRules, text: str, cues: tuple[str, ...], intent: str, expected: bool
) -> None:
    assert rules.is_danger_now(parse(text, *cues, intent=intent)) is expected


def test_no_intent_and_no_cues_is_not_danger(rules: SafetyRules) -> None:
    assert rules.is_danger_now(ParseResult(text="đang", intent=None)) is False


# -- acknowledging cues -------------------------------------------------------------------


def test_new_cue_is_acknowledged_with_its_line_and_the_offer(
    rules: SafetyRules, raw: dict[str, Any], data_lines: dict[str, str]
) -> None:
    reply = rules.cue_acknowledgement(["documents_withheld"], [])
    assert reply is not None
    acknowledge = str(raw["acknowledge"]).strip()
    offer = one_line(str(raw["offer"]))
    assert reply.text.startswith(acknowledge)
    assert data_lines["documents_withheld"] in reply.text
    assert reply.text.endswith(offer)
    assert reply.text == f"{acknowledge} {data_lines['documents_withheld']} {offer}"
    assert [(b.title, b.payload) for b in reply.buttons] == [
        (str(b["title"]), str(b["payload"])) for b in raw["offer_buttons"]
    ]
    assert [b.payload for b in reply.buttons] == ["/start_screening", "/request_counsellor"]


@pytest.mark.parametrize(
    ("cues", "already"),
    [
        (["violence"], ["violence"]),
        (["violence", "threats"], ["threats", "violence", "minor"]),
        ([], []),
        ([], ["violence"]),
    ],
)
def test_nothing_new_gives_no_reply(
    rules: SafetyRules, cues: list[str], already: list[str]
) -> None:
    assert rules.cue_acknowledgement(cues, already) is None


def test_only_new_cues_get_a_line(rules: SafetyRules, data_lines: dict[str, str]) -> None:
    reply = rules.cue_acknowledgement(["violence", "wages_withheld"], ["violence"])
    assert reply is not None
    assert data_lines["wages_withheld"] in reply.text
    assert data_lines["violence"] not in reply.text


def test_at_most_two_lines_in_the_data_order(
    rules: SafetyRules, data_lines: dict[str, str]
) -> None:
    assert MAX_CUE_LINES == 2
    order = list(data_lines)
    chosen = [order[-1], order[5], order[2], order[8], order[1]]  # five cues, shuffled
    reply = rules.cue_acknowledgement(chosen, [])
    assert reply is not None
    shown = [cue for cue in chosen if data_lines[cue] in reply.text]
    assert sorted(shown, key=order.index) == [order[1], order[2]]
    assert reply.text.index(data_lines[order[1]]) < reply.text.index(data_lines[order[2]])


def test_minor_gets_the_child_protection_line(
    rules: SafetyRules, data_lines: dict[str, str]
) -> None:
    reply = rules.cue_acknowledgement(["minor"], [])
    assert reply is not None
    assert data_lines["minor"] in reply.text
    assert "111" in data_lines["minor"]
    assert "trẻ em" in data_lines["minor"]


def test_unknown_cue_names_are_ignored(rules: SafetyRules, data_lines: dict[str, str]) -> None:
    assert rules.cue_acknowledgement(["not_a_cue"], []) is None
    reply = rules.cue_acknowledgement(["not_a_cue", "sold", "also_unknown"], [])
    assert reply is not None
    assert data_lines["sold"] in reply.text
    assert reply == rules.cue_acknowledgement(["sold"], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tôi chưa bao giờ bị đánh", False),  # "bao giờ" is "ever", not "now"
        ("năm ngoái, ngày nào họ cũng đánh tôi", False),  # "ngày" (day) is not "ngay"
        ("bị đánh, đáng sợ lắm", False),  # "đáng" is not "đang"
        ("bây giờ họ đang đánh tôi", True),
        ("ho dang danh toi", True),  # typed without diacritics: folded markers
        ("ngay bay gio bi nhot", True),
    ],
)
def test_markers_are_read_as_written_when_diacritics_are_there(
    rules: SafetyRules, text: str, expected: bool
) -> None:
    assert rules.is_danger_now(parse(text, "violence")) is expected


@pytest.mark.parametrize(
    ("text", "about_someone"),
    [
        ("Quyền của người bị mua bán", False),
        ("Báo tin, tố giác mua bán người ở đâu?", False),
        ("họ giữ hộ chiếu của tôi", True),
        ("em gái tôi bị bán sang Trung Quốc", True),
        ("gia đình bị đòi tiền để thả người thân", True),
        ("ho giu ho chieu cua toi", True),  # without diacritics
        ("quyen cua nguoi bi mua ban", False),
    ],
)
def test_only_messages_about_someone_are_acknowledged(
    rules: SafetyRules, text: str, about_someone: bool
) -> None:
    assert rules.is_about_someone(text) is about_someone
