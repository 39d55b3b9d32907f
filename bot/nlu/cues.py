"""Risk cues: which trafficking indicators a message shows, whatever its intent.

Rules are data (``data/nlu/risk_cues.yml``): for each cue, regular expressions matched
on the folded text (lower case, no diacritics, abbreviations expanded, one space between
words), and exclusions that cancel that cue for the message ("hộ chiếu sắp hết hạn" is
not "documents withheld"). Recall matters more than precision here: a missed cue can
cost a person their safety, an extra one costs a gentle question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.domain import RiskCue
from bot.errors import DataFormatError
from bot.nlu.anchors import required_literals
from bot.nlu.normalize import Normalizer

CUE_NAMES = (
    "deception",
    "documents_withheld",
    "movement_restricted",
    "isolation",
    "violence",
    "threats",
    "wages_withheld",
    "debt_bondage",
    "excessive_hours",
    "sold",
    "ransom",
    "forced_scam",
    "sexual_exploitation",
    "forced_marriage",
    "minor",
)


@dataclass(frozen=True)
class CueRule:
    """A cue's patterns, each with the literals one of which any match contains (so
    a pattern is searched only in texts that could match it), and its exclusions
    joined into one alternation."""

    cue: str
    patterns: tuple[tuple[frozenset[str] | None, re.Pattern[str]], ...]
    exclude: re.Pattern[str] | None
    confidence: float

    def matches(self, folded: str) -> bool:
        if not any(
            _may_match(anchors, folded) and p.search(folded) for anchors, p in self.patterns
        ):
            return False
        return self.exclude is None or not self.exclude.search(folded)


def _may_match(anchors: frozenset[str] | None, folded: str) -> bool:
    return anchors is None or any(anchor in folded for anchor in anchors)


def _combined(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns))


def _compile(path: Path, cue: str, raw: Any, key: str) -> tuple[re.Pattern[str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise DataFormatError(path, f"cue {cue!r}: '{key}' must be a list of regular expressions")
    compiled = []
    for pattern in raw:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise DataFormatError(
                path, f"cue {cue!r}: bad {key} pattern {pattern!r}: {exc}"
            ) from exc
    return tuple(compiled)


def _parse_rule(path: Path, cue: str, raw: Any) -> CueRule:
    if cue not in CUE_NAMES:
        raise DataFormatError(path, f"unknown cue {cue!r}; known cues: {', '.join(CUE_NAMES)}")
    if not isinstance(raw, dict):
        raise DataFormatError(path, f"cue {cue!r} must be a mapping")
    patterns = _compile(path, cue, raw.get("patterns"), "patterns")
    if not patterns:
        raise DataFormatError(path, f"cue {cue!r} has no patterns")
    confidence = float(raw.get("confidence", 0.9))
    exclude = _combined(_compile(path, cue, raw.get("exclude"), "exclude"))
    anchored = tuple((required_literals(p.pattern), p) for p in patterns)
    return CueRule(cue, anchored, exclude, confidence)


class CueDetector:
    def __init__(self, rules: list[CueRule], normalizer: Normalizer) -> None:
        self.rules = rules
        self.normalizer = normalizer

    @classmethod
    def from_file(cls, path: Path, normalizer: Normalizer) -> CueDetector:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise DataFormatError(path, f"invalid YAML: {exc}", line) from exc
        cues = loaded.get("cues") if isinstance(loaded, dict) else None
        if not isinstance(cues, dict):
            raise DataFormatError(path, "expected a top-level 'cues:' mapping")
        return cls([_parse_rule(path, str(cue), raw) for cue, raw in cues.items()], normalizer)

    def detect(self, text: str) -> tuple[RiskCue, ...]:
        return self.detect_folded(self.normalizer.fold(text))

    def detect_folded(self, folded: str) -> tuple[RiskCue, ...]:
        """Cues of a text already folded by this detector's normaliser."""
        if not folded:
            return ()
        return tuple(RiskCue(r.cue, r.confidence) for r in self.rules if r.matches(folded))
