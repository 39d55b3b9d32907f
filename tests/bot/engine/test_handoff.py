"""Handing a person to a counsellor: service hours, priorities, the reply window, and the
whole flow through the real engine (consent, the queue, waiting, call-back, a held
conversation, erasure, close and the "still waiting" updates).

Engine tests run on ``open_services`` without a server (SQLite, and PostgreSQL when
configured); what the person is told is read from the outbox, what changed from the
database, and what the console hears from the ``EventHub``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.config import Settings
from bot.domain import (
    Consent,
    ConversationState,
    InboundMessage,
    Priority,
    Reply,
    StaffMember,
)
from bot.engine.desk import CounsellorDesk
from bot.engine.events import EventHub, Subscription
from bot.engine.handoff import (
    VIETNAM,
    Availability,
    ServiceHours,
    priority_of,
)
from bot.engine.responses import ResponseCatalog, fill
from bot.errors import ConfigError, Conflict
from bot.storage.cases import Case
from bot.storage.models import CaseNote, Contact, Conversation, utcnow

REPO = Path(__file__).resolve().parents[3]
CATALOG = ResponseCatalog.from_file(REPO / "data" / "responses.yml")
CHANNEL = "rest"
FULL = '/handoff_consent{"consent": "full"}'
FROM_NOW = '/handoff_consent{"consent": "from_now"}'
CANCEL = '/handoff_consent{"consent": "cancel"}'
WEEKDAY_HOURS = "mon-fri 08:00-20:00; sat 08:00-12:00"
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday, 00:00 UTC = 07:00 in Vietnam


def said(name: str) -> str:
    return CATALOG.get(name).text


def texts(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Counsellors on duty around the clock: what the person is told must not depend on
    the hour the tests run at (the hours themselves have their own tests)."""
    return dataclasses.replace(settings, service_hours="mon-sun 00:00-24:00")


# -- the two sides ---------------------------------------------------------------------------


@dataclass
class Person:
    services: Any
    sender: str = "u1"
    channel: str = CHANNEL
    conversation_id: int | None = None
    last_message_id: int | None = None

    async def say(self, words: str, *, at: datetime | None = None) -> list[Reply]:
        """Send one message; what the bot (or anyone) recorded for the person since."""
        stored = await self.services.turns.handle(
            InboundMessage(channel=self.channel, sender_id=self.sender, text=words, received_at=at)
        )
        assert stored is not None
        self.conversation_id = stored.conversation_id
        self.last_message_id = stored.message_id
        return await self.inbox()

    async def inbox(self) -> list[Reply]:
        deliveries = await self.services.store.do_take_pending_for_contact(
            self.channel, self.sender
        )
        return [d.reply for d in deliveries]

    async def case(self) -> Case:
        assert self.conversation_id is not None
        case: Case | None = await self.services.cases.get_case(self.conversation_id)
        assert case is not None
        return case

    async def queue(self, consent: str = "đồng ý", *, at: datetime | None = None) -> list[Reply]:
        """Ask for a counsellor and consent; returns what the consent was answered with."""
        assert texts(await self.say("gặp tư vấn viên", at=at)) == [said("utter_handoff_consent")]
        return await self.say(consent, at=at)


async def counsellor(services: Any, name: str = "tuvan", *, available: bool = True) -> StaffMember:
    staff_id = await services.store.do_create_staff_user(name, "not-a-real-hash", "counsellor")
    if available:
        await services.cases.do_set_available(staff_id, True)
    return StaffMember(staff_id, name, "counsellor")


def drain(subscription: Subscription) -> list[dict[str, Any]]:
    events = []
    while not subscription.events.empty():
        events.append(subscription.events.get_nowait())
    return events


async def raw(services: Any, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with services.database.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql), params)]


