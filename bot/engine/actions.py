"""Runs custom actions through rasa-sdk's own ``ActionExecutor``, in process.

The engine builds the same request a Rasa server sends to an action server (``next_action``,
``tracker``, ``domain``) and reads back ``events`` and ``responses``, so the actions in
``actions/`` run unchanged under a standalone ``python -m rasa_sdk`` server too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rasa_sdk.executor import ActionExecutor


@dataclass(frozen=True)
class ActionResult:
    responses: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def slot_updates(self) -> dict[str, Any]:
        return {e["name"]: e.get("value") for e in self.events if e.get("event") == "slot"}


def tracker_state(
    sender_id: str, slots: dict[str, Any], latest_message: dict[str, Any]
) -> dict[str, Any]:
    """The tracker as Rasa serialises it for an action server (only what we keep)."""
    return {
        "sender_id": sender_id,
        "slots": slots,
        "latest_message": latest_message,
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": None,
    }


class InProcessActionRunner:
    def __init__(self, domain: dict[str, Any], packages: tuple[str, ...] = ("actions",)) -> None:
        self._executor = ActionExecutor()
        for package in packages:
            self._executor.register_package(package)
        self._domain = domain

    @property
    def names(self) -> set[str]:
        return set(self._executor.actions)

    async def run(self, name: str, tracker: dict[str, Any]) -> ActionResult:
        result = await self._executor.run(
            {
                "next_action": name,
                "sender_id": tracker["sender_id"],
                "tracker": tracker,
                "domain": self._domain,
            }
        )
        if result is None:
            return ActionResult()
        return ActionResult(responses=list(result.responses), events=list(result.events))
