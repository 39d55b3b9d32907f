"""Parses one message into a ``ParseResult``, as Rasa's ``/model/parse`` would.

A text of the form ``/intent`` or ``/intent{"entity": "value"}`` is a button payload
and is taken literally (Rasa's convention); anything else goes to the classifier. Below
the confidence threshold the intent is ``nlu_fallback``, as with Rasa's
FallbackClassifier. ``parse`` never raises on any input.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from bot.domain import Entity, IntentScore, ParseResult
from bot.nlu.classifier import IntentClassifier
from bot.nlu.normalize import clean_text

FALLBACK_INTENT = "nlu_fallback"
MAX_FEATURE_CHARS = 2000
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
    return ParseResult(
        text=text,
        intent=intent,
        intent_ranking=(intent,),
        entities=_payload_entities(match["entities"]),
    )


def _payload_entities(raw: str | None) -> tuple[Entity, ...]:
    if not raw:
        return ()
    try:
        values: Any = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(values, dict):
        return ()
    return tuple(Entity(entity=str(k), value=str(v), start=0, end=0) for k, v in values.items())


class ClassifierInterpreter:
    def __init__(
        self, classifier: IntentClassifier, threshold: float, meta: dict[str, Any]
    ) -> None:
        self.classifier = classifier
        self.threshold = threshold
        self.meta = meta

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
        if payload is not None and payload.intent_name in set(self.classifier.classes) | {
            FALLBACK_INTENT
        }:
            return payload
        ranking = tuple(
            IntentScore(name, confidence)
            for name, confidence in self.classifier.rank(visible[:MAX_FEATURE_CHARS])
        )
        top = ranking[0]
        intent = (
            top
            if top.confidence >= self.threshold
            else IntentScore(FALLBACK_INTENT, self.threshold)
        )
        return ParseResult(text=text, intent=intent, intent_ranking=ranking)