async def add_past_handoff(services: Any, name: str, waited: timedelta) -> None:
    """An accepted request of someone else, accepted a minute ago after ``waited``."""
    accepted = utcnow() - timedelta(minutes=1)
    async with services.cases.sessions() as session:
        contact = Contact(
            pseudonym=f"past-{name}", channel=CHANNEL, platform_user_id_enc="not-used"
        )
        session.add(contact)
        await session.flush()
        session.add(
            Conversation(
                contact_id=contact.id,
                state=ConversationState.CLOSED.value,
                queued_at=accepted - waited,
                accepted_at=accepted,
                closed_at=accepted,
            )
        )
        await session.commit()


# -- service hours -----------------------------------------------------------------------------


def test_service_hours_parse_days_and_hours() -> None:
    hours = ServiceHours.parse(WEEKDAY_HOURS)
    assert sorted(hours.windows) == [0, 1, 2, 3, 4, 5]  # no Sunday
    assert len(hours.windows[0]) == 1 and len(hours.windows[5]) == 1
    assert hours.windows[0] != hours.windows[5]


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        (MONDAY + timedelta(minutes=59, seconds=59), False),  # Mon 07:59:59 in Vietnam
        (MONDAY + timedelta(hours=1), True),  # Mon 08:00
        (MONDAY + timedelta(hours=12, minutes=59, seconds=59), True),  # Mon 19:59:59
        (MONDAY + timedelta(hours=13), False),  # Mon 20:00
        (MONDAY + timedelta(days=4, hours=12, minutes=59), True),  # Fri 19:59
        (MONDAY + timedelta(days=4, hours=13), False),  # Fri 20:00
        (MONDAY + timedelta(days=5, hours=1), True),  # Sat 08:00
        (MONDAY + timedelta(days=5, hours=4, minutes=59), True),  # Sat 11:59
        (MONDAY + timedelta(days=5, hours=5), False),  # Sat 12:00
        (MONDAY + timedelta(days=6, hours=3), False),  # Sun 10:00
        (MONDAY - timedelta(hours=20), False),  # Sun 11:00 (the Sunday before)
        # 23:30 UTC on Monday is already Tuesday 06:30 in Vietnam: closed
        (MONDAY + timedelta(hours=23, minutes=30), False),
        # 17:30 UTC on Friday is Saturday 00:30 in Vietnam, not Friday 17:30
        (MONDAY + timedelta(days=4, hours=17, minutes=30), False),
    ],
)
def test_service_hours_are_vietnam_time(utc: datetime, open_: bool) -> None:
    assert ServiceHours.parse(WEEKDAY_HOURS).is_open(utc) is open_


def test_any_timezone_is_read_as_the_same_instant() -> None:
    hours = ServiceHours.parse(WEEKDAY_HOURS)
    in_vietnam = datetime(2026, 11, 23, 8, 0, tzinfo=VIETNAM)
    in_paris = datetime(2026, 11, 23, 2, 0, tzinfo=timezone(timedelta(hours=1)))
    assert hours.is_open(in_vietnam) and hours.is_open(in_paris)
    assert not hours.is_open(in_paris - timedelta(seconds=1))


def test_all_day_every_day_is_always_open() -> None:
    hours = ServiceHours.parse("mon-sun 00:00-24:00")
    assert sorted(hours.windows) == list(range(7))
    for minutes in range(0, 7 * 24 * 60, 17):
        assert hours.is_open(MONDAY + timedelta(minutes=minutes))


def test_a_whole_day_is_that_day_in_vietnam() -> None:
    hours = ServiceHours.parse("mon 00:00-24:00")
    sunday_evening_utc = MONDAY - timedelta(hours=7)  # Mon 00:00 in Vietnam
    assert hours.is_open(sunday_evening_utc)
    assert not hours.is_open(sunday_evening_utc - timedelta(seconds=1))
    assert hours.is_open(sunday_evening_utc + timedelta(hours=23, minutes=59, seconds=59))
    assert not hours.is_open(sunday_evening_utc + timedelta(hours=24))


def test_spacing_and_case_are_forgiven() -> None:
    hours = ServiceHours.parse("  Mon-Fri   08:00-20:00 ;; SAT 8:00-12:00 ;")
    assert hours == ServiceHours.parse(WEEKDAY_HOURS)


