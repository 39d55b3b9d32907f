"""Decides what the bot says in one turn.

The order is fixed and is the service's safety contract: danger first (113 and 111 at
once, whatever else is going on), then global commands, then the active flow (a slot
the bot asked for, such as the province), then the intent's action or response (FAQ
topics go to ``action_answer_faq``), then the two-stage fallback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from bot.domain import Button, ParseResult, Reply
from bot.engine.actions import ActionResult, tracker_state
from bot.engine.responses import ResponseCatalog, fill
from bot.errors import DonghanhError
from bot.nlu.interpreter import FALLBACK_INTENT

logger = logging.getLogger("donghanh.engine")

EMERGENCY_INTENT = "emergency"
FALLBACK_ACTION = "action_fallback"
FAQ_ACTION = "action_answer_faq"
FAQ_PREFIX = "faq/"
CONTEXT_ONLY_INTENTS = frozenset({"affirm", "deny"})
REQUESTED_SLOT = "requested_slot"
# A slot the bot asked for, and the action that takes the answer.
FLOW_ACTIONS = {"province": "action_find_service"}
# Intents that answer a question the bot asked, rather than change the subject.
ANSWER_INTENTS = frozenset({FALLBACK_INTENT, "affirm", "deny", "find_service", "out_of_scope"})


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
        required = {
            "utter_empty",
            "utter_emergency",
            "utter_not_ready",
            "utter_too_long",
            "utter_action_failed",
        }
        missing = required - set(responses.names)
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
        flow = self._active_flow(parse, context.slots)
        if flow is not None:
            return await self._run_action(flow, parse, self._understood(context.slots), context)
        slots = {**context.slots, REQUESTED_SLOT: None}
        if intent == FALLBACK_INTENT or intent in CONTEXT_ONLY_INTENTS:
            return await self._run_action(FALLBACK_ACTION, parse, slots, context)
        action = FAQ_ACTION if intent.startswith(FAQ_PREFIX) else f"action_{intent}"
        if action in self.actions.names:
            return await self._run_action(action, parse, self._understood(slots), context)
        if f"utter_{intent}" in self.responses:
            return self._utter(f"utter_{intent}", self._understood(slots))
        return self._utter("utter_not_ready", self._understood(slots))

    @staticmethod
    def _active_flow(parse: ParseResult, slots: dict[str, Any]) -> str | None:
        """The action waiting for this message's answer, if the bot asked for a slot and
        the message answers it (has the entity, or does not change the subject)."""
        requested = slots.get(REQUESTED_SLOT)
        action = FLOW_ACTIONS.get(str(requested)) if requested else None
        if action is None:
            return None
        answers = any(e.entity == requested for e in parse.entities)
        return action if answers or parse.intent_name in ANSWER_INTENTS else None

    @staticmethod
    def _understood(slots: dict[str, Any]) -> dict[str, Any]:
        return {**slots, "fallback_count": 0}

    def _utter(self, name: str, slots: dict[str, Any]) -> Decision:
        return Decision([self.responses.get(name)], slots, name)

    async def _run_action(
        self, name: str, parse: ParseResult, slots: dict[str, Any], context: TurnContext
    ) -> Decision:
        tracker = tracker_state(context.sender_id, slots, parse.as_rasa_dict())
        try:
            result = await self.actions.run(name, tracker)
        except Exception:  # a broken action must never leave a person unanswered
            logger.exception("action failed", extra={"event": "action_error", "action": name})
            return Decision([self.responses.get("utter_action_failed")], slots, name)
        replies = [self._reply_from_action(message) for message in result.responses]
        return Decision(
            [r for r in replies if r is not None], {**slots, **result.slot_updates()}, name
        )

    def _reply_from_action(self, message: dict[str, Any]) -> Reply | None:
        """A response by name (its placeholders filled from the message's values, the
        action's buttons before the response's own), or the action's own text."""
        buttons = tuple(
            Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
            for b in message.get("buttons") or []
            if b.get("title") and b.get("payload")
        )
        template = message.get("response") or message.get("template")
        if template and template in self.responses:
            reply = self.responses.get(template)
            return Reply(text=fill(reply.text, message), buttons=buttons + reply.buttons)
        if message.get("text"):
            return Reply(text=str(message["text"]), buttons=buttons)
        return None
