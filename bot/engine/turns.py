"""Runs turns: store the message, understand it, decide, record replies in the outbox.

A message is stored before it is processed, and its replies are recorded in the same
transaction that marks it processed, so a crash at any point loses nothing and answers
nothing twice: unprocessed messages are picked up again by ``recover``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.bodies import LONE_SURROGATE
from bot.domain import AuthorKind, ConversationState, InboundMessage, ParseResult, Priority
from bot.engine.choices import resolve_choice
from bot.engine.events import EventHub, message_event
from bot.engine.flood import SenderLimits
from bot.engine.policy import (
    FALLBACK_ACTION,
    FAQ_ACTION,
    HELD_DANGER,
    SCREENING_START,
    Decision,
    Policy,
    TurnContext,
)
from bot.engine.screening import RESULT_SLOT
from bot.errors import TooManyRequests
from bot.nlu.interpreter import FALLBACK_INTENT, Interpreter, parse_payload
from bot.nlu.masking import mask_personal
from bot.storage.repository import (
    MissedNote,
    RecordedReply,
    StaleTurn,
    Store,
    StoredInbound,
    TurnInput,
    TurnOutcome,
)

logger = logging.getLogger("donghanh.engine")
PROVINCE_SLOT = "province"  # set by action_find_service (actions/services.py)
CORRECTION_INTENT = "wrong_answer"  # "không phải cái tôi hỏi"
CORRECTION = "correction"
CORRECTION_REPLY = f"utter_{CORRECTION_INTENT}"
# a turn that loses a race to another worker is run again on fresh input, this often at
# most; past that the message stays stored and unanswered, and recovery answers it
MAX_TURN_ATTEMPTS = 8
FLOODING = (  # never the person's fault; a way to a person stays open
    "Mình chưa kịp đọc hết các tin vừa gửi. Bạn đợi một chút rồi gửi tiếp nhé. "
    "Nguy hiểm ngay: gọi 113. Cần người giúp: gọi 111 (miễn phí, 24/7)."
)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class TurnEngine:
    def __init__(
        self,
        store: Store,
        interpreter: Callable[[], Interpreter],
        policy: Policy,
        *,
        max_message_chars: int,
        on_outbox: Callable[[], None] = lambda: None,
        push_channels: Collection[str] | None = None,
        fault_delay_seconds: float = 0.0,
        events: EventHub | None = None,
        missed_review_below: float = 0.0,
        sender_limits: SenderLimits | None = None,
    ) -> None:
        self.store = store
        self._interpreter = interpreter
        self.policy = policy
        self.max_message_chars = max_message_chars
        self._on_outbox = on_outbox
        # the channels whose replies the outbox sends (None: all); a REST turn's replies
        # go back in its HTTP response, so it need not wake the dispatcher
        self._push_channels = None if push_channels is None else frozenset(push_channels)
        self._fault_delay = fault_delay_seconds
        self._locks = KeyedLocks()
        self.events = events or EventHub()
        self.missed_review_below = missed_review_below
        self.sender_limits = sender_limits

    def notify_outbox(self) -> None:
        """Tell the outbox dispatcher there may be replies to send now."""
        self._on_outbox()

    async def handle(self, message: InboundMessage) -> StoredInbound | None:
        """Store then answer one inbound message; None if it was a redelivery."""
        stored = await self.accept(message)
        if stored is not None:
            await self.answer(stored)
        return stored

    async def accept(self, message: InboundMessage) -> StoredInbound | None:
        """Store a message before anything else happens to it; None for a redelivery.
        Raises ``TooManyRequests`` (nothing stored) when the sender floods."""
        self._check_flood(message)
        message = with_encodable_text(message)
        stored = await self.store.do_store_inbound(message)
        if stored is None:
            logger.info(
                "duplicate", extra={"channel": message.channel, "event": "inbound_duplicate"}
            )
        return stored

    def _check_flood(self, message: InboundMessage) -> None:
        if self.sender_limits is None:
            return
        pseudonym = self.store.pseudonym_for(message.channel, message.sender_id)
        wait = self.sender_limits.take(pseudonym)
        if wait > 0:
            logger.warning(
                "sender flooding",
                extra={
                    "channel": message.channel,
                    "event": "inbound_limited",
                    "contact": pseudonym[:12],
                },
            )
            raise TooManyRequests(FLOODING, max(1, round(wait)))

    async def answer(self, stored: StoredInbound) -> None:
        """Answer a stored message, after any older unanswered ones of the same person."""
        async with self._locks.hold(stored.pseudonym):
            waiting = await self.store.get_unprocessed_inbound(
                contact_id=stored.contact_id, up_to_id=stored.message_id
            )
            for message_id, _ in waiting:
                await self._process_locked(message_id, stored.pseudonym)

    async def process(self, message_id: int, pseudonym: str) -> int:
        """Run the turn for a stored message; returns how many replies were recorded."""
        async with self._locks.hold(pseudonym):
            return await self._process_locked(message_id, pseudonym)

    async def _process_locked(self, message_id: int, pseudonym: str, depth: int = 0) -> int:
        started = time.perf_counter()
        recorded = await self._run_and_record(message_id, pseudonym, depth)
        if recorded is None:
            return 0
        turn, outcome, outbox_ids = recorded
        if outbox_ids or turn.state is not ConversationState.BOT or outcome.handoff:
            self._tell_console(turn, outcome, outbox_ids)
        logger.info(
            "turn",
            extra={
                "channel": turn.channel,
                "event": "turn",
                "contact": pseudonym[:12],
                "intent": outcome.intent,
                "replies": len(outbox_ids),
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        if outbox_ids:
            if self._push_channels is None or turn.channel in self._push_channels:
                self._on_outbox()
            await self._queue_if_missed(turn, outcome)
        return len(outbox_ids)

    async def _run_and_record(
        self, message_id: int, pseudonym: str, depth: int
    ) -> tuple[TurnInput, TurnOutcome, list[RecordedReply]] | None:
        """Run the turn and record it, again on fresh input after losing a race to
        another worker; None when it was already answered (or, after too many lost
        races, left to recovery)."""
        for _ in range(MAX_TURN_ATTEMPTS):
            turn = await self.store.get_turn_input(message_id)
            if turn.already_processed:
                return None
            if self._fault_delay:
                await asyncio.sleep(self._fault_delay)
            outcome = await self._run_turn(turn)
            try:
                recorded = await self.store.do_record_turn(turn, outcome)
            except StaleTurn as stale:
                await self._after_lost_race(stale, pseudonym, depth)
                continue
            return None if recorded is None else (turn, outcome, recorded)
        logger.warning("turn left", extra={"event": "turn_contended", "contact": pseudonym[:12]})
        return None

    async def _after_lost_race(self, stale: StaleTurn, pseudonym: str, depth: int) -> None:
        """Another worker changed the conversation (run again on what it wrote), or an
        older message of this person is still unanswered (answer it first)."""
        logger.info("turn raced", extra={"event": "turn_raced", "contact": pseudonym[:12]})
        if stale.older_message_id is not None and depth < MAX_TURN_ATTEMPTS:
            await self._process_locked(stale.older_message_id, pseudonym, depth + 1)

    def _tell_console(
        self, turn: TurnInput, outcome: TurnOutcome, replies: list[RecordedReply]
    ) -> None:
        """Live events: the queue changed, or a message in a held conversation (to its
        counsellor only), or danger there, or the person erased their data."""
        events = self.events
        if outcome.handoff is not None and outcome.handoff.kind in ("queue", "cancel", "escalate"):
            urgent = outcome.handoff.priority is Priority.DANGER
            events.publish({"type": "queue", "urgent": urgent})
        if outcome.erase and turn.state is not ConversationState.BOT:
            events.publish({"type": "queue", "urgent": False})
            events.publish(
                {
                    "type": "conversation",
                    "conversation_id": turn.conversation_id,
                    "state": "erased",
                    "assigned_to": None,
                }
            )
            return
        holder = turn.assigned_staff_id
        if turn.state is not ConversationState.COUNSELLOR or holder is None:
            return
        at = turn.received_at.isoformat() if turn.received_at else ""
        events.publish(
            message_event(
                turn.conversation_id,
                turn.message_id,
                AuthorKind.USER.value,
                outcome.redact_inbound or turn.text,
                at,
                None,
            ),
            to=holder,
        )
        for reply in replies:
            events.publish(
                message_event(
                    turn.conversation_id,
                    reply.message_id,
                    AuthorKind.BOT.value,
                    reply.text,
                    reply.created_at.isoformat(),
                    None,
                ),
                to=holder,
            )
        if outcome.intent_handled_by == HELD_DANGER:
            events.publish(
                {"type": "alert", "conversation_id": turn.conversation_id, "kind": "danger"},
                to=holder,
            )

    async def _decide(self, turn: TurnInput, parse: ParseResult, text_was_cut: bool) -> Decision:
        slots = dict(turn.context.get("slots", {}))
        context = TurnContext(turn.pseudonym, slots, text_was_cut, turn.state)
        if turn.state is ConversationState.COUNSELLOR:
            return await self.policy.decide_while_held(parse, context)
        return await self.policy.decide(parse, context)

    async def _run_turn(self, turn: TurnInput) -> TurnOutcome:
        text = resolve_choice(turn.text, turn.last_buttons)
        text_was_cut = len(text) > self.max_message_chars
        parse = self._parse(text[: self.max_message_chars])
        slots = dict(turn.context.get("slots", {}))
        decision = await self._decide(turn, parse, text_was_cut)
        intent = parse.intent_name
        events = [
            (
                "user_intent",
                {
                    "intent": intent,
                    "confidence": round(parse.confidence, 3),
                    "entities": sorted({e.entity for e in parse.entities}),
                    "cues": sorted(parse.cue_names),
                },
            )
        ]
        result = decision.slots.get(RESULT_SLOT)
        risk_level = None
        if decision.handled_by == SCREENING_START:
            events.append(("screening_started", {}))
        if isinstance(result, dict) and result != slots.get(RESULT_SLOT):
            risk_level = str(result.get("level"))
            events.append(("screening_result", screening_result_event(result)))
        province = decision.slots.get(PROVINCE_SLOT)
        if province and province != slots.get(PROVINCE_SLOT):
            events.append(("province", {"unit": str(province)}))
        events.extend(_handoff_events(decision))
        if decision.erase:
            events = [("erased", {})]
        return TurnOutcome(
            replies=decision.replies,
            context={} if decision.erase else {**turn.context, "slots": decision.slots},
            intent=intent,
            events=events,
            erase=decision.erase,
            risk_level=None if decision.erase else risk_level,
            handoff=None if decision.erase else decision.handoff,
            redact_inbound=decision.redact_inbound,
            intent_handled_by=decision.handled_by,
            confidence=parse.confidence,
        )

    async def _queue_if_missed(self, turn: TurnInput, outcome: TurnOutcome) -> None:
        """A message the bot did not understand goes to the editors' queue, masked. This
        runs after the replies are recorded, so masking never delays an answer; a crash
        in between costs a queue entry, never a message."""
        reason = missed_reason(outcome, self.missed_review_below)
        if reason is None or parse_payload(turn.text) is not None or not turn.text.strip():
            return
        text, guessed, confidence = turn.text, outcome.intent, outcome.confidence
        if reason == CORRECTION:  # what the bot got wrong is the message before
            previous = await self.store.get_previous_inbound(turn)
            if previous is None or parse_payload(previous[0]) is not None:
                return
            text, guessed, confidence = previous[0], previous[1], 0.0
        masked = await asyncio.to_thread(mask_personal, text[: self.max_message_chars])
        await self.store.do_add_missed(turn, MissedNote(reason, masked, guessed, confidence))

    def _parse(self, text: str) -> ParseResult:
        return self._interpreter().parse(text)

    async def recover(self, *, older_than: timedelta | None = None) -> int:
        """Answer every stored message that no turn answered (after a crash)."""
        pending = await self.store.get_unprocessed_inbound(older_than=older_than)
        for message_id, pseudonym in pending:
            await self.process(message_id, pseudonym)
        if pending:
            logger.info("recovered", extra={"event": "recovered", "count": len(pending)})
        return len(pending)


def with_encodable_text(message: InboundMessage) -> InboundMessage:
    """Lone UTF-16 surrogates (a platform cutting text mid-character) become U+FFFD, so
    the text can be encrypted and stored."""
    mended = LONE_SURROGATE.sub("\ufffd", message.text)
    return message if mended == message.text else replace(message, text=mended)


def screening_result_event(result: dict[str, Any]) -> dict[str, Any]:
    """What the numbers keep of a screening result: the level, the indicators seen and
    the age group when the person said they are under 18 (nothing else is asked)."""
    return {
        "level": str(result.get("level")),
        "indicators": [str(sign) for sign in result.get("signs") or []],
        "age_group": "under_18" if result.get("minor") else None,
    }


def missed_reason(outcome: TurnOutcome, review_below: float) -> str | None:
    """``fallback`` when the bot did not understand; ``correction`` when the person
    said the answer missed their question; ``low_confidence`` when it answered on a
    guess below ``review_below``; None otherwise (flows, commands...)."""
    if outcome.erase or outcome.intent is None:
        return None
    # only what the bot itself answered: not a flow's typed answer, never a message in a
    # conversation a counsellor holds (that stays between the person and the counsellor)
    if outcome.intent == FALLBACK_INTENT and outcome.intent_handled_by == FALLBACK_ACTION:
        return "fallback"
    if outcome.intent == CORRECTION_INTENT and outcome.intent_handled_by == CORRECTION_REPLY:
        return CORRECTION
    acted_on = outcome.intent_handled_by in (
        FAQ_ACTION,
        f"utter_{outcome.intent}",
        f"action_{outcome.intent}",
    )
    if acted_on and outcome.confidence < review_below:
        return "low_confidence"
    return None


def _handoff_events(decision: Decision) -> list[tuple[str, dict[str, Any]]]:
    """What the conversation's event log keeps of a handoff step (for the numbers
    admins see): never the call-back number or time themselves."""
    change = decision.handoff
    if decision.handled_by == HELD_DANGER:
        return [("danger_while_held", {})]
    if change is None:
        return []
    if change.kind == "queue":
        consent = change.consent.value if change.consent else None
        priority = change.priority.value if change.priority else None
        return [("handoff_requested", {"consent": consent, "priority": priority})]
    if change.kind in ("phone", "when"):
        return [(f"callback_{change.kind}", {})]
    return [(f"handoff_{change.kind}", {})]
