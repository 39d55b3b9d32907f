"""Decides what the bot says in one turn.

The order is fixed and is the service's safety contract: danger first (113 and 111 at
once, whatever else is going on), then global commands, then the intent's response or
action, then the two-stage fallback. Later flows (screening, consent, province) slot in
between global commands and intents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.domain import Button, ParseResult, Reply
from bot.engine.actions import ActionResult, tracker_state
from bot.engine.responses import ResponseCatalog
from bot.errors import DonghanhError
from bot.nlu.interpreter import FALLBACK_INTENT

EMERGENCY_INTENT = "emergency"
FALLBACK_ACTION = "action_fallback"
CONTEXT_ONLY_INTENTS = frozenset({"affirm", "deny"})


class ActionRunner(Protocol):
    @property
    def names(self) -> set[str]: ...

    async def run(self, name: str, tracker: dict[str, Any]) -> ActionResult: ...


@dataclass(frozen=True)
class TurnContext:
    """What the policy knows of the conversation when a message arrives."""

    sender_id: str
    slots: dict[str, Any]
    text_was_cut: bool = False


@dataclass(frozen=True)
class Decision:
    replies: list[Reply]
    slots: dict[str, Any]
    handled_by: str


class Policy:
    def __init__(self, responses: ResponseCatalog, actions: ActionRunner) -> None:
        self.responses = responses
        self.actions = actions
        missing = {"utter_empty", "utter_emergency", "utter_not_ready", "utter_too_long"} - set(
            responses.names
        )
        if missing:
            raise DonghanhError(f"responses.yml lacks {sorted(missing)}")

    async def decide(self, parse: ParseResult, context: TurnContext) -> Decision:
        prefix = [self.responses.get("utter_too_long")] if context.text_was_cut else []
        decision = await self._decide(parse, context)
        return Decision(prefix + decision.replies, decision.slots, decision.handled_by)

    async def _decide(self, parse: ParseResult, context: TurnContext) -> Decision:
        intent = parse.intent_name
        if intent is None:
            return self._utter("utter_empty", context.slots)
        if intent == EMERGENCY_INTENT:
            return self._utter("utter_emergency", self._understood(context.slots))
        if intent == FALLBACK_INTENT or intent in CONTEXT_ONLY_INTENTS:
            return await self._run_action(FALLBACK_ACTION, parse, context.slots, context)
        if f"utter_{intent}" in self.responses:
            return self._utter(f"utter_{intent}", self._understood(context.slots))
        if f"action_{intent}" in self.actions.names:
            return await self._run_action(
                f"action_{intent}", parse, self._understood(context.slots), context
            )
        return self._utter("utter_not_ready", self._understood(context.slots))

    @staticmethod
    def _understood(slots: dict[str, Any]) -> dict[str, Any]:
        return {**slots, "fallback_count": 0}

    def _utter(self, name: str, slots: dict[str, Any]) -> Decision:
        return Decision([self.responses.get(name)], slots, name)

    async def _run_action(
        self, name: str, parse: ParseResult, slots: dict[str, Any], context: TurnContext
    ) -> Decision:
        tracker = tracker_state(context.sender_id, slots, parse.as_rasa_dict())
        result = await self.actions.run(name, tracker)
        replies = [self._reply_from_action(message) for message in result.responses]
        return Decision(
            [r for r in replies if r is not None], {**slots, **result.slot_updates()}, name
        )

    def _reply_from_action(self, message: dict[str, Any]) -> Reply | None:
        template = message.get("response") or message.get("template")
        if template and template in self.responses:
            return self.responses.get(template)
        if message.get("text"):
            buttons = tuple(
                Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
                for b in message.get("buttons") or []
            )
            return Reply(text=str(message["text"]), buttons=buttons)
        return None