@pytest.mark.parametrize(
    "spec",
    [
        "fri-mon 08:00-20:00",  # days backwards
        "sun-sat 08:00-20:00",
        "mon-fri 25:00-26:00",
        "mon-fri 08:00-25:00",
        "mon-fri 24:00-24:00",
        "mon-fri 08:00-24:30",
        "mon-fri 08:60-20:00",
        "mon-fri 20:00-08:00",  # ends before it starts
        "mon-fri 08:00-08:00",
        "mon-fri 22:00-02:00",  # no spans over midnight
        "mon-fri",  # no hours
        "08:00-20:00",  # no days
        "always",
        "lun-ven 08:00-20:00",
        "monday 08:00-20:00",
        "mon-fri 8h-20h",
        "mon-fri 08:00-20:00, sat 08:00-12:00",
        "mon-fri 08:00-20:00; sat",
        "",  # never open would turn every request away: say so instead
        " ; ",
    ],
)
def test_bad_service_hours_are_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="service hours"):
        ServiceHours.parse(spec)


# -- priority and availability -----------------------------------------------------------


@pytest.mark.parametrize(
    ("slots", "priority"),
    [
        ({}, Priority.NORMAL),
        ({"danger_seen": True}, Priority.DANGER),
        ({"danger_seen": False}, Priority.NORMAL),
        ({"screening_result": {"level": "many_signs"}}, Priority.MANY_SIGNS),
        ({"screening_result": {"level": "danger_now"}}, Priority.MANY_SIGNS),
        ({"screening_result": {"level": "some_signs"}}, Priority.NORMAL),
        ({"screening_result": {"level": "low"}}, Priority.NORMAL),
        ({"screening_result": "many_signs"}, Priority.NORMAL),  # not a result
        ({"screening_result": None}, Priority.NORMAL),
        (
            {"danger_seen": True, "screening_result": {"level": "many_signs"}},
            Priority.DANGER,
        ),
        ({"danger_seen": True, "screening_result": {"level": "low"}}, Priority.DANGER),
    ],
)
def test_priority_danger_then_many_signs_then_normal(
    slots: dict[str, Any], priority: Priority
) -> None:
    assert priority_of(slots) is priority


def test_only_a_counsellor_in_hours_can_answer_now() -> None:
    assert Availability(counsellors=1, in_hours=True).can_answer_now
    assert not Availability(counsellors=0, in_hours=True).can_answer_now
    assert not Availability(counsellors=3, in_hours=False).can_answer_now


# -- Messenger's reply window ------------------------------------------------------------------


def desk(*, human_agent: bool = False) -> CounsellorDesk:
    return CounsellorDesk(
        None,  # type: ignore[arg-type]  # the window needs no database
        CATALOG,
        EventHub(),
        ServiceHours.parse("mon-sun 00:00-24:00"),
        notify_outbox=lambda: None,
        facebook_human_agent=human_agent,
    )


def held_case(
    channel: str,
    last_inbound_ago: timedelta | None,
    state: ConversationState = ConversationState.COUNSELLOR,
) -> Case:
    now = utcnow()
    return Case(
        id=1,
        contact_id=1,
        channel=channel,
        state=state,
        priority=Priority.NORMAL,
        risk_level=None,
        consent="full",
        queued_at=now - timedelta(days=9),
        accepted_at=now - timedelta(days=9),
        closed_at=None,
        handoff_message_id=None,
        assigned_staff_id=7,
        assigned_username="tuvan",
        callback_phone=None,
        callback_when=None,
        slots={},
        last_inbound_at=None if last_inbound_ago is None else now - last_inbound_ago,
    )


