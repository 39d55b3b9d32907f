"""Parses one message into a ``ParseResult``, as Rasa's ``/model/parse`` would.

A text of the form ``/intent`` or ``/intent{"entity": "value"}`` is a button payload
and is taken literally (Rasa's convention); anything else goes to the classifier. Below
the confidence threshold the intent is ``nlu_fallback``, as with Rasa's
FallbackClassifier. Entities and risk cues are found on every message, whatever its
intent. ``parse`` never raises on any input.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from bot.domain import Entity, IntentScore, ParseResult, RiskCue
from bot.nlu.classifier import FeatureVectors, IntentClassifier
from bot.nlu.cue_model import CueModel
from bot.nlu.cues import CueDetector
from bot.nlu.entities import EntityExtractor
from bot.nlu.normalize import clean_text

FALLBACK_INTENT = "nlu_fallback"
MAX_FEATURE_CHARS = 2000
ADULT_AGE = 18
_PAYLOAD = re.compile(r"^/(?P<intent>[\w/\-]+)(?P<entities>\{.*\})?$", re.DOTALL)


class Interpreter(Protocol):
    """What the engine needs from NLU."""

    def parse(self, text: str) -> ParseResult: ...


def parse_payload(text: str) -> ParseResult | None:
    """Understand a button payload such as ``/request_counsellor``; None if it isn't one."""
    match = _PAYLOAD.match(text.strip())
    if not match:
        return None
    intent = IntentScore(match["intent"], 1.0)
    entities = _payload_entities(match["entities"])
    return ParseResult(text=text, intent=intent, intent_ranking=(intent,), entities=entities)


def _payload_entities(raw: str | None) -> tuple[Entity, ...]:
    if not raw:
        return ()
    try:
        values: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(values, dict):
        return ()
    return tuple(Entity(entity=str(k), value=str(v), start=0, end=0) for k, v in values.items())


def _minor_from_age(entities: tuple[Entity, ...]) -> RiskCue | None:
    ages = [int(e.value) for e in entities if e.entity == "age" and e.value.isdigit()]
    return RiskCue("minor", 1.0) if any(age < ADULT_AGE for age in ages) else None


class ClassifierInterpreter:
    def __init__(
        self,
        classifier: IntentClassifier,
        threshold: float,
        meta: dict[str, Any],
        entities: EntityExtractor | None = None,
        cues: CueDetector | None = None,
        cue_model: CueModel | None = None,
        button_intents: frozenset[str] = frozenset(),
    ) -> None:
        self.classifier = classifier
        self.threshold = threshold
        self.meta = meta
        self.entities = entities
        self.cues = cues
        self.cue_model = cue_model
        self._known_intents = set(classifier.classes) | {FALLBACK_INTENT} | button_intents

    @property
    def intents(self) -> list[str]:
        return list(self.classifier.classes)

    def parse(self, text: str) -> ParseResult:
        if not isinstance(text, str):
            text = ""
        visible = clean_text(text).strip()
        if not visible:
            return ParseResult(text=text, intent=None)
        payload = parse_payload(visible)
        if payload is not None and payload.intent_name in self._known_intents:
            return payload
        head = text[:MAX_FEATURE_CHARS]
        normal = self.classifier.normalizer.features(head)
        vectors = self.classifier.vectors(normal)
        ranking = tuple(
            IntentScore(name, confidence)
            for name, confidence in self.classifier.rank_vectors(vectors)
        )
        top = ranking[0]
        known = self.classifier.spaces["word"].known_words(normal, letters_only=True)
        understood = top.confidence >= self.threshold and known > 0
        # As Rasa's FallbackClassifier: the fallback carries the threshold as confidence
        # and goes first in the ranking. With no known word, the scores are only the
        # model's priors, so no other intent is ranked.
        intent = top if understood else IntentScore(FALLBACK_INTENT, self.threshold)
        if not understood:
            ranking = (intent, *ranking) if known else (intent,)
        entities = self.entities.extract(head) if self.entities else ()
        return ParseResult(
            text=text,
            intent=intent,
            intent_ranking=ranking,
            entities=entities,
            risk_cues=self._cues(normal, vectors, entities),
        )

    def _cues(
        self, normal: str, vectors: FeatureVectors, entities: tuple[Entity, ...]
    ) -> tuple[RiskCue, ...]:
        """Rules, the learned model and a stated age under 18, each cue once (the rule's
        confidence when both halves find it). A learned cue defers to the rule's
        exclusions, so "nếu bị giữ hộ chiếu thì..." stays a question, not a cue."""
        folded = self.classifier.normalizer.fold_features(normal)
        found = {cue.cue: cue for cue in self.cues.detect_folded(folded)} if self.cues else {}
        learned = self.cue_model.detect(vectors) if self.cue_model else ()
        if self.cues:
            learned = tuple(c for c in learned if not self.cues.excluded(c.cue, folded))
        minor = _minor_from_age(entities)
        for cue in (*learned, *((minor,) if minor else ())):
            found.setdefault(cue.cue, cue)
        return tuple(found.values())
