"""``action_report_case``: someone reporting another person (a missing relative, a
suspicious recruiter).

It says what to do now (113 in danger, 111, UBND xã or the police), what information
helps, and offers a counsellor. It asks for nobody's identifying details: those are
given to a counsellor only if the person chooses a handoff. When the message names a
province, the local bodies of that unit are added.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

import services_directory
from actions.services import province_entity, service_line

REPORT_KINDS = ("social_support", "police")


class ActionReportCase(Action):
    def name(self) -> str:
        return "action_report_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_report_case")
        found = province_entity(tracker)
        directory = services_directory.default_directory()
        unit = directory.units.get(found[0]) if found else None
        if unit is not None:
            local = [s for s in directory.local(unit.name) if s.kind in REPORT_KINDS]
            dispatcher.utter_message(
                response="utter_report_case_local",
                place=unit.label,
                services="\n".join(service_line(s) for s in local),
            )
        dispatcher.utter_message(response="utter_report_case_details")
        return []