@pytest.mark.parametrize(
    ("ago", "human_agent", "open_"),
    [
        (timedelta(minutes=1), False, True),
        (timedelta(hours=23, minutes=59), False, True),
        (timedelta(hours=24, minutes=1), False, False),
        (timedelta(days=3), False, False),
        (timedelta(hours=24, minutes=1), True, True),
        (timedelta(days=6, hours=23, minutes=59), True, True),
        (timedelta(days=7, minutes=1), True, False),
    ],
)
def test_messenger_allows_replies_for_24_hours_or_7_with_the_human_agent_tag(
    ago: timedelta, human_agent: bool, open_: bool
) -> None:
    window = desk(human_agent=human_agent).reply_window(held_case("facebook", ago))
    assert window.open is open_
    if open_:
        assert window.reason is None
    else:
        assert window.reason is not None
        assert "Messenger" in window.reason and "người dùng cần nhắn trước" in window.reason


@pytest.mark.parametrize("channel", ["rest", "webchat", "callback", "telegram", "zalo"])
def test_other_channels_have_no_reply_window(channel: str) -> None:
    assert desk().reply_window(held_case(channel, timedelta(days=30))).open


def test_a_facebook_case_without_inbound_messages_is_open() -> None:
    assert desk().reply_window(held_case("facebook", None)).open


@pytest.mark.parametrize(
    "state", [ConversationState.WAITING, ConversationState.CLOSED, ConversationState.BOT]
)
def test_only_a_held_conversation_can_be_written_to(state: ConversationState) -> None:
    window = desk().reply_window(held_case("rest", timedelta(minutes=1), state))
    assert not window.open
    assert window.reason == "Cuộc trò chuyện không còn do tư vấn viên phụ trách."


async def test_the_window_counts_from_the_persons_last_message_in_the_database(
    services: Any,
) -> None:
    member = await counsellor(services)
    person = Person(services, "fb-1", channel="facebook")
    long_ago = utcnow() - timedelta(hours=25)
    await person.queue(at=long_ago)
    await services.desk.accept(await person.case(), member)
    case = await person.case()
    assert case.last_inbound_at is not None
    assert abs(case.last_inbound_at - long_ago) < timedelta(seconds=1)
    window = services.desk.reply_window(case)
    assert not window.open and window.reason and "Messenger" in window.reason
    with pytest.raises(Conflict):
        await services.desk.reply(case, member, "Chào bạn")

    await person.say("chị ơi")  # writing again opens the window
    case = await person.case()
    assert services.desk.reply_window(case).open
    await services.desk.reply(case, member, "Chào bạn, mình là tư vấn viên.")
    assert texts(await person.inbox()) == ["Chào bạn, mình là tư vấn viên."]


# -- consent ------------------------------------------------------------------------------


async def test_a_request_asks_for_consent_first_with_three_choices(services: Any) -> None:
    person = Person(services)
    replies = await person.say("tôi muốn nói chuyện với người thật")
    assert texts(replies) == [said("utter_handoff_consent")]
    assert "111" in replies[0].text
    assert [b.payload for b in replies[0].buttons] == [FULL, FROM_NOW, CANCEL]
    case = await person.case()
    assert case.state is ConversationState.BOT and case.queued_at is None


async def test_yes_shares_everything_and_queues_and_nobody_on_duty_gives_111(
    services: Any,
) -> None:
    await counsellor(services, available=False)  # an account, but not on duty
    person = Person(services)
    replies = await person.queue("đồng ý")
    assert texts(replies) == [said("utter_handoff_no_counsellor")]
    assert "111" in replies[0].text
    assert [b.payload for b in replies[0].buttons] == ["/request_callback", "/cancel_handoff"]
    case = await person.case()
    assert case.state is ConversationState.WAITING
    assert case.consent == Consent.FULL.value
    assert case.priority is Priority.NORMAL
    assert case.queued_at is not None
    assert case.handoff_message_id == person.last_message_id  # the consent message
    assert [c.id for c in await services.cases.get_queue()] == [case.id]


async def test_no_shares_only_from_now_and_queues(services: Any) -> None:
    person = Person(services)
    await person.say("công ty giữ hộ chiếu của tôi")
    replies = await person.queue("không")
    assert texts(replies) == [said("utter_handoff_not_shared"), said("utter_handoff_no_counsellor")]
    case = await person.case()
    assert case.state is ConversationState.WAITING
    assert case.consent == Consent.FROM_NOW.value
    # what the console may show: the consent answer and what follows, nothing before
    shown = await services.cases.get_messages(case.id, from_id=case.handoff_message_id)
    assert [m.text for m in shown] == [
        "không",
        said("utter_handoff_not_shared"),
        said("utter_handoff_no_counsellor"),
    ]


