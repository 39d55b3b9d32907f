"""The aggregate numbers behind the admin dashboard ("numbers that show the work").

This module owns the statistics queries and the small-number protection applied to
them: ``StatsStore.get_report`` returns a JSON-ready report in which nothing describes
fewer than five people, so nothing unprotected ever leaves this module. It reads only
non-personal columns (dates, states, channels, event types and their JSON data) and
never an encrypted text column.

The period and the people
    A report covers whole UTC days from ``start`` to ``end`` (both included) and one
    channel or all. An event belongs to the period when it was recorded in it. "People"
    are distinct conversations (a conversation is one person's): the people of the
    period are the conversations with at least one event in it. Everything a person
    erased is gone from the events, so they appear only in the deletion counts.

Tables (each a list of rows; each cell is a number of people unless said otherwise)
    ``per_day``: per day, ``active`` = people with an event that day (a person active
        on several days counts on each; the total counts them once) and ``new`` =
        conversations started that day.
    ``channels``: the people of the period by channel (each person has one channel).
    ``faq_topics``: per FAQ topic (``user_intent`` events whose intent is
        ``faq/<key>``), the people who asked about it: the most asked first, then the
        topics under 5 by name (their order would tell their sizes); 15 rows at most. A
        person can ask about several topics, so this table has no total.
    ``screening``: the people who started a screening (``screening_started``) or got a
        result (``screening_result``) in the period, split into those with no result
        (``not_completed``) and, for the others, the level of their latest result
        (``low``, ``some_signs``, ``many_signs``, ``danger_now``; anything else is
        ``unknown``). ``completed`` (the sum of the levels) is given apart, only where it
        follows exactly from cells already shown.
    ``handoffs``: the people who asked for a counsellor (``handoff_requested``) in the
        period, by what became of the request (from the conversation's columns, at the
        time of the report): ``accepted`` (``accepted_at`` set), ``cancelled`` (back
        with the bot, never accepted), ``unanswered`` (still waiting, or closed without
        being accepted). The total is the people who asked.
    ``exploitation``: the people with at least one form of exploitation: the
        ``exploitation`` list of their screening results when one is given, else the
        forms read from the screening ``indicators`` and from the risk ``cues`` of their
        messages (see ``CUE_EXPLOITATION``). A person can show several forms.
    ``age_group``, ``sex``: the people of the period by what they chose to say in a
        screening (the latest value given); ``unknown`` ("không rõ") when they did not.
    ``province``: the people of the period by the province in force they named (the
        latest ``province`` event; ``unknown`` when none or not one of the 34 units).
    ``support``: the people given each kind of support: an FAQ answer (an ``faq/``
        intent), services listed (``find_service``), a counsellor conversation
        (``handoff_accepted``), referred to 111 or to the police (a ``referral`` event,
        or a handoff closed with the outcome ``referred_111``/``referred_police``). A
        person can get several; the total counts them once.
    ``deletions``: from ``anonymous_counts``: ``erasures`` (people who deleted their
        data) and ``messages_erased`` (their messages; a count of messages).

Measures (a value with the number of people it rests on, ``people``)
    ``fallback_rate``: % of the messages people wrote that the bot did not understand
        (intent ``nlu_fallback``), over the people who wrote.
    ``handoff_wait_median``, ``handoff_wait_p90``: minutes from joining the queue
        (``queued_at``) to being accepted (``accepted_at``) for the accepted requests of
        the ``handoffs`` table: the median and the 90th percentile (linear interpolation
        between the closest ranks), rounded to 0.1 minute.
    A measure resting on fewer than 5 people, or whose numerator describes 1 to 4
    people, has ``value`` null, ``withheld`` = ``"fewer_than_5"`` and a ``reason``; with
    no data at all, ``withheld`` = ``"no_data"``. The waits' ``people`` is the very cell
    of ``accepted`` in ``handoffs``, so it cannot give that cell away.

Small-number protection ("no cell may describe fewer than 5 people")
    Primary: a count of 1 to 4 people is the string ``"<5"`` (``SUPPRESSED``); 0 stays 0.
    A figure that is not a count of people but rests on 1 to 4 people (the messages of
    fewer than 5 erasures) is ``"ẩn"`` (``HIDDEN``).
    Secondary (chosen over rounding totals, because a total shown exactly in one table,
    the people of the period, reappears in every table of that population and would
    undo any rounding): in a table column with a total shown, the ``"<5"`` cells must
    not be recoverable by subtraction. The reader knows each ``"<5"`` is 1 to 4, every
    ``"ẩn"`` is at least 5 and the hidden cells add up to the total minus the cells
    shown; the hidden cells are chosen so that this leaves every ``"<5"`` cell anywhere
    from 1 to 4 (``is_protected``). With exactly one ``"<5"`` cell that means hiding
    one more cell (the smallest large enough, else the largest ones until it is
    enough); if even hiding every other cell is not enough, the total is hidden too.
    Hidden cells show ``"ẩn"``, not ``"<5"``, so that no number shown is untrue. Each
    column of a table (``per_day`` has two) is protected on its own. The protection is
    per table: a total hidden as a last resort may still be shown by another table of
    the same people, so combining tables can narrow a cell in rare, tiny cases.

Shape of the report
    ``{"period": {from, to, days, channel}, "suppression": {threshold, suppressed,
    hidden, explanation}, "tables": {name: {title, columns: [{key, label}], rows:
    [{key, label, values: {column: cell}}], total: {label, values} | null, note?,
    completed?}}, "measures": {name: {label, unit, value, people, withheld, reason}}}``
    where a cell is an int (0 or at least 5) or one of the strings ``"<5"``, ``"ẩn"``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Select, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Date

from bot.storage.models import AnonymousCount, Contact, Conversation, ConversationEvent

THRESHOLD = 5
SUPPRESSED = "<5"
HIDDEN = "ẩn"
Cell = int | str

MAX_DAYS = 366
DEFAULT_DAYS = 30
TOP_TOPICS = 15
UNKNOWN = "unknown"
UNKNOWN_LABEL = "Không rõ"
PEOPLE = "people"

CHANNEL_LABELS: dict[str, str] = {
    "webchat": "Trò chuyện trên web",
    "telegram": "Telegram",
    "facebook": "Facebook Messenger",
    "zalo": "Zalo",
    "rest": "REST API",
    "callback": "Callback API",
    "terminal": "Dòng lệnh",
}
KNOWN_CHANNELS = tuple(CHANNEL_LABELS)

LEVEL_LABELS = {
    "low": "Ít dấu hiệu",
    "some_signs": "Có một số dấu hiệu",
    "many_signs": "Nhiều dấu hiệu",
    "danger_now": "Đang gặp nguy hiểm",
}
EXPLOITATION_LABELS = {
    "labour": "Bóc lột sức lao động",
    "sexual": "Bóc lột tình dục",
    "marriage": "Cưỡng ép kết hôn",
    "scam_compound": "Ép làm lừa đảo trực tuyến",
    "organ": "Lấy bộ phận cơ thể",
    "surrogacy": "Mang thai hộ vì mục đích thương mại",
}
AGE_LABELS = {"under_18": "Dưới 18 tuổi", "18_plus": "Từ 18 tuổi trở lên"}
SEX_LABELS = {"female": "Nữ", "male": "Nam", "other": "Khác"}
SUPPORT_LABELS = {
    "faq_answer": "Trả lời câu hỏi thường gặp",
    "services_listed": "Giới thiệu dịch vụ hỗ trợ",
    "counsellor": "Trò chuyện với tư vấn viên",
    "referred_111": "Chuyển tổng đài 111",
    "referred_police": "Chuyển công an",
}
HANDOFF_LABELS = {
    "accepted": "Được tư vấn viên nhận",
    "cancelled": "Người dùng tự hủy yêu cầu",
    "unanswered": "Chưa được nhận",
}

# Risk cues (bot/nlu/cues.py CUE_NAMES) and screening indicators that name a form of
# exploitation. The others (deception, documents withheld, movement restricted,
# isolation, violence, threats, sold, minor) are signs of trafficking of any form.
CUE_EXPLOITATION = {
    "forced_scam": "scam_compound",
    "ransom": "scam_compound",
    "wages_withheld": "labour",
    "excessive_hours": "labour",
    "debt_bondage": "labour",
    "sexual_exploitation": "sexual",
    "forced_marriage": "marriage",
    "surrogacy": "surrogacy",
}
ORGAN_PREFIX = "organ"

FAQ_PREFIX = "faq/"
FALLBACK_INTENT = "nlu_fallback"
SERVICES_INTENT = "find_service"
REFERRAL_OUTCOMES = {"referred_111": "referred_111", "referred_police": "referred_police"}
REFERRAL_TARGETS = {"111": "referred_111", "police": "referred_police"}
DETAIL_EVENTS = (
    "screening_started",
    "screening_result",
    "handoff_accepted",
    "handoff_closed",
    "referral",
    "province",
)
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
AnySelect = TypeVar("AnySelect", bound="Select[*tuple[Any, ...]]")


# -- the query ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsQuery:
    """Whole UTC days ``start``..``end`` (both included) and one channel, or all."""

    start: date
    end: date
    channel: str | None = None

    @classmethod
    def from_args(
        cls,
        args: Mapping[str, Any],
        *,
        today: date | None = None,
        channels: Sequence[str] = KNOWN_CHANNELS,
    ) -> StatsQuery:
        """Parse ``from``, ``to`` (YYYY-MM-DD) and ``channel`` from query arguments
        (a value may be a list, as Sanic gives them: the first counts). Defaults: the
        30 days up to today, all channels. Raises ``ValueError`` with a message in
        Vietnamese that can be shown as it is."""
        end = _parse_day(_first(args.get("to")), "to") or today or datetime.now(UTC).date()
        start = _parse_day(_first(args.get("from")), "from") or end - timedelta(
            days=DEFAULT_DAYS - 1
        )
        channel = _first(args.get("channel")) or None
        if start > end:
            raise ValueError("Ngày bắt đầu (from) phải trước hoặc bằng ngày kết thúc (to).")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValueError(f"Khoảng thời gian dài nhất là {MAX_DAYS} ngày.")
        if channel is not None and channel not in channels:
            raise ValueError(f"Kênh không hợp lệ. Các kênh: {', '.join(channels)}.")
        return cls(start, end, channel)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)


def _first(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        if not DATE_PATTERN.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"Ngày không hợp lệ ở tham số {name}: cần dạng NĂM-THÁNG-NGÀY, ví dụ 2025-07-01."
        ) from None


# -- small-number protection ------------------------------------------------------------


def suppress(count: int) -> Cell:
    """A count of people as it may be shown: 1 to 4 becomes ``"<5"``."""
    return SUPPRESSED if 0 < count < THRESHOLD else count


def is_protected(primary: Sequence[int], hidden: Sequence[int]) -> bool:
    """Whether a reader who knows the hidden cells' sum (``primary``: the true values of
    the ``"<5"`` cells; ``hidden``: those of the ``"ẩn"`` cells, each at least 5) can
    still take every ``"<5"`` cell to be anything from 1 to 4."""
    k = len(primary)
    total = sum(primary) + sum(hidden)
    if hidden:  # an "ẩn" cell can be any size, so only the upper bound of a "<5" can bind:
        # the sum less the least every other hidden cell can be
        return total - (k - 1) - THRESHOLD * len(hidden) >= THRESHOLD - 1
    return k + (THRESHOLD - 2) <= total <= (THRESHOLD - 1) * k - (THRESHOLD - 2)


def protect_column(values: Mapping[str, int], total: int | None) -> tuple[dict[str, Cell], Cell]:
    """The cells of one table column, and its total (``None``: no total shown, which
    is returned as 0 and means nothing), with primary and secondary suppression."""
    cells: dict[str, Cell] = {key: suppress(value) for key, value in values.items()}
    total_cell: Cell = suppress(total) if total is not None else 0
    primary = [value for key, value in values.items() if cells[key] == SUPPRESSED]
    if total is None or total_cell == SUPPRESSED or not primary or is_protected(primary, []):
        return cells, total_cell
    hidden, enough = _secondary_cells(values, primary)
    cells.update(dict.fromkeys(hidden, HIDDEN))
    return cells, total_cell if enough else HIDDEN


def _secondary_cells(values: Mapping[str, int], primary: list[int]) -> tuple[list[str], bool]:
    """The cells to hide along with the ``"<5"`` ones: the smallest that is enough on its
    own, else the largest ones until they are enough; and whether they are."""
    candidates = sorted((value, key) for key, value in values.items() if value >= THRESHOLD)
    for value, key in candidates:
        if is_protected(primary, [value]):
            return [key], True
    keys: list[str] = []
    chosen: list[int] = []
    for value, key in reversed(candidates):
        keys.append(key)
        chosen.append(value)
        if is_protected(primary, chosen):
            return keys, True
    return keys, False


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    values: dict[str, int]


@dataclass(frozen=True)
class Column:
    key: str
    label: str


PEOPLE_COLUMN = Column(PEOPLE, "Số người")


def build_table(
    title: str,
    rows: Sequence[Row],
    *,
    columns: Sequence[Column] = (PEOPLE_COLUMN,),
    totals: Mapping[str, int] | None = None,
    total_label: str = "Tổng",
    note: str | None = None,
) -> dict[str, Any]:
    """A JSON-ready table with every column protected (see the module docstring)."""
    shown: dict[str, dict[str, Cell]] = {row.key: {} for row in rows}
    shown_totals: dict[str, Cell] = {}
    for column in columns:
        values = {row.key: row.values.get(column.key, 0) for row in rows}
        total = None if totals is None else totals.get(column.key, 0)
        cells, total_cell = protect_column(values, total)
        for key, cell in cells.items():
            shown[key][column.key] = cell
        shown_totals[column.key] = total_cell
    table: dict[str, Any] = {
        "title": title,
        "columns": [{"key": c.key, "label": c.label} for c in columns],
        "rows": [{"key": r.key, "label": r.label, "values": shown[r.key]} for r in rows],
        "total": None if totals is None else {"label": total_label, "values": shown_totals},
    }
    if note:
        table["note"] = note
    return table


def measure(
    label: str,
    unit: str,
    value: float | None,
    people: int,
    people_cell: Cell,
    *,
    numerator_people: int | None = None,
) -> dict[str, Any]:
    """A rate, median or percentile, withheld when it rests on fewer than 5 people
    (or its numerator describes 1 to 4 people)."""
    withheld, reason = None, None
    if people == 0 or value is None:
        withheld, reason = "no_data", "Không có dữ liệu."
    elif people < THRESHOLD or (numerator_people is not None and 0 < numerator_people < THRESHOLD):
        withheld, reason = "fewer_than_5", f"Dựa trên ít hơn {THRESHOLD} người ({SUPPRESSED})."
    return {
        "label": label,
        "unit": unit,
        "value": None if withheld else value,
        "people": people_cell,
        "withheld": withheld,
        "reason": reason,
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (as numpy's default)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# -- SQL helpers --------------------------------------------------------------------------


class utc_day(FunctionElement[date]):
    """The UTC calendar day of a timestamp column, on SQLite and PostgreSQL."""

    type = Date()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day)
def _utc_day_default(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"  # SQLite stores UTC text


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date(timezone('UTC', {compiler.process(element.clauses, **kw)}))"


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _minutes(start: datetime, end: datetime) -> float:
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return (end - start).total_seconds() / 60


@cache
def _default_units() -> tuple[str, ...]:
    from services_directory import read_units

    return tuple(unit.name for unit in read_units())


# -- what the database gives --------------------------------------------------------------


@dataclass
class PersonDetail:
    """What the period's detail events say about one conversation."""

    started_screening: bool = False
    level: str | None = None
    age_group: str | None = None
    sex: str | None = None
    stated_exploitation: set[str] | None = None
    indicators: set[str] = field(default_factory=set)
    province: str | None = None
    support: set[str] = field(default_factory=set)


