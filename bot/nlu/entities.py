"""Entities from Rasa-format data: lookup tables, regexes and synonyms.

Matching is case- and diacritic-insensitive ("vung tau", "Vũng Tàu", "VŨNG TÀU"), and
every entity's ``start``/``end`` are offsets into the text exactly as the person wrote
it, so ``text[start:end]`` is always what they typed. Values go through the synonym map
(former provinces to the unit in force, "cam" to "Campuchia"); a lookup match without a
synonym takes the table's spelling, with diacritics.

A regex may name a group ``value``: the entity is then that group ("15" in "15 tuổi").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.domain import Entity
from bot.nlu.normalize import TABLE_LIMIT, strip_diacritics


def fold_char(ch: str) -> str:
    return strip_diacritics(ch).lower()


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table that folds each character once, on first sight."""

    def __missing__(self, codepoint: int) -> str:
        folded = fold_char(chr(codepoint))
        if len(self) < TABLE_LIMIT:  # bounded: odd input must not grow it for ever
            self[codepoint] = folded
        return folded


_FOLD_TABLE = _FoldTable()


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """Lower case without diacritics, and for each folded character its original index."""
    quick = text.translate(_FOLD_TABLE)
    if len(quick) == len(text) and all(len(_FOLD_TABLE[ord(ch)]) == 1 for ch in set(text)):
        return quick, list(range(len(text)))
    folded: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        for out in fold_char(ch):
            folded.append(out)
            origin.append(index)
    return "".join(folded), origin


def fold(text: str) -> str:
    return fold_with_offsets(text)[0]


def _phrase_pattern(phrase: str) -> str | None:
    words = re.findall(r"\w+", fold(phrase))
    if not words:
        return None
    return r"[\W_]*".join(re.escape(word) for word in words)


@dataclass(frozen=True)
class _Rule:
    entity: str
    pattern: re.Pattern[str]
    canonical: Mapping[str, str]  # folded phrase -> spelling from the lookup table


def _lookup_rule(entity: str, elements: Iterable[str]) -> _Rule | None:
    canonical: dict[str, str] = {}
    patterns: list[str] = []
    for element in sorted({e.strip() for e in elements if e.strip()}, key=len, reverse=True):
        pattern = _phrase_pattern(element)
        if pattern is None:
            continue
        canonical.setdefault(" ".join(re.findall(r"\w+", fold(element))), element)
        patterns.append(pattern)
    if not patterns:
        return None
    alternation = "|".join(patterns)
    return _Rule(entity, re.compile(rf"(?<!\w)(?:{alternation})(?!\w)"), canonical)


class EntityExtractor:
    def __init__(
        self,
        lookups: Mapping[str, Sequence[str]],
        regexes: Sequence[tuple[str, str]],
        synonyms: Mapping[str, str],
    ) -> None:
        self.lookups = {name: list(elements) for name, elements in lookups.items()}
        self.regexes = list(regexes)
        self.synonyms = dict(synonyms)
        self._synonyms = {" ".join(re.findall(r"\w+", fold(k))): v for k, v in synonyms.items()}
        rules = [_lookup_rule(name, elements) for name, elements in self.lookups.items()]
        self._rules = [rule for rule in rules if rule is not None]
        self._rules += [_Rule(name, re.compile(pattern), {}) for name, pattern in self.regexes]

    def extract(self, text: str) -> tuple[Entity, ...]:
        folded, origin = fold_with_offsets(text)
        found: list[Entity] = []
        for rule in self._rules:
            for match in rule.pattern.finditer(folded):
                entity = self._entity(rule, match, text, origin)
                if entity is not None:
                    found.append(entity)
        return _without_overlaps(found)

    def _entity(
        self, rule: _Rule, match: re.Match[str], text: str, origin: list[int]
    ) -> Entity | None:
        group = "value" if "value" in rule.pattern.groupindex else 0
        start, end = match.span(group)
        if start < 0 or start == end:
            return None
        first, last = origin[start], origin[end - 1] + 1
        key = " ".join(re.findall(r"\w+", match.group(group)))
        value = self._synonyms.get(key) or rule.canonical.get(key) or text[first:last]
        return Entity(entity=rule.entity, value=value, start=first, end=last, confidence=1.0)


def _without_overlaps(entities: list[Entity]) -> tuple[Entity, ...]:
    """Keep the longest of overlapping matches (then the earliest)."""
    kept: list[Entity] = []
    for entity in sorted(entities, key=lambda e: (-(e.end - e.start), e.start)):
        if all(entity.end <= k.start or entity.start >= k.end for k in kept):
            kept.append(entity)
    return tuple(sorted(kept, key=lambda e: e.start))
