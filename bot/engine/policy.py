"""Decides what the bot says in one turn.

The order is fixed and is the service's safety contract:

1. danger now (the emergency intent, or a danger cue said in the present): 113 and 111
   at once, whatever flow was running (the flow ends);
2. global commands: "dừng" ends any flow (and, while waiting for a counsellor with no
   flow running, withdraws the request), "xóa dữ liệu" asks to confirm and erases;
3. the active flow: the handoff questions (consent, call-back), the screening
   questionnaire, or a slot the bot asked for (the province);
4. asking for a person (consent first, see ``handoff.py``), then the intent's action or
   response (FAQ topics go to ``action_answer_faq``; ``start_screening`` starts the
   questionnaire), or the two-stage fallback;

and, outside flows and danger, risk cues not yet acknowledged get one short message
first (the right that applies, an offer to look at the situation or to talk to a
counsellor).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Protocol

from bot.domain import Button, ConversationState, HandoffChange, ParseResult, Priority, Reply
from bot.engine.actions import ActionResult, tracker_state
from bot.engine.handoff import (
    DANGER_SEEN_SLOT,
    PHONE_STEP,
    STEP_SLOT,
    WHEN_STEP,
    HandoffFlow,
    HandoffStep,
)
from bot.engine.responses import ResponseCatalog, fill
from bot.engine.safety import ACKNOWLEDGED_SLOT, SafetyRules
from bot.engine.screening import CUES_SEEN_SLOT, ScreeningFlow
from bot.errors import DonghanhError
from bot.nlu.interpreter import FALLBACK_INTENT

logger = logging.getLogger("donghanh.engine")

EMERGENCY_INTENT = "emergency"
FALLBACK_ACTION = "action_fallback"
FAQ_ACTION = "action_answer_faq"
FAQ_PREFIX = "faq/"
CONTEXT_ONLY_INTENTS = frozenset({"affirm", "deny"})
REQUESTED_SLOT = "requested_slot"
STOP_INTENT = "stop"
DELETE_INTENT = "delete_my_data"
DELETE_PENDING_SLOT = "delete_pending"
START_SCREENING_INTENT = "start_screening"
SCREENING_START = "screening_start"
HELD_DANGER = "held_danger"  # a counsellor holds it, and the person seems in danger now
HELD_SILENT = "held_silent"
# Channels send these for what is not text: a sticker, a photo, a voice note ...
MEDIA_INTENT = "user_sent_media"
# ... and for a chat app's own commands (Telegram's /help)
HELP_INTENT = "help"
CHANNEL_INTENTS = frozenset({MEDIA_INTENT, HELP_INTENT})
ERASURE_STEPS = frozenset({"utter_delete_confirm", "erase", "utter_delete_cancelled"})
# A slot the bot asked for, and the action that takes the answer.
FLOW_ACTIONS = {"province": "action_find_service"}
# Intents that answer a question the bot asked, rather than change the subject.
ANSWER_INTENTS = frozenset({FALLBACK_INTENT, "affirm", "deny", "find_service", "out_of_scope"})


class ActionRunner(Protocol):
    @property
    def names(self) -> set[str]: ...

    async def run(self, name: str, tracker: dict[str, Any]) -> ActionResult: ...

    def use_domain(self, domain: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TurnContext:
    """What the policy knows of the conversation when a message arrives."""

    sender_id: str
    slots: dict[str, Any]
    text_was_cut: bool = False
    state: ConversationState = ConversationState.BOT


@dataclass(frozen=True)
class Decision:
    replies: list[Reply]
    slots: dict[str, Any]
    handled_by: str
    erase: bool = False  # erase everything stored about the person (after this reply)
    handoff: HandoffChange | None = None
    redact_inbound: str | None = None  # store this instead of the message's text


class Policy:
    def __init__(
        self,
        responses: ResponseCatalog,
        actions: ActionRunner,
        *,
        screening: ScreeningFlow | None = None,
        safety: SafetyRules | None = None,
        handoff: HandoffFlow | None = None,
    ) -> None:
        self.responses = responses
        self.actions = actions
        self.screening = screening
        self.safety = safety
        self.handoff = handoff
        required = {
            "utter_empty",
            "utter_emergency",
            "utter_not_ready",
            "utter_too_long",
            "utter_action_failed",
            "utter_delete_confirm",
            "utter_deleted",
            "utter_delete_cancelled",
            "utter_stop",
            "utter_text_only",
        }
        missing = required - set(responses.names)
        if missing:
            raise DonghanhError(f"responses.yml lacks {sorted(missing)}")

    def use_responses(self, responses: ResponseCatalog) -> None:
        """Published content changed: the next turn answers from ``responses``. One
        assignment each, so a turn sees either the old or the new catalogue."""
        self.actions.use_domain({"responses": responses.as_rasa_domain()})
        if self.handoff is not None:
            self.handoff.responses = responses
        self.responses = responses

    async def decide(self, parse: ParseResult, context: TurnContext) -> Decision:
        prefix = [self.responses.get("utter_too_long")] if context.text_was_cut else []
        slots = {**context.slots}
        if parse.cue_names:
            seen = sorted({*(slots.get(CUES_SEEN_SLOT) or ()), *parse.cue_names})
            slots[CUES_SEEN_SLOT] = seen
        decision = await self._decide(
            parse, TurnContext(context.sender_id, slots, state=context.state)
        )
        decision = self._with_cue_acknowledgement(parse, slots, decision)
        return replace(decision, replies=prefix + decision.replies)

    async def decide_while_held(self, parse: ParseResult, context: TurnContext) -> Decision:
        """A counsellor holds the conversation: the bot stays silent, except that danger
        now still gets 113 and 111 at once, and "xóa dữ liệu" still works."""
        slots = {**context.slots}
        if parse.intent_name is not None and self._is_danger_now(parse):
            emergency = self.responses.get("utter_emergency")  # no "find a person" button
            return Decision([Reply(emergency.text)], {**slots, DANGER_SEEN_SLOT: True}, HELD_DANGER)
        if parse.intent_name == DELETE_INTENT or slots.get(DELETE_PENDING_SLOT):
            command = self._global_command(parse, slots, context.state)
            if command is not None and command.handled_by in ERASURE_STEPS:
                return command
            slots.pop(DELETE_PENDING_SLOT, None)
        if self.handoff is not None and slots.get(STEP_SLOT) in (PHONE_STEP, WHEN_STEP):
            return await self._callback_detail_while_held(parse, slots, context)
        return Decision([], slots, HELD_SILENT)

    async def _callback_detail_while_held(
        self, parse: ParseResult, slots: dict[str, Any], context: TurnContext
    ) -> Decision:
        """The bot asked for a call-back number, then a counsellor took over: the
        answer is still kept apart (encrypted, out of the history), silently."""
        assert self.handoff is not None
        step = await self.handoff.handle(parse, slots, context.state)
        cleared = {**slots, "handoff_step": None}
        if step is None or step.change is None:
            return Decision([], cleared, HELD_SILENT)
        return Decision(
            [], cleared, HELD_SILENT, handoff=step.change, redact_inbound=step.redact_inbound
        )

    async def _decide(self, parse: ParseResult, context: TurnContext) -> Decision:
        intent = parse.intent_name
        slots = context.slots
        if intent is None:
            return self._utter("utter_empty", slots)
        if self._is_danger_now(parse):
            return self._emergency(slots, context.state)
        if intent == MEDIA_INTENT:  # a flow in progress waits for a typed answer
            return self._utter("utter_text_only", slots)
        command = (
            None
            if _gives_requested_slot(parse, slots)
            else self._global_command(parse, slots, context.state)
        )
        if command is not None:
            return command
        flow = await self._active_flow_decision(parse, context)
        if flow is not None:
            return flow
        slots = self._without_flows(slots)
        if self.handoff is not None and self.handoff.wants_handoff(parse):
            handoff = await self.handoff.start(parse, self._understood(slots), context.state)
            return self._handoff_decision(handoff)
        if intent == START_SCREENING_INTENT and self.screening is not None:
            step = self.screening.start(self._understood(slots))
            return Decision(step.replies, step.slots, SCREENING_START)
        if intent == FALLBACK_INTENT or intent in CONTEXT_ONLY_INTENTS:
            return await self._run_action(FALLBACK_ACTION, parse, slots, context)
        action = FAQ_ACTION if intent.startswith(FAQ_PREFIX) else f"action_{intent}"
        if action in self.actions.names:
            return await self._run_action(action, parse, self._understood(slots), context)
        if f"utter_{intent}" in self.responses:
            return self._utter(f"utter_{intent}", self._understood(slots))
        return self._utter("utter_not_ready", self._understood(slots))

    # -- safety and global commands --

    def _is_danger_now(self, parse: ParseResult) -> bool:
        if self.safety is not None:
            return self.safety.is_danger_now(parse)
        return parse.intent_name == EMERGENCY_INTENT

    def _emergency(self, slots: dict[str, Any], state: ConversationState) -> Decision:
        kept = {**self._understood(self._without_flows(slots)), DANGER_SEEN_SLOT: True}
        decision = self._utter("utter_emergency", kept)
        if state is ConversationState.WAITING:  # the queue puts this person first now
            return replace(decision, handoff=HandoffChange("escalate", priority=Priority.DANGER))
        return decision

    @staticmethod
    def _handoff_decision(step: HandoffStep) -> Decision:
        return Decision(
            step.replies,
            step.slots,
            "handoff",
            handoff=step.change,
            redact_inbound=step.redact_inbound,
        )

    def _global_command(
        self, parse: ParseResult, slots: dict[str, Any], state: ConversationState
    ) -> Decision | None:
        """ "dừng" and "xóa dữ liệu" work whatever flow is running."""
        confirm = next((e.value for e in parse.entities if e.entity == "confirm"), None)
        pending = bool(slots.get(DELETE_PENDING_SLOT))
        if parse.intent_name == DELETE_INTENT and confirm is None:
            return self._utter("utter_delete_confirm", {**slots, DELETE_PENDING_SLOT: True})
        said_yes = parse.intent_name == "affirm" or confirm == "yes"
        if (parse.intent_name == DELETE_INTENT or pending) and said_yes and (pending or confirm):
            return Decision([self.responses.get("utter_deleted")], {}, "erase", erase=True)
        if pending or parse.intent_name == DELETE_INTENT:
            if confirm == "no" or parse.intent_name in ("deny", STOP_INTENT):
                cleared = {k: v for k, v in slots.items() if k != DELETE_PENDING_SLOT}
                return self._utter("utter_delete_cancelled", cleared)
            slots.pop(DELETE_PENDING_SLOT, None)  # something else: the question lapses
        answering = self.screening is not None and self.screening.takes_as_answer(parse, slots)
        handoff = self.handoff
        if handoff is not None and parse.intent_name == "cancel_handoff":
            return self._handoff_decision(handoff.cancel(self._without_flows(slots), state))
        if parse.intent_name == STOP_INTENT and not answering:
            if handoff is not None and handoff.is_active(slots):
                return self._handoff_decision(handoff.stop_step(slots, state))
            if self.screening is not None and self.screening.is_active(slots):
                step = self.screening.stop(slots)
                return Decision(
                    step.replies,
                    self._without_flows(step.slots, keep_screening=not step.done),
                    "stop",
                )
            if handoff is not None and handoff.cancels(parse, state):
                return self._handoff_decision(handoff.cancel(self._without_flows(slots), state))
            return self._utter("utter_stop", self._without_flows(slots))
        return None

    async def _active_flow_decision(
        self, parse: ParseResult, context: TurnContext
    ) -> Decision | None:
        slots = context.slots
        if self.handoff is not None and self.handoff.is_active(slots):
            handoff_step = await self.handoff.handle(parse, slots, context.state)
            if handoff_step is not None:
                return self._handoff_decision(handoff_step)
            slots = {**slots, "handoff_step": None}  # the question lapses
        if self.screening is not None and self.screening.is_active(slots):
            step = self.screening.handle(parse, slots)
            if step is not None:
                return Decision(step.replies, step.slots, "screening")
            slots = self.screening.cancel(slots)  # the person moved on: nothing is kept
        action = self._active_flow(parse, slots)
        if action is not None:
            return await self._run_action(action, parse, self._understood(slots), context)
        return None

    def _without_flows(
        self, slots: dict[str, Any], *, keep_screening: bool = False
    ) -> dict[str, Any]:
        cleared = {**slots, REQUESTED_SLOT: None, "handoff_step": None}
        if self.screening is not None and not keep_screening:
            cleared = self.screening.cancel(cleared)
        return cleared

    def _with_cue_acknowledgement(
        self, parse: ParseResult, slots: dict[str, Any], decision: Decision
    ) -> Decision:
        """Outside danger, flows and erasure: acknowledge new risk cues first, once."""
        if (
            self.safety is None
            or decision.erase
            or decision.handled_by in ("utter_emergency", "screening", "stop", "handoff")
        ):
            return decision
        if not self.safety.is_about_someone(parse.text):
            return decision
        already = decision.slots.get(ACKNOWLEDGED_SLOT) or ()
        reply = self.safety.cue_acknowledgement(
            parse.cue_names, already, with_offer=decision.handled_by != SCREENING_START
        )
        if reply is None:
            return decision
        acknowledged = sorted({*already, *parse.cue_names})
        replies = [reply, *decision.replies]
        if decision.handled_by == FALLBACK_ACTION:
            replies = [reply]  # the acknowledgement is the answer; no "say it again"
        return replace(
            decision,
            replies=replies,
            slots={**decision.slots, ACKNOWLEDGED_SLOT: acknowledged},
        )

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


def _gives_requested_slot(parse: ParseResult, slots: dict[str, Any]) -> bool:
    """The message holds what the bot asked for ("Gia Lai" after "which province?"):
    it answers the question, whatever else the classifier thought it was."""
    requested = slots.get(REQUESTED_SLOT)
    return bool(requested) and any(e.entity == requested for e in parse.entities)
