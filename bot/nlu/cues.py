"""Risk cues: which trafficking indicators a message shows, whatever its intent.

Rules are data (``data/nlu/risk_cues.yml``): for each cue, regular expressions matched
on the folded text (lower case, no diacritics, abbreviations expanded, one space between
words), and exclusions that cancel that cue for the message ("hộ chiếu sắp hết hạn" is
not "documents withheld"). Recall matters more than precision here: a missed cue can
cost a person their safety, an extra one costs a gentle question.

The rules are one half of the detector; ``cue_model.py`` is the other, and the
interpreter reports a cue when either finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.datafiles import read_yaml
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
    """A cue's patterns, each with the literals one of which any match contains (or
    ``None`` when no such literal is known), and its exclusions joined into one
    alternation."""

    cue: str
    patterns: tuple[tuple[frozenset[str] | None, re.Pattern[str]], ...]
    exclude: re.Pattern[str] | None
    confidence: float

    def matches_any(self, folded: str, patterns: list[re.Pattern[str]]) -> bool:
        if not any(p.search(folded) for p in patterns):
            return False
        return self.exclude is None or not self.exclude.search(folded)


class AnchorIndex:
    """Which patterns a text could match, from the anchor literals it contains.

    One scan finds, at each position, the longest anchor starting there (the
    alternation tries longer anchors first); every shorter anchor starting at the same
    place is a prefix of it, so a precomputed prefix closure gives all anchors present.
    Patterns without anchors are always candidates.
    """

    def __init__(self, rules: list[CueRule]) -> None:
        self._always: list[list[re.Pattern[str]]] = [[] for _ in rules]
        by_anchor: dict[str, set[tuple[int, int]]] = {}
        for rule_index, rule in enumerate(rules):
            for pattern_index, (anchors, pattern) in enumerate(rule.patterns):
                if anchors is None:
                    self._always[rule_index].append(pattern)
                    continue
                for anchor in anchors:
                    by_anchor.setdefault(anchor, set()).add((rule_index, pattern_index))
        self._scan = re.compile(f"(?=({_trie_pattern(by_anchor)}))") if by_anchor else None
        self._triggered = {
            anchor: frozenset().union(
                *(by_anchor[prefix] for prefix in by_anchor if anchor.startswith(prefix))
            )
            for anchor in by_anchor
        }
        self._rules = rules

    def candidates(self, folded: str) -> list[list[re.Pattern[str]]]:
        """For each rule, the patterns worth searching in ``folded``."""
        found = [list(always) for always in self._always]
        if self._scan is None:
            return found
        hits: set[tuple[int, int]] = set()
        for anchor in {m.group(1) for m in self._scan.finditer(folded)}:
            hits |= self._triggered[anchor]
        for rule_index, pattern_index in sorted(hits):
            found[rule_index].append(self._rules[rule_index].patterns[pattern_index][1])
        return found


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching exactly ``words``, factored by common prefixes so each position
    is tried once per character rather than once per word; at any position it matches
    the longest word starting there (longer branches come first and are greedy)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _node_pattern(trie)


def _node_pattern(node: dict[str, Any]) -> str:
    ends_here = "" in node
    branches = [re.escape(ch) + _node_pattern(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends_here:
        return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
    return body


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
        self._index = AnchorIndex(rules)
        self._exclusions = {rule.cue: rule.exclude for rule in rules if rule.exclude}

    @classmethod
    def from_file(cls, path: Path, normalizer: Normalizer) -> CueDetector:
        loaded = read_yaml(path)
        cues = loaded.get("cues") if isinstance(loaded, dict) else None
        if not isinstance(cues, dict):
            raise DataFormatError(path, "expected a top-level 'cues:' mapping")
        return cls([_parse_rule(path, str(cue), raw) for cue, raw in cues.items()], normalizer)

    def excluded(self, cue: str, folded: str) -> bool:
        """Whether the cue's exclusions (news, hypotheticals, negations...) match."""
        exclude = self._exclusions.get(cue)
        return exclude is not None and exclude.search(folded) is not None

    def detect(self, text: str) -> tuple[RiskCue, ...]:
        return self.detect_folded(self.normalizer.fold(text))

    def detect_folded(self, folded: str) -> tuple[RiskCue, ...]:
        """Cues of a text already folded by this detector's normaliser."""
        if not folded:
            return ()
        candidates = self._index.candidates(folded)
        return tuple(
            RiskCue(rule.cue, rule.confidence)
            for rule, patterns in zip(self.rules, candidates, strict=True)
            if patterns and rule.matches_any(folded, patterns)
        )