async def test_cancel_at_the_consent_question_queues_nothing(services: Any) -> None:
    for answer in ("hủy", "thôi", CANCEL):
        person = Person(services, answer)
        assert texts(await person.queue(answer)) == [said("utter_handoff_cancelled")], answer
        case = await person.case()
        assert case.state is ConversationState.BOT, answer
        assert case.queued_at is None and case.consent is None and case.priority is None
        # the question is over: a later "đồng ý" is not taken as consent
        assert said("utter_handoff_no_counsellor") not in texts(await person.say("đồng ý"))
        assert (await person.case()).state is ConversationState.BOT, answer
    assert await services.cases.get_queue() == []


async def test_no_thanks_at_the_consent_question_queues_nothing(services: Any) -> None:
    for answer in ("không, cảm ơn", "thôi không cần", "tôi không cần nữa"):
        person = Person(services, answer)
        await person.queue(answer)
        assert (await person.case()).state is ConversationState.BOT, answer
    assert await services.cases.get_queue() == []


async def test_with_a_counsellor_on_duty_the_person_is_told_they_will_hear_back(
    services: Any,
) -> None:
    await counsellor(services)
    person = Person(services)
    replies = await person.queue("đồng ý")
    assert texts(replies) == [said("utter_handoff_queued")]
    assert [b.payload for b in replies[0].buttons] == ["/cancel_handoff"]
    assert (await person.case()).state is ConversationState.WAITING


async def test_the_usual_wait_is_given_once_there_are_three_past_waits(services: Any) -> None:
    await counsellor(services)
    await add_past_handoff(services, "a", timedelta(minutes=12))
    await add_past_handoff(services, "b", timedelta(minutes=7))
    first = await Person(services, "first").queue()
    assert texts(first) == [said("utter_handoff_queued")]  # two waits say nothing yet

    await add_past_handoff(services, "c", timedelta(minutes=14))  # median 12 min: "15"
    replies = await Person(services, "second").queue()
    template = CATALOG.get("utter_handoff_queued_estimate")
    assert texts(replies) == [fill(template.text, {"minutes": 15})]
    assert "{minutes}" not in replies[0].text and "khoảng 15 phút" in replies[0].text
    assert replies[0].buttons == template.buttons


async def test_outside_service_hours_the_request_is_kept_and_111_given(
    settings: Settings,
) -> None:
    from bot.app import close_services, open_services

    today = utcnow().astimezone(VIETNAM).weekday()
    another_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(today + 3) % 7]
    services = await open_services(
        dataclasses.replace(settings, service_hours=f"{another_day} 00:00-24:00")
    )
    try:
        await counsellor(services)  # on duty, but the service is closed
        person = Person(services)
        replies = await person.queue("đồng ý")
        assert texts(replies) == [said("utter_handoff_closed_hours")]
        assert "111" in replies[0].text
        rows = await raw(
            services, "SELECT state FROM conversations WHERE id = :id", id=person.conversation_id
        )
        assert rows == [("waiting",)]
    finally:
        await close_services(services)


# -- while waiting ---------------------------------------------------------------------------


async def test_the_bot_keeps_answering_questions_while_waiting(services: Any) -> None:
    person = Person(services)
    await person.queue()
    replies = await person.say("mua bán người là gì")
    faq = services.turns.policy.responses.get("utter_faq/what_is_trafficking")
    assert replies and replies[0].text == faq.text
    assert (await person.case()).state is ConversationState.WAITING


