"""``action_find_service``: where to get help near the person.

It needs the province: from the message's ``province`` entity (old provinces and
districts are already mapped to the unit in force by the NLU), or from the ``province``
slot. When neither is known it asks once (``requested_slot: province``); the engine
sends the next message back here. If the answer still names no province, it gives the
national services rather than asking again. Every list starts with 111.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

import services_directory
from services_directory import Directory, Service, Unit

PROVINCE_SLOT = "province"
REQUESTED_SLOT = "requested_slot"
URGENT_KINDS = ("hotline", "police", "health", "consular")  # national lines to call


def service_line(service: Service) -> str:
    contact = service.phone or service.website
    head = f"• {service.name}" + (f": {contact}" if contact else "")
    details = [service.hours, "miễn phí" if service.free else None]
    extra = ", ".join(d for d in details if d)
    return f"{head}{f' ({extra})' if extra else ''}. {service.helps_with}"


def province_entity(tracker: Tracker) -> tuple[str, str] | None:
    """(unit in force, what the person typed) for the first province entity."""
    text = str(tracker.latest_message.get("text") or "")
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == PROVINCE_SLOT and entity.get("value"):
            start, end = entity.get("start"), entity.get("end")
            typed = text[start:end] if isinstance(start, int) and isinstance(end, int) else ""
            return str(entity["value"]), typed or str(entity["value"])
    return None


class ActionFindService(Action):
    def __init__(self, directory: Directory | None = None) -> None:
        self._directory = directory

    @property
    def directory(self) -> Directory:
        return self._directory or services_directory.default_directory()

    def name(self) -> str:
        return "action_find_service"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        found = province_entity(tracker)
        unit_name, typed = found if found else (tracker.get_slot(PROVINCE_SLOT), None)
        unit = self.directory.units.get(str(unit_name)) if unit_name else None
        already_asked = tracker.get_slot(REQUESTED_SLOT) == PROVINCE_SLOT
        if unit is None and not already_asked:
            dispatcher.utter_message(response="utter_ask_province")
            return [SlotSet(REQUESTED_SLOT, PROVINCE_SLOT)]
        done = [SlotSet(REQUESTED_SLOT, None)]
        if unit is None:
            self._send_national(dispatcher, unknown_place=True)
            return done
        self._send_national(dispatcher, unknown_place=False)
        self._send_local(dispatcher, unit, typed)
        return [*done, SlotSet(PROVINCE_SLOT, unit.name)]

    def _send_national(self, dispatcher: CollectingDispatcher, *, unknown_place: bool) -> None:
        lines = [service_line(s) for s in self.directory.national(URGENT_KINDS)]
        dispatcher.utter_message(
            response="utter_services_unknown_place" if unknown_place else "utter_services_national",
            services="\n".join(lines),
        )

    def _send_local(self, dispatcher: CollectingDispatcher, unit: Unit, typed: str | None) -> None:
        place = self.directory.resolve(typed) if typed else None
        if place is not None and place.former and place.unit.name == unit.name:
            dispatcher.utter_message(
                response="utter_province_merged", former=place.former, place=unit.label
            )
        elif typed and services_directory.fold(typed) != services_directory.fold(unit.name):
            dispatcher.utter_message(
                response="utter_place_in_unit", said=typed.strip().title(), place=unit.label
            )
        lines = [service_line(s) for s in self.directory.local(unit.name)]
        dispatcher.utter_message(
            response="utter_services_local", place=unit.label, services="\n".join(lines)
        )
