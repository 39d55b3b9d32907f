"""``action_answer_faq``: answers the FAQ topic the message asked about.

The answers themselves are responses (``utter_faq/<key>``, and ``utter_faq_more/<key>``
for "Xem thêm"), kept by admins and rendered by the engine. Below the confidence the
answer needs, or when the two likeliest topics are too close to tell apart (as Rasa's
``ambiguity_threshold``), the action does not guess: it offers the two most likely
topics as buttons, titled from each response's ``metadata.title``.
"""

from __future__ import annotations

import os
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

FAQ_PREFIX = "faq/"
ANSWER_PREFIX = "utter_faq/"
MORE_PREFIX = "utter_faq_more/"
CHOOSE_RESPONSE = "utter_faq_choose"
DETAIL_ENTITY = "detail"
MORE_DETAIL = "more"
CHOICES = 2


def answer_confidence() -> float:
    """The confidence an answer needs (calibrated: 0.5 means right half the time)."""
    return float(os.environ.get("DONGHANH_FAQ_CONFIDENCE", "0.5"))


def ambiguity_margin() -> float:
    """How far ahead of the runner-up the top topic must be to be answered."""
    return float(os.environ.get("DONGHANH_FAQ_AMBIGUITY", "0.1"))


def is_clear(tracker: Tracker) -> bool:
    """Confident enough, and clearly ahead of the next intent."""
    ranking = tracker.latest_message.get("intent_ranking") or []
    confidence = float((tracker.latest_message.get("intent") or {}).get("confidence") or 0.0)
    runner_up = float(ranking[1].get("confidence") or 0.0) if len(ranking) > 1 else 0.0
    return confidence >= answer_confidence() and confidence - runner_up >= ambiguity_margin()


def topic_title(domain: dict[str, Any], key: str) -> str | None:
    variants = domain.get("responses", {}).get(f"{ANSWER_PREFIX}{key}") or []
    metadata = variants[0].get("metadata") if variants else None
    title = (metadata or {}).get("title")
    return str(title) if title else None


def best_topics(tracker: Tracker, domain: dict[str, Any], count: int) -> list[tuple[str, str]]:
    """The ``count`` likeliest FAQ topics that have an answer, as (key, title)."""
    found: list[tuple[str, str]] = []
    for scored in tracker.latest_message.get("intent_ranking") or []:
        name = str(scored.get("name") or "")
        title = topic_title(domain, name.removeprefix(FAQ_PREFIX))
        if name.startswith(FAQ_PREFIX) and title:
            found.append((name.removeprefix(FAQ_PREFIX), title))
        if len(found) == count:
            break
    return found


def _entity_value(tracker: Tracker, name: str) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name:
            return str(entity.get("value"))
    return None


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        intent = tracker.latest_message.get("intent") or {}
        name = str(intent.get("name") or "")
        key = name.removeprefix(FAQ_PREFIX)
        responses = domain.get("responses", {})
        if (
            _entity_value(tracker, DETAIL_ENTITY) == MORE_DETAIL
            and f"{MORE_PREFIX}{key}" in responses
        ):
            dispatcher.utter_message(response=f"{MORE_PREFIX}{key}")
        elif f"{ANSWER_PREFIX}{key}" in responses and is_clear(tracker):
            dispatcher.utter_message(response=f"{ANSWER_PREFIX}{key}")
        else:
            self._offer_choices(dispatcher, tracker, domain)
        return []

    @staticmethod
    def _offer_choices(
        dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> None:
        topics = best_topics(tracker, domain, CHOICES)
        dispatcher.utter_message(
            response=CHOOSE_RESPONSE,
            buttons=[{"title": title, "payload": f"/{FAQ_PREFIX}{key}"} for key, title in topics],
        )