async def test_the_person_can_withdraw_the_request(services: Any) -> None:
    for words in ("hủy", "/cancel_handoff", "tôi không muốn chờ nữa"):
        person = Person(services, words)
        await person.queue()
        with services.turns.events.subscribe(999) as console:
            assert texts(await person.say(words)) == [said("utter_handoff_cancelled")], words
            assert {"type": "queue", "urgent": False} in drain(console)
        case = await person.case()
        assert case.state is ConversationState.BOT, words
        assert (case.priority, case.consent, case.queued_at) == (None, None, None)
        assert await services.cases.get_queue() == []
        assert texts(await person.say("/cancel_handoff")) == [said("utter_handoff_not_waiting")]


async def test_asking_again_while_waiting_says_the_request_is_kept(services: Any) -> None:
    person = Person(services)
    await person.queue()
    queued_at = (await person.case()).queued_at
    assert texts(await person.say("gặp tư vấn viên")) == [said("utter_handoff_already_waiting")]
    assert texts(await person.say(FULL)) == [said("utter_handoff_already_waiting")]
    case = await person.case()
    assert case.state is ConversationState.WAITING and case.queued_at == queued_at


async def test_the_old_cancel_button_withdraws_a_waiting_request(services: Any) -> None:
    person = Person(services)
    await person.queue()
    assert texts(await person.say(CANCEL)) == [said("utter_handoff_cancelled")]
    assert (await person.case()).state is ConversationState.BOT
    assert await services.cases.get_queue() == []


async def test_danger_while_waiting_answers_113_111_and_goes_first(services: Any) -> None:
    earlier, later = Person(services, "earlier"), Person(services, "later")
    await earlier.queue()
    await later.queue()
    assert [c.id for c in await services.cases.get_queue()] == [
        earlier.conversation_id,
        later.conversation_id,
    ]
    with services.turns.events.subscribe(999) as console:
        replies = await later.say("cứu tôi với, tôi bị nhốt")
        assert {"type": "queue", "urgent": True} in drain(console)
    assert texts(replies) == [said("utter_emergency")]
    case = await later.case()
    assert case.state is ConversationState.WAITING
    assert case.priority is Priority.DANGER
    queue = await services.cases.get_queue()
    assert [(c.id, c.priority) for c in queue] == [
        (later.conversation_id, Priority.DANGER),
        (earlier.conversation_id, Priority.NORMAL),
    ]


async def test_danger_before_the_request_queues_it_as_danger(services: Any) -> None:
    person = Person(services)
    assert texts(await person.say("họ đang đánh tôi")) == [said("utter_emergency")]
    with services.turns.events.subscribe(999) as console:
        await person.queue()
        assert drain(console) == [{"type": "queue", "urgent": True}]
    assert (await person.case()).priority is Priority.DANGER


async def test_held_and_waiting_queue_order(services: Any) -> None:
    member = await counsellor(services)
    first, second, third = (Person(services, f"p{i}") for i in range(3))
    for person in (first, second, third):
        await person.queue()
    await services.desk.accept(await first.case(), member)
    await third.say("họ đang đánh tôi")
    assert [c.id for c in await services.cases.get_queue()] == [
        third.conversation_id,  # waiting, danger
        second.conversation_id,  # waiting, normal
        first.conversation_id,  # held
    ]


# -- call-back -------------------------------------------------------------------------------


async def test_a_call_back_number_and_time_are_kept_encrypted_and_out_of_the_messages(
    services: Any,
) -> None:
    person = Person(services)
    await person.queue()
    assert texts(await person.say("/request_callback")) == [said("utter_callback_ask_phone")]
    assert texts(await person.say("tôi không có số")) == [said("utter_callback_no_phone")]
    assert texts(await person.say("0912 345 678")) == [said("utter_callback_ask_when")]
    case = await person.case()
    assert case.callback_phone == "0912345678"
    assert case.state is ConversationState.WAITING
    assert texts(await person.say("tối nay sau 8 giờ")) == [said("utter_callback_saved")]
    case = await person.case()
    assert case.callback_when == "tối nay sau 8 giờ"
    assert case.callback_phone == "0912345678"
    assert case.state is ConversationState.WAITING

    (columns,) = await raw(
        services,
        "SELECT callback_phone_enc, callback_when_enc FROM conversations WHERE id = :id",
        id=case.id,
    )
    assert all(columns) and "0912" not in repr(columns) and "345" not in repr(columns)
    assert "tối nay" not in repr(columns)
    stored = [m.text for m in await services.cases.get_messages(case.id)]
    assert not any("0912" in t or "345 678" in t for t in stored), stored
    assert not any("tối nay sau 8 giờ" in t for t in stored), stored
    assert any("đã lưu riêng, mã hóa" in t for t in stored)
    events = await raw(
        services,
        "SELECT type, data FROM conversation_events WHERE conversation_id = :id",
        id=case.id,
    )
    assert "0912" not in repr(events) and "tối nay" not in repr(events)
    assert {"callback_phone", "callback_when"} <= {kind for kind, _ in events}


