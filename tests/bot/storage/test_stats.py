"""The dashboard's statistics (bot/storage/stats.py).

The query's arguments and their errors; the small-number protection on its own (checked
against a reader who tries every value the shown cells allow); and, on both databases,
every table and measure of a report over one seeded world: people per day and channel,
FAQ topics, fallback rate, screening and its levels, handoffs and their waits,
exploitation (stated, or read from indicators and cues), age group, sex, province,
support given, deletions, the date and channel filters, and that no table cell of 1 to 4
ever leaves the module.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage.db import create_engine, session_factory
from bot.storage.models import AnonymousCount, Contact, Conversation, ConversationEvent
from bot.storage.stats import (
    HIDDEN,
    SUPPRESSED,
    StatsQuery,
    StatsStore,
    exploitation_from_signs,
    is_protected,
    percentile,
    protect_column,
)

JULY_1 = date(2025, 7, 1)
WEEK = StatsQuery(JULY_1, date(2025, 7, 7))
UNITS = ("Hà Nội", "Lào Cai", "Huế")


def at(day: int, hour: int = 10, minute: int = 0, second: int = 0, month: int = 7) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=UTC)


# -- the query ----------------------------------------------------------------------------


def test_the_query_defaults_to_the_last_30_days_of_all_channels() -> None:
    query = StatsQuery.from_args({}, today=date(2025, 7, 31))
    assert query == StatsQuery(JULY_1 + timedelta(days=1), date(2025, 7, 31), None)
    assert len(query.days) == 30


def test_the_query_reads_sanic_style_lists_and_blank_values() -> None:
    query = StatsQuery.from_args(
        {"from": ["2025-07-01"], "to": ["2025-07-07", "2026-01-01"], "channel": ["zalo"]}
    )
    assert query == StatsQuery(JULY_1, date(2025, 7, 7), "zalo")
    assert StatsQuery.from_args({"channel": " ", "to": "2025-07-07"}).channel is None
    assert StatsQuery.from_args({"from": "2025-07-01", "to": "2026-07-01"}).end == date(2026, 7, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"from": "2025-13-01"}, "tham số from"),
        ({"to": "01/07/2025"}, "tham số to"),
        ({"from": "20250701"}, "NĂM-THÁNG-NGÀY"),
        ({"from": "2025-07-08", "to": "2025-07-07"}, "phải trước hoặc bằng"),
        ({"from": "2025-07-01", "to": "2026-07-02"}, "366 ngày"),
        ({"channel": "sms"}, "Kênh không hợp lệ"),
    ],
)
def test_bad_query_arguments_say_what_is_wrong(args: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StatsQuery.from_args(args, today=date(2025, 7, 31))


def test_the_period_runs_over_whole_utc_days() -> None:
    assert WEEK.start_at == at(1, 0)
    assert WEEK.end_before == at(8, 0)


# -- small-number protection --------------------------------------------------------------


def test_counts_of_one_to_four_are_suppressed_and_zero_stays_zero() -> None:
    cells, total = protect_column({"a": 0, "b": 1, "c": 4, "d": 5, "e": 6}, None)
    assert cells == {"a": 0, "b": SUPPRESSED, "c": SUPPRESSED, "d": 5, "e": 6}
    assert total == 0  # no total shown: nothing to subtract from, no secondary cell


def test_one_suppressed_cell_hides_the_next_smallest_that_protects_it() -> None:
    cells, total = protect_column({"a": 3, "b": 6, "c": 20}, 29)
    assert (cells, total) == ({"a": SUPPRESSED, "b": HIDDEN, "c": 20}, 29)
    # a 6 next to a 1 would give the 1 away (7 - at least 5 = at most 2): hide the 20
    cells, total = protect_column({"a": 1, "b": 6, "c": 20}, 27)
    assert (cells, total) == ({"a": SUPPRESSED, "b": 6, "c": HIDDEN}, 27)


def test_suppressed_cells_that_protect_each_other_need_no_more() -> None:
    cells, _ = protect_column({"a": 2, "b": 3, "c": 40}, 45)
    assert cells == {"a": SUPPRESSED, "b": SUPPRESSED, "c": 40}
    cells, _ = protect_column({"a": 1, "b": 1, "c": 40}, 42)  # sum 2: both must be 1
    assert cells == {"a": SUPPRESSED, "b": SUPPRESSED, "c": HIDDEN}


def test_the_total_is_hidden_when_no_cell_can_protect() -> None:
    assert protect_column({"a": 4, "b": 4}, 8) == ({"a": SUPPRESSED, "b": SUPPRESSED}, HIDDEN)
    assert protect_column({"a": 2, "b": 0}, 2) == ({"a": SUPPRESSED, "b": 0}, SUPPRESSED)


def _consistent_values(cells: list[Any], total: Any, limit: int) -> Iterator[tuple[int, ...]]:
    """Every set of true values a reader could hold for the cells shown."""
    choices = []
    for cell in cells:
        if cell == SUPPRESSED:
            choices.append(range(1, 5))
        elif cell == HIDDEN:
            choices.append(range(5, limit + 1))
        else:
            choices.append(range(cell, cell + 1))
    for values in itertools.product(*choices):
        if isinstance(total, int) and sum(values) != total:
            continue
        yield values


def test_no_suppressed_cell_can_be_narrowed_by_subtraction() -> None:
    """Every table of three cells up to 12 (and its total): what a reader can work out
    from the cells shown and the total leaves each "<5" cell free from 1 to 4."""
    for values in itertools.product(range(13), repeat=3):
        keys = ["a", "b", "c"]
        cells, total = protect_column(dict(zip(keys, values, strict=True)), sum(values))
        shown = [cells[k] for k in keys]
        assert all(c in (SUPPRESSED, HIDDEN) or c == v for c, v in zip(shown, values, strict=True))
        assert all(c != SUPPRESSED or 1 <= v <= 4 for c, v in zip(shown, values, strict=True))
        if total == HIDDEN:
            continue
        possible = list(_consistent_values(shown, total, sum(values)))
        for index, cell in enumerate(shown):
            if cell == SUPPRESSED:
                assert {p[index] for p in possible} == {1, 2, 3, 4}, (values, shown)


def test_is_protected_matches_the_reader() -> None:
    assert not is_protected([3], [])
    assert is_protected([2, 3], [])
    assert not is_protected([1], [7])
    assert is_protected([1], [8])


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1, 2, 3, 4, 5, 10], 0.9) == pytest.approx(7.5)
    assert percentile([4, 1, 3, 2, 5], 0.5) == 3
    assert percentile([7], 0.9) == 7


def test_forms_of_exploitation_come_from_the_signs_that_name_one() -> None:
    assert exploitation_from_signs(["ransom", "forced_scam"]) == {"scam_compound"}
    assert exploitation_from_signs(["wages_withheld", "sexual_exploitation"]) == {
        "labour",
        "sexual",
    }
    assert exploitation_from_signs(["organ_removal", "surrogacy", "forced_marriage"]) == {
        "organ",
        "surrogacy",
        "marriage",
    }
    assert exploitation_from_signs(["deception", "documents_withheld", "minor"]) == set()


# -- a seeded world ---------------------------------------------------------------------------


@dataclass
class Person:
    """One conversation and what happened in it: (type, data, when)."""

    name: str
    channel: str
    created: datetime
    events: list[tuple[str, dict[str, Any], datetime]] = field(default_factory=list)
    state: str = "bot"
    queued_at: datetime | None = None
    accepted_at: datetime | None = None

    def said(self, intent: str, when: datetime, cues: tuple[str, ...] = ()) -> Person:
        data = {"intent": intent, "confidence": 0.9, "entities": [], "cues": sorted(cues)}
        self.events.append(("user_intent", data, when))
        return self

    def event(self, kind: str, when: datetime, **data: Any) -> Person:
        self.events.append((kind, data, when))
        return self


def world() -> list[Person]:
    """Fifteen people in the first week of July 2025 (T1-T12 on Telegram, W1-W3 on the
    web chat) and two on Zalo just outside it."""
    t = {n: Person(f"T{n}", "telegram", at(1 if n <= 6 else 2)) for n in range(1, 13)}
    t[12].created = at(25, month=6)  # an old conversation, active again in the period
    w = {n: Person(f"W{n}", "webchat", at(3)) for n in range(1, 4)}
    for n in range(1, 13):
        t[n].said("greet", at(1 if n <= 6 else 2, 9))
    t[1].said("greet", at(2, 11))  # active on two days
    for n in range(1, 4):
        w[n].said("greet", at(3, 9))
    # FAQ topics, services, fallback
    for n in range(1, 7):
        t[n].said("faq/visa", at(1 if n <= 6 else 2, 12))
    t[1].said("faq/visa", at(1, 13))
    t[7].said("faq/wages", at(2, 12))
    t[8].said("faq/wages", at(2, 12))
    for n in range(7, 12):
        t[n].said("find_service", at(2, 13))
    for n in range(1, 6):
        t[n].said("nlu_fallback", at(1, 14))
    # screening: all of T1-T12 start, T1-T10 finish; T1 changed its answer
    for n in range(1, 13):
        t[n].event("screening_started", at(2, 15))
    t[1].event("screening_result", at(2, 15, 5), level="some_signs", sex="female")
    levels = {**dict.fromkeys(range(1, 6), "low"), **dict.fromkeys(range(6, 10), "many_signs")}
    levels[10] = "danger_now"
    for n, level in levels.items():
        data: dict[str, Any] = {"level": level, "indicators": [], "age_group": None, "sex": None}
        if n <= 6:
            data["age_group"] = "18_plus"
            data["exploitation"] = ["labour", "sexual"] if n == 6 else ["labour"]
        if n <= 5:
            data["sex"] = "female" if n > 1 else None  # T1 said it before
        if n == 6:
            data["sex"] = "male"
        if n == 7:
            data.update(age_group="under_18", sex="female", exploitation=[])
        if n == 8:
            data["indicators"] = ["forced_scam", "deception"]
        t[n].event("screening_result", at(2, 16), **data)
    t[7].said("help", at(2, 17), cues=("forced_scam",))  # stated [] wins over cues
    t[9].said("help", at(2, 17), cues=("ransom",))
    t[10].said("help", at(2, 17), cues=("ransom", "threats"))
    t[11].said("help", at(2, 17), cues=("forced_marriage",))
    t[12].said("help", at(2, 17), cues=("organ_removal",))
    w[1].said("help", at(3, 17), cues=("wages_withheld",))
    w[2].said("help", at(3, 17), cues=("deception",))
    # provinces: T1 first named Huế, then Hà Nội
    t[1].event("province", at(1, 11), unit="Huế")
    for n in range(1, 6):
        t[n].event("province", at(2, 18), unit="Hà Nội")
    t[6].event("province", at(2, 18), unit="Lào Cai")
    t[7].event("province", at(2, 18), unit="Atlantis")
    # handoffs: T1-T8 ask; T1-T6 accepted after 1, 2, 3, 4, 5 and 10 minutes
    for n, minutes in zip(range(1, 7), (1, 2, 3, 4, 5, 10), strict=True):
        asked = at(4, 10)
        t[n].event("handoff_requested", asked, consent="full", priority="normal")
        t[n].event("handoff_accepted", asked + timedelta(minutes=minutes))
        t[n].state, t[n].queued_at = "counsellor", asked
        t[n].accepted_at = asked + timedelta(minutes=minutes)
    t[7].event("handoff_requested", at(4, 10), consent="full", priority="normal")
    t[7].event("handoff_cancel", at(4, 11))
    t[8].event("handoff_requested", at(4, 10), consent="from_now", priority="danger")
    t[8].state, t[8].queued_at = "waiting", at(4, 10)
    # referrals: to 111 by the desk (T1, T2) or as a closing outcome (T3); police: T4
    t[1].event("referral", at(4, 12), to="111")
    t[2].event("referral", at(4, 12), to="111")
    t[3].event("handoff_closed", at(4, 12), outcome="referred_111")
    t[4].event("referral", at(4, 12), to="police")
    # outside the period, on Zalo: the second before and the first second after
    z1 = Person("Z1", "zalo", at(30, 23, month=6)).said("faq/visa", at(30, 23, 59, 59, month=6))
    z2 = Person("Z2", "zalo", at(8, 0)).said("faq/visa", at(8, 0))
    return [*t.values(), *w.values(), z1, z2]


DELETIONS = [
    (date(2025, 7, 2), "telegram", "erasures", 2),
    (date(2025, 7, 2), "telegram", "messages_erased", 17),
    (date(2025, 7, 5), "webchat", "erasures", 4),
    (date(2025, 7, 5), "webchat", "messages_erased", 30),
    (date(2025, 6, 30), "telegram", "erasures", 9),
    (date(2025, 7, 8), "telegram", "erasures", 9),
]


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    people: list[Person],
    counts: list[tuple[date, str, str, int]] | None = None,
) -> None:
    async with sessions() as session:
        for person in people:
            contact = Contact(
                pseudonym=f"pseudonym-{person.name}",
                channel=person.channel,
                platform_user_id_enc="not-a-real-token",
            )
            session.add(contact)
            await session.flush()
            conversation = Conversation(
                contact_id=contact.id,
                state=person.state,
                created_at=person.created,
                queued_at=person.queued_at,
                accepted_at=person.accepted_at,
            )
            session.add(conversation)
            await session.flush()
            for kind, data, when in person.events:
                session.add(
                    ConversationEvent(
                        conversation_id=conversation.id, type=kind, data=data, created_at=when
                    )
                )
        for day, channel, metric, count in counts or []:
            session.add(AnonymousCount(day=day, channel=channel, metric=metric, count=count))
        await session.commit()


async def _seed_world(url: str) -> None:
    engine = create_engine(url)
    try:
        await seed(session_factory(engine), world(), DELETIONS)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def world_url(module_database_url: str) -> str:
    asyncio.run(_seed_world(module_database_url))
    return module_database_url


@pytest.fixture
async def stats(world_url: str) -> AsyncIterator[StatsStore]:
    engine = create_engine(world_url)
    yield StatsStore(
        session_factory(engine), units=UNITS, topic_titles=lambda: {"visa": "Thị thực"}
    )
    await engine.dispose()


def cells(report: dict[str, Any], table: str, column: str = "people") -> dict[str, Any]:
    return {row["key"]: row["values"][column] for row in report["tables"][table]["rows"]}


def total(report: dict[str, Any], table: str, column: str = "people") -> Any:
    return report["tables"][table]["total"]["values"][column]


# -- the report ---------------------------------------------------------------------------


async def test_people_per_day_count_active_and_new_conversations(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    active = cells(report, "per_day", "active")
    assert list(active) == [f"2025-07-0{d}" for d in range(1, 8)]
    # 6, 12 (T1-T12), 3 (W1-W3), 8 (handoffs): the 3 is protected by hiding the 6
    assert active == {
        "2025-07-01": HIDDEN,
        "2025-07-02": 12,
        "2025-07-03": SUPPRESSED,
        "2025-07-04": 8,
        **{f"2025-07-0{d}": 0 for d in range(5, 8)},
    }
    assert total(report, "per_day", "active") == 15  # each person once
    new = cells(report, "per_day", "new")  # T12 started in June; a 5 would not protect the 3
    assert (new["2025-07-01"], new["2025-07-02"], new["2025-07-03"]) == (HIDDEN, 5, SUPPRESSED)
    assert total(report, "per_day", "new") == 14
    assert report["period"] == {
        "from": "2025-07-01",
        "to": "2025-07-07",
        "days": 7,
        "channel": None,
    }


async def test_people_per_channel_with_secondary_suppression(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    assert cells(report, "channels") == {"telegram": HIDDEN, "webchat": SUPPRESSED}
    assert total(report, "channels") == 15
    labels = [row["label"] for row in report["tables"]["channels"]["rows"]]
    assert labels == ["Trò chuyện trên web", "Telegram"]  # in the order of KNOWN_CHANNELS


async def test_faq_topics_count_people_not_questions(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    table = report["tables"]["faq_topics"]
    assert [(r["key"], r["label"], r["values"]["people"]) for r in table["rows"]] == [
        ("visa", "Thị thực", 6),  # T1 asked twice; Z1 and Z2 are outside the period
        ("wages", "wages", SUPPRESSED),
    ]
    assert table["total"] is None


async def test_the_fallback_rate_is_over_the_messages_people_wrote(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    messages = sum(
        1
        for p in world()
        for kind, _, when in p.events
        if kind == "user_intent" and p.channel != "zalo"
    )
    rate = report["measures"]["fallback_rate"]
    assert rate["value"] == round(100 * 5 / messages, 1)
    assert (rate["unit"], rate["people"], rate["withheld"], rate["reason"]) == ("%", 15, None, None)


async def test_screening_started_completed_and_levels(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    assert cells(report, "screening") == {
        "not_completed": SUPPRESSED,  # T11, T12
        "low": 5,  # T1 (its later result counts), T2-T5
        "some_signs": 0,
        "many_signs": SUPPRESSED,
        "danger_now": SUPPRESSED,
        "unknown": 0,
    }
    assert total(report, "screening") == 12
    # 10 completed would give away the not-completed 2: it follows from no shown cell
    assert report["tables"]["screening"]["completed"]["value"] == HIDDEN


async def test_handoffs_requested_accepted_unanswered_and_waits(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    # 6 accepted, 1 cancelled, 1 still waiting: two cells of 1 that no other cell can
    # cover, so the accepted count and the total are hidden as well
    assert cells(report, "handoffs") == {
        "accepted": HIDDEN,
        "cancelled": SUPPRESSED,
        "unanswered": SUPPRESSED,
    }
    assert total(report, "handoffs") == HIDDEN
    median = report["measures"]["handoff_wait_median"]
    p90 = report["measures"]["handoff_wait_p90"]
    assert (median["value"], median["unit"], median["people"]) == (3.5, "phút", HIDDEN)
    assert p90["value"] == 7.5


async def test_exploitation_is_stated_or_read_from_indicators_and_cues(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    assert cells(report, "exploitation") == {
        "labour": HIDDEN,  # T1-T6 stated, W1 from a cue: 7
        "sexual": SUPPRESSED,  # T6
        "marriage": SUPPRESSED,  # T11's cue
        "scam_compound": SUPPRESSED,  # T8's indicator, T9 and T10's cues; not T7 (stated none)
        "organ": SUPPRESSED,  # T12's cue
        "surrogacy": 0,
    }
    assert total(report, "exploitation") == 12


async def test_age_group_and_sex_only_as_people_said_them(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    assert cells(report, "age_group") == {"under_18": SUPPRESSED, "18_plus": 6, "unknown": HIDDEN}
    assert cells(report, "sex") == {"female": 6, "male": SUPPRESSED, "other": 0, "unknown": HIDDEN}
    assert total(report, "age_group") == total(report, "sex") == 15
    labels = {row["key"]: row["label"] for row in report["tables"]["sex"]["rows"]}
    assert labels == {"female": "Nữ", "male": "Nam", "other": "Khác", "unknown": "Không rõ"}


async def test_province_in_force_as_last_named(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    assert cells(report, "province") == {
        "Hà Nội": 5,
        "Lào Cai": SUPPRESSED,
        "Huế": 0,  # T1 named it first, then Hà Nội
        "unknown": HIDDEN,  # 9, with T7's "Atlantis"
    }


async def test_support_and_referrals_given(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    assert cells(report, "support") == {
        "faq_answer": 8,
        "services_listed": 5,
        "counsellor": HIDDEN,  # 6: protects the 111 and police cells
        "referred_111": SUPPRESSED,  # T1, T2 by referral, T3 by outcome
        "referred_police": SUPPRESSED,
    }
    assert total(report, "support") == 11


async def test_deletions_come_from_the_anonymous_counts(stats: StatsStore) -> None:
    report = await stats.get_report(WEEK)
    assert cells(report, "deletions", "count") == {"erasures": 6, "messages_erased": 47}
    telegram = await stats.get_report(StatsQuery(JULY_1, date(2025, 7, 7), "telegram"))
    assert cells(telegram, "deletions", "count") == {
        "erasures": SUPPRESSED,
        "messages_erased": HIDDEN,  # the messages of fewer than 5 people
    }


async def test_the_channel_filter_keeps_one_channel(stats: StatsStore) -> None:
    report = await stats.get_report(StatsQuery(JULY_1, date(2025, 7, 7), "webchat"))
    assert cells(report, "channels") == {"webchat": SUPPRESSED}
    assert total(report, "per_day", "active") == SUPPRESSED
    assert cells(report, "faq_topics") == {}
    assert cells(report, "exploitation")["labour"] == SUPPRESSED  # W1 alone
    assert report["measures"]["fallback_rate"]["value"] is None
    assert report["measures"]["fallback_rate"]["withheld"] == "fewer_than_5"
    assert report["measures"]["handoff_wait_median"]["withheld"] == "no_data"
    zalo = await stats.get_report(StatsQuery(date(2025, 6, 30), date(2025, 7, 8), "zalo"))
    assert cells(zalo, "faq_topics") == {"visa": SUPPRESSED}  # both edges are inside now


async def test_the_date_range_includes_its_whole_last_day(stats: StatsStore) -> None:
    day_two = await stats.get_report(StatsQuery(date(2025, 7, 2), date(2025, 7, 2)))
    assert total(day_two, "per_day", "active") == 12
    assert cells(day_two, "per_day", "new") == {"2025-07-02": 5}
    assert total(day_two, "per_day", "new") == 5
    empty = await stats.get_report(StatsQuery(date(2024, 1, 1), date(2024, 1, 31)))
    assert total(empty, "per_day", "active") == 0
    assert all(v == 0 for v in cells(empty, "province").values())
    assert empty["measures"]["handoff_wait_p90"]["value"] is None


def _table_numbers(report: dict[str, Any]) -> Iterator[Any]:
    for table in report["tables"].values():
        for row in table["rows"]:
            yield from row["values"].values()
        if table["total"]:
            yield from table["total"]["values"].values()
        if "completed" in table:
            yield table["completed"]["value"]
    for item in report["measures"].values():
        yield item["people"]


async def test_no_cell_of_one_to_four_leaves_the_module(stats: StatsStore) -> None:
    queries = [WEEK, StatsQuery(JULY_1, date(2025, 7, 7), "webchat"), StatsQuery(JULY_1, JULY_1)]
    for query in queries:
        report = await stats.get_report(query)
        numbers = list(_table_numbers(report))
        assert numbers
        assert all(isinstance(n, str) or n == 0 or n >= 5 for n in numbers)
        assert all(n in (SUPPRESSED, HIDDEN) for n in numbers if isinstance(n, str))


async def test_few_accepted_handoffs_withhold_the_waits(world_url: str) -> None:
    engine = create_engine(world_url)
    try:
        sessions = session_factory(engine)
        few = [
            Person(f"F{n}", "facebook", at(1, month=8), state="counsellor").event(
                "handoff_requested", at(1, month=8), consent="full", priority="normal"
            )
            for n in range(4)
        ]
        for person in few:
            person.queued_at, person.accepted_at = at(1, month=8), at(1, 10, 30, month=8)
        await seed(sessions, few)
        report = await StatsStore(sessions, units=UNITS).get_report(
            StatsQuery(date(2025, 8, 1), date(2025, 8, 1), "facebook")
        )
    finally:
        await engine.dispose()
    median = report["measures"]["handoff_wait_median"]
    assert (median["value"], median["people"], median["withheld"]) == (
        None,
        SUPPRESSED,
        "fewer_than_5",
    )
    assert "5" in median["reason"]


async def test_provinces_default_to_the_34_units_in_force(world_url: str) -> None:
    engine = create_engine(world_url)
    try:
        report = await StatsStore(session_factory(engine)).get_report(WEEK)
    finally:
        await engine.dispose()
    rows = report["tables"]["province"]["rows"]
    assert len(rows) == 35  # the 34 units and "không rõ"
    assert rows[0]["label"] == "Hà Nội" and rows[-1]["label"] == "Không rõ"
    assert cells(report, "province")["Hà Nội"] == 5
    assert cells(report, "faq_topics")["visa"] == 6  # no titles given: the topic key
