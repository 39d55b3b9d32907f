"""Literal anchors only ever skip searches that could not match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.nlu.anchors import required_literals
from bot.nlu.cues import CueDetector, _trie_pattern
from bot.nlu.training import load_normalizer

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "nlu"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\bkhac hoan toan\b", {"khac hoan toan"}),
        (r"\b(ai ngo|ai de|hoa ra)\b", {"ai ngo", "ai de", "hoa ra"}),
        (r"\bbi( \w+){0,4} (lua|gat)\b", {"lua", "gat"}),
        (r"(?<!khong )giu( luon)? ho chieu", {" ho chieu"}),
        (r"(x|)", None),  # an empty branch: nothing is required
        (r"\w+", None),
        (r"a.{0,9}b", {"a"}),
    ],
)
def test_required_literals(pattern: str, expected: set[str] | None) -> None:
    assert required_literals(pattern) == (frozenset(expected) if expected else None)


def all_rule_patterns() -> list[str]:
    cues = yaml.safe_load((DATA / "risk_cues.yml").read_text(encoding="utf-8"))["cues"]
    return [p for rule in cues.values() for p in rule["patterns"]]


WORDS = sorted({w for p in all_rule_patterns() for w in re.findall(r"[a-z]+", p)})
ANCHORED = [(re.compile(p), required_literals(p)) for p in all_rule_patterns()]


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join))
def test_anchors_never_hide_a_match(text: str) -> None:
    for pattern, anchors in ANCHORED:
        if anchors is not None and pattern.search(text):
            assert any(anchor in text for anchor in anchors), (pattern.pattern, text)


def test_detection_is_unchanged_on_every_labelled_message() -> None:
    normalizer = load_normalizer(DATA)
    detector = CueDetector.from_file(DATA / "risk_cues.yml", normalizer)
    texts = [
        e["text"]
        for path in (
            DATA / "test" / "risk_cues_test.yml",
            DATA / "risk_cue_examples.yml",
        )
        for e in yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]
    ]
    for text in texts:
        folded = normalizer.fold(text)
        unfiltered = {r.cue for r in detector.rules if _matches_without_anchors(r, folded)}
        assert {c.cue for c in detector.detect_folded(folded)} == unfiltered, text


def _matches_without_anchors(rule: object, folded: str) -> bool:
    patterns = rule.patterns  # type: ignore[attr-defined]
    exclude = rule.exclude  # type: ignore[attr-defined]
    if not any(p.search(folded) for _, p in patterns):
        return False
    return exclude is None or not exclude.search(folded)


ANCHOR_WORDS = sorted({w for p in all_rule_patterns() for w in re.findall(r"[a-z]+", p)})[:300]


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    words=st.sets(st.sampled_from(ANCHOR_WORDS), min_size=1, max_size=40),
    text=st.lists(st.sampled_from(ANCHOR_WORDS), max_size=12).map(" ".join),
)
def test_trie_scan_finds_exactly_the_words_present(words: set[str], text: str) -> None:
    scan = re.compile(f"(?=({_trie_pattern(words)}))")
    longest_at_each_place = {m.group(1) for m in scan.finditer(text)}
    # every word present is a prefix of the longest word found where it starts
    found = {w for w in words if any(hit.startswith(w) for hit in longest_at_each_place)}
    assert {w for w in words if w in text} <= found
    assert found <= {w for w in words if w in text}
