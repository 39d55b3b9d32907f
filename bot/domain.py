"""Frozen value types shared by every layer: messages in, replies out, parse results.

Nothing here imports anything else from ``bot``; every other module may import these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


class ConversationState(enum.StrEnum):
    """Who is answering a conversation right now."""

    BOT = "bot"
    WAITING = "waiting"
    COUNSELLOR = "counsellor"
    CLOSED = "closed"


class Direction(enum.StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class AuthorKind(enum.StrEnum):
    USER = "user"
    BOT = "bot"
    COUNSELLOR = "counsellor"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender; its lease is next_attempt_at
    SENT = "sent"
    FAILED = "failed"


class Priority(enum.StrEnum):
    """How soon a waiting conversation needs a counsellor (most urgent first)."""

    DANGER = "danger"
    MANY_SIGNS = "many_signs"
    NORMAL = "normal"


PRIORITY_RANK = {Priority.DANGER: 0, Priority.MANY_SIGNS: 1, Priority.NORMAL: 2}


class Consent(enum.StrEnum):
    """What a person let the counsellor see: everything, or only from the handoff on."""

    FULL = "full"
    FROM_NOW = "from_now"


class StaffRole(enum.StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    SUPERVISOR = "supervisor"
    COUNSELLOR = "counsellor"


@dataclass(frozen=True)
class Button:
    """A tappable choice; ``payload`` is sent back as the message when tapped."""

    title: str
    payload: str


@dataclass(frozen=True)
class InboundMessage:
    """One message from a person, as any channel hands it to the engine.

    ``platform_message_id`` deduplicates redeliveries; channels without one (the REST
    channel) leave it ``None`` and every delivery counts as new.
    """

    channel: str
    sender_id: str
    text: str
    platform_message_id: str | None = None
    received_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """One message the service sends to a person."""

    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """A reply taken from the outbox, with what its channel needs to deliver it."""

    outbox_id: int
    channel: str
    recipient_id: str
    pseudonym: str
    reply: Reply
    attempts: int
    author: str = "bot"  # "counsellor": Messenger sends it with the HUMAN_AGENT tag
    person_last_seen_at: datetime | None = None  # when the person last wrote (reply windows)


class DeliveryError(Exception):
    """A channel could not deliver a reply.

    ``retryable`` says whether to try again; ``deferred`` says the person is simply not
    reachable now (a closed web chat): wait for them without spending an attempt;
    ``retry_after`` is how long the platform asked us to wait (a 429), in seconds.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool = True,
        deferred: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.deferred = deferred
        self.retry_after = retry_after


@dataclass(frozen=True)
class Entity:
    entity: str
    value: str
    start: int
    end: int
    confidence: float | None = None
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class RiskCue:
    """A trafficking indicator a message shows (see ``data/nlu/risk_cues.yml``)."""

    cue: str
    confidence: float


@dataclass(frozen=True)
class ParseResult:
    """What the NLU understood of one text, in the shape of Rasa's ``/model/parse``,
    plus the risk cues it shows."""

    text: str
    intent: IntentScore | None
    intent_ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    risk_cues: tuple[RiskCue, ...] = ()

    @property
    def cue_names(self) -> set[str]:
        return {cue.cue for cue in self.risk_cues}

    @property
    def intent_name(self) -> str | None:
        return self.intent.name if self.intent else None

    @property
    def confidence(self) -> float:
        return self.intent.confidence if self.intent else 0.0

    def as_rasa_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": _intent_dict(self.intent),
            "intent_ranking": [_intent_dict(score) for score in self.intent_ranking],
            "entities": [_entity_dict(entity) for entity in self.entities],
            "risk_cues": [
                {"cue": cue.cue, "confidence": round(cue.confidence, 4)} for cue in self.risk_cues
            ],
        }


def _intent_dict(score: IntentScore | None) -> dict[str, Any] | None:
    if score is None:
        return None
    return {"name": score.name, "confidence": round(score.confidence, 4)}


def _entity_dict(entity: Entity) -> dict[str, Any]:
    data: dict[str, Any] = {
        "entity": entity.entity,
        "value": entity.value,
        "start": entity.start,
        "end": entity.end,
    }
    for key in ("confidence", "role", "group"):
        if getattr(entity, key) is not None:
            data[key] = getattr(entity, key)
    return data


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ topic's answer, as admins keep it: ``key`` is the ``faq/<key>`` intent."""

    key: str
    title: str
    answer: str
    sources: tuple[str, ...]
    reviewed: date
    more: str | None = None
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class HandoffChange:
    """What a turn does to the conversation's handoff: ``queue`` it (with the consent
    given), ``cancel`` the request, ``escalate`` its priority, or keep a call-back
    ``phone``/``when`` (both stored encrypted, deleted at close)."""

    kind: str
    consent: Consent | None = None
    priority: Priority | None = None
    value: str | None = None


@dataclass(frozen=True)
class StaffMember:
    """A logged-in member of staff, as the API sees them."""

    id: int
    username: str
    role: str
    reviewer: bool = False  # may publish content others drafted (admins always may)

    @property
    def may_publish(self) -> bool:
        return self.role == StaffRole.ADMIN.value or self.reviewer
