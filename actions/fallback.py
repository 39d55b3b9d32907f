"""The two-stage fallback: ask to rephrase once, offering the closest topics as buttons;
on a second miss in a row, offer a person and hotline 111."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import FAQ_PREFIX, best_topics

FALLBACK_COUNT_SLOT = "fallback_count"
CLOSEST_TOPICS = 2


class ActionTwoStageFallback(Action):
    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        misses = int(tracker.get_slot(FALLBACK_COUNT_SLOT) or 0) + 1
        if misses >= 2:
            dispatcher.utter_message(response="utter_fallback_handoff")
            return [SlotSet(FALLBACK_COUNT_SLOT, 0)]
        topics = best_topics(tracker, domain, CLOSEST_TOPICS)
        dispatcher.utter_message(
            response="utter_rephrase",
            buttons=[{"title": title, "payload": f"/{FAQ_PREFIX}{key}"} for key, title in topics],
        )
        return [SlotSet(FALLBACK_COUNT_SLOT, misses)]
