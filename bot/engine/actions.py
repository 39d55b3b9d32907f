"""Runs custom actions: in process through rasa-sdk's own ``ActionExecutor``, or on a
standard Rasa action server (``python -m rasa_sdk --actions actions``) over HTTP.

Both get the request a Rasa server sends to an action server (``next_action``,
``sender_id``, ``tracker``, ``domain``) and give back ``events`` and ``responses``, so
the actions in ``actions/`` run unchanged either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from rasa_sdk.executor import ActionExecutor

from bot.errors import Unavailable


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


def action_request(name: str, tracker: dict[str, Any], domain: dict[str, Any]) -> dict[str, Any]:
    return {
        "next_action": name,
        "sender_id": tracker["sender_id"],
        "tracker": tracker,
        "domain": domain,
        "version": "3.6.21",
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

    def use_domain(self, domain: dict[str, Any]) -> None:
        """The responses changed (content published): later runs see the new ones."""
        self._domain = domain

    async def run(self, name: str, tracker: dict[str, Any]) -> ActionResult:
        result = await self._executor.run(action_request(name, tracker, self._domain))
        if result is None:
            return ActionResult()
        return ActionResult(responses=list(result.responses), events=list(result.events))


class RemoteActionRunner:
    """Actions on a Rasa action server. The action names are those of the same
    ``actions`` package, which the server is expected to run."""

    def __init__(
        self,
        url: str,
        domain: dict[str, Any],
        names: set[str],
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._domain = domain
        self._names = set(names)
        self._client = httpx.AsyncClient(timeout=timeout_seconds, transport=transport)

    @property
    def names(self) -> set[str]:
        return set(self._names)

    def use_domain(self, domain: dict[str, Any]) -> None:
        self._domain = domain

    async def run(self, name: str, tracker: dict[str, Any]) -> ActionResult:
        try:
            response = await self._client.post(
                self._url, json=action_request(name, tracker, self._domain)
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"action server failed on {name}: {type(exc).__name__}") from exc
        return ActionResult(
            responses=list(body.get("responses") or []), events=list(body.get("events") or [])
        )

    async def close(self) -> None:
        await self._client.aclose()