@dataclass
class Facts:
    """Everything a report is computed from, as read from the database."""

    active_by_day: dict[date, int]
    new_by_day: dict[date, int]
    new_total: int
    people_by_channel: dict[str, int]
    intents: list[tuple[int, str | None, int]]
    cues: dict[int, set[str]]
    details: dict[int, PersonDetail]
    handoffs: list[tuple[int, str, datetime | None, datetime | None]]
    deletions: dict[str, int]

    @property
    def people(self) -> int:
        return sum(self.people_by_channel.values())


class StatsStore:
    """Aggregate statistics for staff (read only). ``units`` are the provinces in force
    (default: the services directory's 34); ``topic_titles`` gives FAQ topics their
    titles (default: the topic key)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        units: Sequence[str] | None = None,
        topic_titles: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.sessions = sessions
        self._units = tuple(units) if units is not None else None
        self._topic_titles = topic_titles

    @property
    def units(self) -> tuple[str, ...]:
        return self._units if self._units is not None else _default_units()

    async def get_report(self, query: StatsQuery) -> dict[str, Any]:
        """The protected report for ``query`` (see the module docstring)."""
        facts = await self._read_facts(query)
        titles = dict(self._topic_titles()) if self._topic_titles else {}
        return assemble_report(query, facts, self.units, titles)

    # -- reading --------------------------------------------------------------------------

    def _in_period(self, stmt: AnySelect, query: StatsQuery) -> AnySelect:
        stmt = (
            stmt.join(Conversation, Conversation.id == ConversationEvent.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(
                ConversationEvent.created_at >= query.start_at,
                ConversationEvent.created_at < query.end_before,
            )
        )
        if query.channel is not None:
            stmt = stmt.where(Contact.channel == query.channel)
        return stmt

    async def _read_facts(self, query: StatsQuery) -> Facts:
        async with self.sessions() as session:
            active_by_day = await self._active_by_day(session, query)
            new_by_day = await self._new_by_day(session, query)
            return Facts(
                active_by_day=active_by_day,
                new_by_day=new_by_day,
                new_total=sum(new_by_day.values()),
                people_by_channel=await self._people_by_channel(session, query),
                intents=await self._intents(session, query),
                cues=await self._cues(session, query),
                details=await self._details(session, query),
                handoffs=await self._handoffs(session, query),
                deletions=await self._deletions(session, query),
            )

    async def _active_by_day(self, session: AsyncSession, query: StatsQuery) -> dict[date, int]:
        day = utc_day(ConversationEvent.created_at)
        stmt = self._in_period(
            select(day, func.count(distinct(ConversationEvent.conversation_id))).select_from(
                ConversationEvent
            ),
            query,
        ).group_by(day)
        return {_as_date(d): int(n) for d, n in await session.execute(stmt)}

    async def _new_by_day(self, session: AsyncSession, query: StatsQuery) -> dict[date, int]:
        day = utc_day(Conversation.created_at)
        stmt = (
            select(day, func.count(Conversation.id))
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(
                Conversation.created_at >= query.start_at,
                Conversation.created_at < query.end_before,
            )
            .group_by(day)
        )
        if query.channel is not None:
            stmt = stmt.where(Contact.channel == query.channel)
        return {_as_date(d): int(n) for d, n in await session.execute(stmt)}

    async def _people_by_channel(self, session: AsyncSession, query: StatsQuery) -> dict[str, int]:
        stmt = self._in_period(
            select(
                Contact.channel, func.count(distinct(ConversationEvent.conversation_id))
            ).select_from(ConversationEvent),
            query,
        ).group_by(Contact.channel)
        return {str(channel): int(n) for channel, n in await session.execute(stmt)}

    async def _intents(
        self, session: AsyncSession, query: StatsQuery
    ) -> list[tuple[int, str | None, int]]:
        """(conversation, intent, messages) for every intent a person's messages had."""
        intent = ConversationEvent.data["intent"].as_string().label("intent")
        stmt = (
            self._in_period(
                select(ConversationEvent.conversation_id, intent, func.count()).select_from(
                    ConversationEvent
                ),
                query,
            )
            .where(ConversationEvent.type == "user_intent")
            .group_by(ConversationEvent.conversation_id, intent)
        )
        return [(int(c), i, int(n)) for c, i, n in await session.execute(stmt)]

    async def _cues(self, session: AsyncSession, query: StatsQuery) -> dict[int, set[str]]:
        """The risk cues of each conversation's messages (only messages that had any)."""
        cues = ConversationEvent.data["cues"].as_string()
        stmt = (
            self._in_period(
                select(ConversationEvent.conversation_id, cues)
                .select_from(ConversationEvent)
                .distinct(),
                query,
            )
            .where(ConversationEvent.type == "user_intent")
            .where(cues.is_not(None), cues != "[]")
        )
        found: dict[int, set[str]] = defaultdict(set)
        for conversation_id, raw in await session.execute(stmt):
            found[int(conversation_id)].update(_string_list(_loads(raw)))
        return dict(found)

    async def _details(self, session: AsyncSession, query: StatsQuery) -> dict[int, PersonDetail]:
        stmt = (
            self._in_period(
                select(
                    ConversationEvent.conversation_id,
                    ConversationEvent.type,
                    ConversationEvent.data,
                ).select_from(ConversationEvent),
                query,
            )
            .where(ConversationEvent.type.in_(DETAIL_EVENTS))
            .order_by(ConversationEvent.created_at, ConversationEvent.id)
        )
        details: dict[int, PersonDetail] = defaultdict(PersonDetail)
        for conversation_id, kind, data in await session.execute(stmt):
            _apply_detail(details[int(conversation_id)], str(kind), data or {})
        return dict(details)

    async def _handoffs(
        self, session: AsyncSession, query: StatsQuery
    ) -> list[tuple[int, str, datetime | None, datetime | None]]:
        """(conversation, state, queued_at, accepted_at) of each conversation that asked
        for a counsellor in the period."""
        asked = self._in_period(
            select(ConversationEvent.conversation_id).select_from(ConversationEvent), query
        ).where(ConversationEvent.type == "handoff_requested")
        stmt = select(
            Conversation.id, Conversation.state, Conversation.queued_at, Conversation.accepted_at
        ).where(Conversation.id.in_(asked))
        return [(int(i), str(s), q, a) for i, s, q, a in await session.execute(stmt)]

    async def _deletions(self, session: AsyncSession, query: StatsQuery) -> dict[str, int]:
        stmt = (
            select(AnonymousCount.metric, func.sum(AnonymousCount.count))
            .where(
                AnonymousCount.day >= query.start,
                AnonymousCount.day <= query.end,
                AnonymousCount.metric.in_(("erasures", "messages_erased")),
            )
            .group_by(AnonymousCount.metric)
        )
        if query.channel is not None:
            stmt = stmt.where(AnonymousCount.channel == query.channel)
        return {str(metric): int(n or 0) for metric, n in await session.execute(stmt)}