async def test_thoi_at_the_number_question_keeps_the_request(services: Any) -> None:
    person = Person(services)
    # before any request, a call-back asks for consent first
    assert texts(await person.say("/request_callback")) == [said("utter_handoff_consent")]
    assert (await person.case()).state is ConversationState.BOT
    assert texts(await person.say("đồng ý")) == [said("utter_handoff_no_counsellor")]
    assert texts(await person.say("/request_callback")) == [said("utter_callback_ask_phone")]
    assert texts(await person.say("thôi")) == [said("utter_callback_skipped")]
    case = await person.case()
    assert case.state is ConversationState.WAITING and case.callback_phone is None
    # the question is over: "hủy" now withdraws the request
    assert texts(await person.say("hủy")) == [said("utter_handoff_cancelled")]
    assert (await person.case()).state is ConversationState.BOT


async def test_a_number_sent_just_after_the_accept_is_still_deleted_at_close(
    services: Any,
) -> None:
    member = await counsellor(services)
    person = Person(services)
    await person.queue()
    assert texts(await person.say("/request_callback")) == [said("utter_callback_ask_phone")]
    await services.desk.accept(await person.case(), member)  # meanwhile, on the console
    await person.inbox()
    await person.say("0987 654 321")
    await services.desk.close(await person.case(), "resolved")
    assert person.conversation_id is not None
    stored = [m.text for m in await services.cases.get_messages(person.conversation_id)]
    assert not any("654" in t for t in stored), stored


# -- a conversation a counsellor holds ---------------------------------------------------------


async def held(services: Any) -> tuple[Person, StaffMember, StaffMember]:
    """A person whose conversation ``holder`` accepted; ``other`` is another counsellor."""
    holder = await counsellor(services, "holder")
    other = await counsellor(services, "other")
    person = Person(services)
    await person.queue()
    await services.desk.accept(await person.case(), holder)
    assert texts(await person.inbox()) == [said("utter_handoff_accepted")]
    return person, holder, other


async def test_held_the_bot_is_silent_and_only_the_holder_hears_the_message(
    services: Any,
) -> None:
    person, holder, other = await held(services)
    with (
        services.turns.events.subscribe(holder.id) as mine,
        services.turns.events.subscribe(other.id) as theirs,
    ):
        assert await person.say("dạ em cảm ơn chị") == []
        heard, overheard = drain(mine), drain(theirs)
    messages = [e for e in heard if e["type"] == "message"]
    assert len(messages) == 1
    assert messages[0]["conversation_id"] == person.conversation_id
    assert messages[0]["message"]["text"] == "dạ em cảm ơn chị"
    assert messages[0]["message"]["author"] == "user"
    assert messages[0]["message"]["id"] == person.last_message_id
    assert [e for e in overheard if e["type"] in ("message", "alert")] == []
    assert await services.store.get_unprocessed_inbound() == []
    case = await person.case()
    assert case.state is ConversationState.COUNSELLOR and case.assigned_staff_id == holder.id


