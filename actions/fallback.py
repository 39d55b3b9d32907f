"""The two-stage fallback: ask to rephrase once, then offer a person and hotline 111."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

FALLBACK_COUNT_SLOT = "fallback_count"


class ActionTwoStageFallback(Action):
    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        misses = int(tracker.get_slot(FALLBACK_COUNT_SLOT) or 0) + 1
        dispatcher.utter_message(
            response="utter_rephrase" if misses == 1 else "utter_fallback_handoff"
        )
        return [SlotSet(FALLBACK_COUNT_SLOT, 0 if misses >= 2 else misses)]