def _loads(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _optional_string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _apply_detail(detail: PersonDetail, kind: str, data: Mapping[str, Any]) -> None:
    """Fold one detail event (in time order) into what is known of its conversation."""
    if kind == "screening_started":
        detail.started_screening = True
    elif kind == "screening_result":
        _apply_screening_result(detail, data)
    elif kind == "province":
        detail.province = _optional_string(data.get("unit")) or detail.province
    elif kind == "handoff_accepted":
        detail.support.add("counsellor")
    elif kind == "handoff_closed":
        outcome = REFERRAL_OUTCOMES.get(str(data.get("outcome")))
        if outcome:
            detail.support.add(outcome)
    elif kind == "referral":
        target = REFERRAL_TARGETS.get(str(data.get("to")))
        if target:
            detail.support.add(target)


def _apply_screening_result(detail: PersonDetail, data: Mapping[str, Any]) -> None:
    detail.level = str(data.get("level")) if data.get("level") is not None else UNKNOWN
    detail.age_group = _optional_string(data.get("age_group")) or detail.age_group
    detail.sex = _optional_string(data.get("sex")) or detail.sex
    if "exploitation" in data:
        stated = set(_string_list(data.get("exploitation"))) & set(EXPLOITATION_LABELS)
        detail.stated_exploitation = (detail.stated_exploitation or set()) | stated
    detail.indicators.update(_string_list(data.get("indicators")))


def exploitation_from_signs(signs: Iterable[str]) -> set[str]:
    """The forms of exploitation that cues or screening indicators name."""
    forms = {CUE_EXPLOITATION[s] for s in signs if s in CUE_EXPLOITATION}
    if any(s.startswith(ORGAN_PREFIX) for s in signs):
        forms.add("organ")
    return forms


# -- the report ---------------------------------------------------------------------------


def assemble_report(
    query: StatsQuery, facts: Facts, units: Sequence[str], titles: Mapping[str, str]
) -> dict[str, Any]:
    """The protected, JSON-ready report from what the database gave."""
    handoffs, accepted_cell, waits = _handoff_table(facts)
    tables = {
        "per_day": _per_day_table(query, facts),
        "channels": _channel_table(facts),
        "faq_topics": _faq_table(facts, titles),
        "screening": _screening_table(facts),
        "handoffs": handoffs,
        "exploitation": _exploitation_table(facts),
        "age_group": _attribute_table("Theo nhóm tuổi", facts, AGE_LABELS, lambda d: d.age_group),
        "sex": _attribute_table("Theo giới tính", facts, SEX_LABELS, lambda d: d.sex),
        "province": _attribute_table(
            "Theo tỉnh, thành phố", facts, {u: u for u in units}, lambda d: d.province
        ),
        "support": _support_table(facts),
        "deletions": _deletion_table(facts),
    }
    return {
        "period": {
            "from": query.start.isoformat(),
            "to": query.end.isoformat(),
            "days": len(query.days),
            "channel": query.channel,
        },
        "suppression": {
            "threshold": THRESHOLD,
            "suppressed": SUPPRESSED,
            "hidden": HIDDEN,
            "explanation": (
                f"Số từ 1 đến 4 người hiện là “{SUPPRESSED}”. Ô “{HIDDEN}” được che thêm "
                f"để không thể suy ra ô “{SUPPRESSED}” bằng phép trừ từ tổng."
            ),
        },
        "tables": tables,
        "measures": {
            "fallback_rate": _fallback_rate(facts),
            **_wait_measures(waits, accepted_cell),
        },
    }


def _per_day_table(query: StatsQuery, facts: Facts) -> dict[str, Any]:
    rows = [
        Row(
            day.isoformat(),
            day.strftime("%d/%m/%Y"),
            {"active": facts.active_by_day.get(day, 0), "new": facts.new_by_day.get(day, 0)},
        )
        for day in query.days
    ]
    return build_table(
        "Số người nhắn tin mỗi ngày",
        rows,
        columns=(Column("active", "Người nhắn tin"), Column("new", "Cuộc trò chuyện mới")),
        totals={"active": facts.people, "new": facts.new_total},
        total_label="Cả kỳ (mỗi người tính một lần)",
    )


def _channel_table(facts: Facts) -> dict[str, Any]:
    channels = [c for c in KNOWN_CHANNELS if c in facts.people_by_channel]
    channels += sorted(set(facts.people_by_channel) - set(KNOWN_CHANNELS))
    rows = [
        Row(c, CHANNEL_LABELS.get(c, c), {PEOPLE: facts.people_by_channel[c]}) for c in channels
    ]
    return build_table("Theo kênh", rows, totals={PEOPLE: facts.people})


def _faq_table(facts: Facts, titles: Mapping[str, str]) -> dict[str, Any]:
    askers: dict[str, set[int]] = defaultdict(set)
    for conversation_id, intent, _ in facts.intents:
        if intent and intent.startswith(FAQ_PREFIX):
            askers[intent.removeprefix(FAQ_PREFIX)].add(conversation_id)
    counts = {topic: len(people) for topic, people in askers.items()}
    shown = sorted((t for t in counts if counts[t] >= THRESHOLD), key=lambda t: (-counts[t], t))
    small = sorted(t for t in counts if counts[t] < THRESHOLD)  # not ordered by size
    topics = (shown + small)[:TOP_TOPICS]
    rows = [Row(t, titles.get(t, t), {PEOPLE: counts[t]}) for t in topics]
    return build_table(
        "Chủ đề được hỏi nhiều nhất",
        rows,
        note="Một người có thể hỏi nhiều chủ đề.",
    )


def _screening_table(facts: Facts) -> dict[str, Any]:
    screened = {
        c: d for c, d in facts.details.items() if d.started_screening or d.level is not None
    }
    counts: dict[str, int] = dict.fromkeys(["not_completed", *LEVEL_LABELS, UNKNOWN], 0)
    for detail in screened.values():
        if detail.level is None:
            counts["not_completed"] += 1
        else:
            counts[detail.level if detail.level in LEVEL_LABELS else UNKNOWN] += 1
    labels = {
        "not_completed": "Chưa hoàn thành",
        **{k: f"Kết quả: {v.lower()}" for k, v in LEVEL_LABELS.items()},
        UNKNOWN: "Kết quả: không rõ mức",
    }
    rows = [Row(key, labels[key], {PEOPLE: n}) for key, n in counts.items()]
    table = build_table(
        "Sàng lọc dấu hiệu mua bán người",
        rows,
        totals={PEOPLE: len(screened)},
        total_label="Bắt đầu sàng lọc",
    )
    table["completed"] = {
        "label": "Hoàn thành sàng lọc",
        "value": _completed_cell(table, sum(counts.values()) - counts["not_completed"]),
    }
    return table


def _completed_cell(table: Mapping[str, Any], completed: int) -> Cell:
    """Completed screenings, shown only where they follow exactly from cells shown
    (the total minus ``not_completed``, or the sum of the result rows)."""
    cells = {row["key"]: row["values"][PEOPLE] for row in table["rows"]}
    total = table["total"]["values"][PEOPLE]
    results = [cell for key, cell in cells.items() if key != "not_completed"]
    by_subtraction = isinstance(total, int) and isinstance(cells["not_completed"], int)
    by_sum = all(isinstance(cell, int) for cell in results)
    if by_subtraction or by_sum:
        return suppress(completed)
    return HIDDEN if completed >= THRESHOLD else SUPPRESSED if completed else 0


def _handoff_table(facts: Facts) -> tuple[dict[str, Any], Cell, list[float]]:
    counts = dict.fromkeys(HANDOFF_LABELS, 0)
    waits: list[float] = []
    for _, state, queued_at, accepted_at in facts.handoffs:
        if accepted_at is not None:
            counts["accepted"] += 1
            if queued_at is not None and accepted_at >= queued_at:
                waits.append(_minutes(queued_at, accepted_at))
        elif state == "bot":
            counts["cancelled"] += 1
        else:
            counts["unanswered"] += 1
    rows = [Row(key, label, {PEOPLE: counts[key]}) for key, label in HANDOFF_LABELS.items()]
    table = build_table(
        "Yêu cầu gặp tư vấn viên",
        rows,
        totals={PEOPLE: len(facts.handoffs)},
        total_label="Số người yêu cầu",
    )
    accepted_cell: Cell = table["rows"][0]["values"][PEOPLE]
    return table, accepted_cell, waits


def _exploitation_table(facts: Facts) -> dict[str, Any]:
    forms_of: dict[int, set[str]] = {}
    for conversation_id in set(facts.details) | set(facts.cues):
        detail = facts.details.get(conversation_id, PersonDetail())
        if detail.stated_exploitation is not None:
            forms = detail.stated_exploitation
        else:
            signs = detail.indicators | facts.cues.get(conversation_id, set())
            forms = exploitation_from_signs(signs)
        if forms:
            forms_of[conversation_id] = forms
    rows = [
        Row(key, label, {PEOPLE: sum(key in f for f in forms_of.values())})
        for key, label in EXPLOITATION_LABELS.items()
    ]
    return build_table(
        "Theo hình thức bóc lột",
        rows,
        totals={PEOPLE: len(forms_of)},
        total_label="Số người có ít nhất một hình thức",
        note="Một người có thể có nhiều hình thức.",
    )


def _attribute_table(
    title: str,
    facts: Facts,
    labels: Mapping[str, str],
    attribute: Callable[[PersonDetail], str | None],
) -> dict[str, Any]:
    """The people of the period by one attribute; ``unknown`` when not said."""
    counts = dict.fromkeys([*labels, UNKNOWN], 0)
    for detail in facts.details.values():
        value = attribute(detail)
        if value in labels:
            counts[str(value)] += 1
    counts[UNKNOWN] = facts.people - sum(counts.values())
    rows = [Row(key, labels.get(key, UNKNOWN_LABEL), {PEOPLE: n}) for key, n in counts.items()]
    return build_table(title, rows, totals={PEOPLE: facts.people})


def _support_table(facts: Facts) -> dict[str, Any]:
    given: dict[int, set[str]] = defaultdict(set)
    for conversation_id, intent, _ in facts.intents:
        if intent and intent.startswith(FAQ_PREFIX):
            given[conversation_id].add("faq_answer")
        elif intent == SERVICES_INTENT:
            given[conversation_id].add("services_listed")
    for conversation_id, detail in facts.details.items():
        if detail.support:
            given[conversation_id] |= detail.support
    rows = [
        Row(key, label, {PEOPLE: sum(key in kinds for kinds in given.values())})
        for key, label in SUPPORT_LABELS.items()
    ]
    return build_table(
        "Hỗ trợ và chuyển tuyến",
        rows,
        totals={PEOPLE: len(given)},
        total_label="Số người được hỗ trợ",
        note="Một người có thể nhận nhiều hình thức hỗ trợ.",
    )


def _deletion_table(facts: Facts) -> dict[str, Any]:
    erasures = facts.deletions.get("erasures", 0)
    messages = facts.deletions.get("messages_erased", 0)
    messages_cell: Cell = HIDDEN if 0 < erasures < THRESHOLD and messages else messages
    return {
        "title": "Xóa dữ liệu theo yêu cầu",
        "columns": [{"key": "count", "label": "Số lượng"}],
        "rows": [
            {
                "key": "erasures",
                "label": "Số người xóa dữ liệu",
                "values": {"count": suppress(erasures)},
            },
            {
                "key": "messages_erased",
                "label": "Số tin nhắn đã xóa",
                "values": {"count": messages_cell},
            },
        ],
        "total": None,
    }


def _fallback_rate(facts: Facts) -> dict[str, Any]:
    writers = {c for c, _, _ in facts.intents}
    missed = {c for c, intent, _ in facts.intents if intent == FALLBACK_INTENT}
    messages = sum(n for _, _, n in facts.intents)
    fallbacks = sum(n for _, intent, n in facts.intents if intent == FALLBACK_INTENT)
    rate = round(100 * fallbacks / messages, 1) if messages else None
    return measure(
        "Tỷ lệ tin nhắn bot không hiểu",
        "%",
        rate,
        len(writers),
        suppress(len(writers)),
        numerator_people=len(missed),
    )


def _wait_measures(waits: list[float], accepted_cell: Cell) -> dict[str, dict[str, Any]]:
    people = len(waits)
    median = round(statistics.median(waits), 1) if waits else None
    p90 = round(percentile(waits, 0.9), 1) if waits else None
    return {
        "handoff_wait_median": measure(
            "Thời gian chờ tư vấn viên (trung vị)", "phút", median, people, accepted_cell
        ),
        "handoff_wait_p90": measure(
            "Thời gian chờ tư vấn viên (90% được nhận trong)", "phút", p90, people, accepted_cell
        ),
    }