async def test_held_danger_still_gets_113_111_and_alerts_the_counsellor(services: Any) -> None:
    person, holder, other = await held(services)
    with (
        services.turns.events.subscribe(holder.id) as mine,
        services.turns.events.subscribe(other.id) as theirs,
    ):
        replies = await person.say("họ đang đánh tôi")
        heard, overheard = drain(mine), drain(theirs)
    assert replies == [Reply(said("utter_emergency"))]  # no "find a person" button
    assert {
        "type": "alert",
        "conversation_id": person.conversation_id,
        "kind": "danger",
    } in heard
    authors = [e["message"]["author"] for e in heard if e["type"] == "message"]
    assert authors == ["user", "bot"]
    assert [e for e in overheard if e["type"] in ("message", "alert")] == []
    case = await person.case()
    assert case.state is ConversationState.COUNSELLOR
    assert case.slots.get("danger_seen") is True


async def test_held_erasure_still_works_and_takes_the_case_with_it(services: Any) -> None:
    person, holder, _ = await held(services)
    conversation_id = person.conversation_id
    assert conversation_id is not None
    await services.cases.do_add_note(conversation_id, holder.id, "Chị Lan ở Nghệ An")
    with services.turns.events.subscribe(holder.id) as mine:
        confirm = await person.say("xóa dữ liệu")
        assert texts(confirm) == [said("utter_delete_confirm")]
        assert confirm[0].buttons  # the confirm question keeps its buttons
        await services.turns.handle(
            InboundMessage(channel=CHANNEL, sender_id=person.sender, text="đồng ý")
        )
        heard = drain(mine)
    assert {
        "type": "conversation",
        "conversation_id": conversation_id,
        "state": "erased",
        "assigned_to": None,
    } in heard
    assert await services.cases.get_notes(conversation_id) == []
    assert texts(await person.inbox()) == [said("utter_deleted")]
    # the confirmation is delivered: nothing about the person is left
    assert await services.cases.get_case(conversation_id) is None
    async with services.cases.sessions() as session:
        assert (await session.scalars(select(CaseNote))).all() == []
        assert (await session.scalars(select(Contact))).all() == []
    assert await services.cases.get_queue() == []


async def test_after_close_the_next_message_opens_a_new_conversation_with_the_bot(
    services: Any,
) -> None:
    person, _, _ = await held(services)
    old = await person.case()
    await services.desk.close(old, "resolved")
    assert texts(await person.inbox()) == [said("utter_handoff_closed")]
    closed = await person.case()
    assert closed.state is ConversationState.CLOSED and closed.closed_at is not None
    with pytest.raises(Conflict):
        await services.desk.close(closed, "resolved")

    replies = await person.say("xin chào")
    assert texts(replies) == [said("utter_greet")]
    assert person.conversation_id != old.id
    new = await person.case()
    assert new.state is ConversationState.BOT and new.assigned_staff_id is None
    assert (await services.cases.get_case(old.id)).state is ConversationState.CLOSED


# -- "still waiting" updates -------------------------------------------------------------------


async def test_waiting_updates_go_only_to_waiting_people_at_most_twice(services: Any) -> None:
    member = await counsellor(services)
    waiting, holding, closed, chatting = (
        Person(services, name) for name in ("waiting", "holding", "closed", "chatting")
    )
    for person in (waiting, holding, closed):
        await person.queue()
    await services.desk.accept(await holding.case(), member)
    await services.desk.close(await closed.case(), "no_reply")
    await chatting.say("xin chào")
    for person in (holding, closed):
        await person.inbox()

    update = said("utter_handoff_still_waiting")
    for _ in range(2):
        assert await services.desk.send_waiting_updates(timedelta(0), max_updates=2) == 1
        assert texts(await waiting.inbox()) == [update]
    assert await services.desk.send_waiting_updates(timedelta(0), max_updates=2) == 0
    assert await waiting.inbox() == []
    for person in (holding, closed, chatting):
        assert await person.inbox() == [], person.sender

    # a new request counts again from zero, and is not due before its wait
    await waiting.say("hủy")
    await waiting.queue()
    assert await services.desk.send_waiting_updates(timedelta(minutes=10), max_updates=2) == 0
    assert await services.desk.send_waiting_updates(timedelta(0), max_updates=2) == 1
    assert texts(await waiting.inbox()) == [update]
