"""Risk cues: the rules file, hard negatives, and figures on the held-out test set."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import DataFormatError
from bot.nlu.cues import CUE_NAMES, CueDetector
from bot.nlu.evaluation import evaluate_cues, read_cue_examples
from bot.nlu.training import load_normalizer

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "nlu"


@pytest.fixture(scope="module")
def detector() -> CueDetector:
    return CueDetector.from_file(DATA / "risk_cues.yml", load_normalizer(DATA))


def cues(detector: CueDetector, text: str) -> set[str]:
    return {cue.cue for cue in detector.detect(text)}


def test_every_cue_has_rules(detector: CueDetector) -> None:
    assert {rule.cue for rule in detector.rules} == set(CUE_NAMES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("họ giữ hộ chiếu của tôi", {"documents_withheld"}),
        ("ho giu ho chieu cua toi", {"documents_withheld"}),
        ("cty giữ hc ko trả", {"documents_withheld"}),
        ("họ đòi gia đình tôi 200 triệu tiền chuộc", {"ransom"}),
    ],
)
def test_cues_fire_however_people_type(
    detector: CueDetector, text: str, expected: set[str]
) -> None:
    assert expected <= cues(detector, text)


@pytest.mark.parametrize(
    "text",
    [
        "hộ chiếu của tôi sắp hết hạn",
        "ho chieu sap het han thi lam lai o dau",
        "làm hộ chiếu ở đâu",
        "tôi muốn hỏi về phí đi Nhật",
    ],
)
def test_innocent_messages_fire_nothing(detector: CueDetector, text: str) -> None:
    assert "documents_withheld" not in cues(detector, text)
    assert cues(detector, text) == set()


def test_held_out_recall_and_precision(detector: CueDetector) -> None:
    report = evaluate_cues(
        lambda text: cues(detector, text), read_cue_examples(DATA / "test" / "risk_cues_test.yml")
    )
    assert report.examples >= 250
    assert report.micro_recall >= 0.90, report
    assert report.micro_precision >= 0.85, report


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cues: []\n", "top-level 'cues:' mapping"),
        ("cues:\n  nonsense:\n    patterns: ['x']\n", "unknown cue"),
        ("cues:\n  violence:\n    patterns: []\n", "no patterns"),
        ("cues:\n  violence:\n    patterns: ['(unclosed']\n", "bad patterns pattern"),
        ("cues: [\n", "invalid YAML"),
    ],
)
def test_a_bad_rules_file_names_itself(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "risk_cues.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message) as caught:
        CueDetector.from_file(path, load_normalizer(DATA))
    assert str(path) in str(caught.value)
