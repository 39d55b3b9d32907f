"""Handing a person to a counsellor: consent, the queue request, service hours, call-back.

The flow, in slots of the conversation:

- ``request_counsellor`` (typed, or a "Gặp tư vấn viên" button) asks for consent first:
  who will read (a trained counsellor), what they will see, and three buttons —
  share the conversation, share nothing before now, or cancel;
- consent queues the conversation (``HandoffChange("queue")``) with a priority: danger
  now > many signs > others. What the person is told then depends on whether a
  counsellor is available and the service open (Vietnam time); 111 is given at once
  whenever nobody can answer now, and the request stays queued;
- while waiting, "hủy" cancels, "xin gọi lại" asks for a number and a safe time (kept
  encrypted, deleted at close), and the bot keeps answering questions meanwhile.

The engine's turn (``turns.py``) keeps the bot silent once a counsellor holds the
conversation; the console API (``web/console.py``) does accept, reply and close.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any

from bot.domain import Consent, ConversationState, HandoffChange, ParseResult, Priority, Reply
from bot.engine.responses import ResponseCatalog, fill
from bot.errors import ConfigError
from bot.nlu.normalize import strip_diacritics

VIETNAM = timezone(timedelta(hours=7), "ICT")  # no daylight saving time
STEP_SLOT = "handoff_step"
DANGER_SEEN_SLOT = "danger_seen"
CONSENT_STEP = "consent"
PHONE_STEP = "callback_phone"
WHEN_STEP = "callback_when"
REQUEST_INTENT = "request_counsellor"
CONSENT_INTENT = "handoff_consent"
CALLBACK_INTENT = "request_callback"
CANCEL_INTENT = "cancel_handoff"
BUTTON_INTENTS = frozenset({CONSENT_INTENT, CALLBACK_INTENT, CANCEL_INTENT})
# what may answer "which number?": anything but a clear change of subject
ANSWER_INTENTS = frozenset({"nlu_fallback", "affirm", "deny", "out_of_scope", "inform"})
MANY_SIGNS_LEVELS = frozenset({"many_signs", "danger_now"})
PHONE_PLACEHOLDER = "[số điện thoại để gọi lại: đã lưu riêng, mã hóa]"
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_RANGE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)(?:-(mon|tue|wed|thu|fri|sat|sun))?$")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
RESPONSES = (
    "utter_handoff_consent",
    "utter_handoff_queued",
    "utter_handoff_queued_estimate",
    "utter_handoff_no_counsellor",
    "utter_handoff_closed_hours",
    "utter_handoff_cancelled",
    "utter_handoff_not_waiting",
    "utter_handoff_already_waiting",
    "utter_handoff_not_shared",
    "utter_callback_ask_phone",
    "utter_callback_no_phone",
    "utter_callback_ask_when",
    "utter_callback_saved",
    "utter_callback_skipped",
)


@dataclass(frozen=True)
class ServiceHours:
    """When counsellors are on duty, per weekday, in Vietnam time.

    Written like ``mon-fri 08:00-20:00; sat 08:00-12:00``; ``24:00`` ends a day.
    """

    windows: Mapping[int, tuple[tuple[time | None, time | None], ...]]

    @classmethod
    def parse(cls, spec: str) -> ServiceHours:
        windows: dict[int, list[tuple[time | None, time | None]]] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            days, _, hours = part.partition(" ")
            for day in _days(days.strip().lower(), spec):
                windows.setdefault(day, []).append(_hours(hours.strip(), spec))
        if not windows:
            raise ConfigError(
                "service hours are empty: give at least one, e.g. mon-sun 08:00-20:00"
            )
        return cls({day: tuple(spans) for day, spans in windows.items()})

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(VIETNAM)
        clock = local.time().replace(tzinfo=None)
        for start, end in self.windows.get(local.weekday(), ()):
            if (start is None or clock >= start) and (end is None or clock < end):
                return True
        return False


def _days(text: str, spec: str) -> list[int]:
    match = _DAY_RANGE.fullmatch(text)
    if match is None:
        raise ConfigError(f"service hours {spec!r}: days must look like mon-fri or sat")
    first = _WEEKDAYS.index(match[1])
    last = _WEEKDAYS.index(match[2] or match[1])
    if last < first:
        raise ConfigError(f"service hours {spec!r}: {text} runs backwards")
    return list(range(first, last + 1))


def _hours(text: str, spec: str) -> tuple[time | None, time | None]:
    match = _HOURS.fullmatch(text)
    if match is None:
        raise ConfigError(f"service hours {spec!r}: hours must look like 08:00-20:00")
    start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
    if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (end_h == 24 and end_m):
        raise ConfigError(f"service hours {spec!r}: {text} is not a time range")
    start = time(start_h, start_m)
    end = None if end_h == 24 else time(end_h, end_m)
    if end is not None and end <= start:
        raise ConfigError(f"service hours {spec!r}: {text} must end after it starts")
    return (start if start != time(0, 0) else None), end


@dataclass(frozen=True)
class Availability:
    """Who can take a conversation now."""

    counsellors: int
    in_hours: bool
    typical_wait_minutes: int | None = None

    @property
    def can_answer_now(self) -> bool:
        return self.counsellors > 0 and self.in_hours


AvailabilityCheck = Callable[[], Awaitable[Availability]]


@dataclass(frozen=True)
class HandoffStep:
    replies: list[Reply]
    slots: dict[str, Any]
    change: HandoffChange | None = None
    redact_inbound: str | None = None


def priority_of(slots: Mapping[str, Any]) -> Priority:
    if slots.get(DANGER_SEEN_SLOT):
        return Priority.DANGER
    result = slots.get("screening_result")
    if isinstance(result, dict) and result.get("level") in MANY_SIGNS_LEVELS:
        return Priority.MANY_SIGNS
    return Priority.NORMAL


def _entity(parse: ParseResult, name: str) -> str | None:
    return next((e.value for e in parse.entities if e.entity == name), None)


def _clear(slots: Mapping[str, Any]) -> dict[str, Any]:
    return {**slots, STEP_SLOT: None}


_BARE_NO = frozenset({"khong", "ko", "k", "hong", "hok", "khg", "kg"})


def _means_from_now(text: str) -> bool:
    """ "không" (the start of "Không, chỉ nói chuyện từ bây giờ") or the button's own
    words share nothing before; any other no ("không, cảm ơn", "thôi không cần") is a
    no to the handoff itself: nobody should write to a person who declined."""
    folded = " ".join(re.sub(r"[^\w\s]", " ", strip_diacritics(text).lower()).split())
    return folded in _BARE_NO or "bay gio" in folded or "tu gio" in folded


def _changes_subject(parse: ParseResult) -> bool:
    """A confident question or request rather than an answer ("tối nay sau 8 giờ")."""
    intent = parse.intent_name or ""
    asks = intent.startswith("faq/") or intent in (
        REQUEST_INTENT,
        "start_screening",
        "find_service",
    )
    return asks and parse.confidence >= 0.8


class HandoffFlow:
    """The consent question, the queue request and the call-back details."""

    def __init__(self, responses: ResponseCatalog, availability: AvailabilityCheck) -> None:
        missing = set(RESPONSES) - set(responses.names)
        if missing:
            raise ConfigError(f"responses.yml lacks {sorted(missing)}")
        self.responses = responses
        self.availability = availability

    def is_active(self, slots: Mapping[str, Any]) -> bool:
        return bool(slots.get(STEP_SLOT))

    def wants_handoff(self, parse: ParseResult) -> bool:
        return parse.intent_name in (REQUEST_INTENT, CALLBACK_INTENT, CONSENT_INTENT)

    def cancels(self, parse: ParseResult, state: ConversationState) -> bool:
        """ "hủy" (or the cancel button) while waiting withdraws the request."""
        return state is ConversationState.WAITING and parse.intent_name in (
            CANCEL_INTENT,
            "stop",
        )

    def ask_consent(self, slots: Mapping[str, Any], state: ConversationState) -> HandoffStep:
        if state is ConversationState.WAITING:
            return HandoffStep([self._get("utter_handoff_already_waiting")], _clear(slots))
        return HandoffStep([self._get("utter_handoff_consent")], {**slots, STEP_SLOT: CONSENT_STEP})

    def stop_step(self, slots: Mapping[str, Any], state: ConversationState) -> HandoffStep:
        """ "dừng" inside the consent or call-back questions ends only the question."""
        if slots.get(STEP_SLOT) == CONSENT_STEP:
            return HandoffStep([self._get("utter_handoff_cancelled")], _clear(slots))
        return HandoffStep([self._get("utter_callback_skipped")], _clear(slots))

    def cancel(self, slots: Mapping[str, Any], state: ConversationState) -> HandoffStep:
        if state is not ConversationState.WAITING:
            return HandoffStep([self._get("utter_handoff_not_waiting")], _clear(slots))
        return HandoffStep(
            [self._get("utter_handoff_cancelled")], _clear(slots), HandoffChange("cancel")
        )

    async def start(
        self, parse: ParseResult, slots: Mapping[str, Any], state: ConversationState
    ) -> HandoffStep:
        """A handoff button or request outside the consent question."""
        if parse.intent_name == CALLBACK_INTENT and state is ConversationState.WAITING:
            return HandoffStep(
                [self._get("utter_callback_ask_phone")], {**slots, STEP_SLOT: PHONE_STEP}
            )
        if parse.intent_name == CONSENT_INTENT:  # an old consent button, tapped again
            return await self._consent_answer(parse, slots, state) or self.ask_consent(slots, state)
        return self.ask_consent(slots, state)

    async def handle(
        self, parse: ParseResult, slots: Mapping[str, Any], state: ConversationState
    ) -> HandoffStep | None:
        """The answer to the question the flow asked; None when the person moved on
        (the question lapses and the message is handled as any other)."""
        step = slots.get(STEP_SLOT)
        if step == CONSENT_STEP:
            return await self._consent_answer(parse, slots, state)
        if step == PHONE_STEP:
            return self._phone_answer(parse, slots)
        if step == WHEN_STEP:
            return self._when_answer(parse, slots)
        return None

    async def _consent_answer(
        self, parse: ParseResult, slots: Mapping[str, Any], state: ConversationState
    ) -> HandoffStep | None:
        chosen = _entity(parse, "consent")
        if parse.intent_name == "affirm":
            chosen = Consent.FULL.value
        elif parse.intent_name == "deny":
            chosen = Consent.FROM_NOW.value if _means_from_now(parse.text) else "cancel"
        elif parse.intent_name in ("stop", CANCEL_INTENT):
            chosen = "cancel"
        if chosen == "cancel":
            return (
                self.cancel(slots, state)
                if state is ConversationState.WAITING
                else (HandoffStep([self._get("utter_handoff_cancelled")], _clear(slots)))
            )
        if chosen not in (Consent.FULL.value, Consent.FROM_NOW.value):
            return None
        if state is ConversationState.WAITING:
            return HandoffStep([self._get("utter_handoff_already_waiting")], _clear(slots))
        consent = Consent(chosen)
        priority = priority_of(slots)
        replies = await self._queued_replies()
        if consent is Consent.FROM_NOW:
            replies.insert(0, self._get("utter_handoff_not_shared"))
        change = HandoffChange("queue", consent=consent, priority=priority)
        return HandoffStep(replies, _clear(slots), change)

    async def _queued_replies(self) -> list[Reply]:
        now = await self.availability()
        if not now.in_hours:
            return [self._get("utter_handoff_closed_hours")]
        if now.counsellors == 0:
            return [self._get("utter_handoff_no_counsellor")]
        if now.typical_wait_minutes is not None:
            reply = self._get("utter_handoff_queued_estimate")
            text = fill(reply.text, {"minutes": now.typical_wait_minutes})
            return [Reply(text, reply.buttons)]
        return [self._get("utter_handoff_queued")]

    def _phone_answer(self, parse: ParseResult, slots: Mapping[str, Any]) -> HandoffStep | None:
        phone = _entity(parse, "phone_number")
        if phone is None:
            if parse.intent_name not in ANSWER_INTENTS:
                return None  # another question: the request for a number lapses
            return HandoffStep(
                [self._get("utter_callback_no_phone")], {**slots, STEP_SLOT: PHONE_STEP}
            )
        return HandoffStep(
            [self._get("utter_callback_ask_when")],
            {**slots, STEP_SLOT: WHEN_STEP},
            HandoffChange("phone", value=re.sub(r"[^\d+]", "", phone)),
            redact_inbound=PHONE_PLACEHOLDER,
        )

    def _when_answer(self, parse: ParseResult, slots: Mapping[str, Any]) -> HandoffStep | None:
        if _changes_subject(parse):
            return None
        when = parse.text.strip()[:200]
        return HandoffStep(
            [self._get("utter_callback_saved")],
            _clear(slots),
            HandoffChange("when", value=when),
            redact_inbound="[thời gian an toàn để gọi: đã lưu riêng, mã hóa]",
        )

    def _get(self, name: str) -> Reply:
        return self.responses.get(name)


async def nobody_on_duty() -> Availability:
    """For a policy without a console behind it (tests of the policy alone)."""
    return Availability(counsellors=0, in_hours=True)
