"""``/api/v1/stats``: the aggregate numbers for the admin dashboard, as JSON and CSV.

- ``GET /api/v1/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&channel=``: the report of
  ``bot.storage.stats`` (already protected: no cell describes fewer than 5 people) with
  ``charts``: an SVG per table.
- ``GET /api/v1/stats.csv`` (same arguments): the report as a CSV attachment.

Admins, supervisors and editors may read them. Defaults: the last 30 days (UTC), all
channels; a bad argument is a 400 with a message in Vietnamese. Nothing here is
personal, and nothing is cached by the browser.
"""

from __future__ import annotations

from collections.abc import Callable

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, text

from bot.domain import StaffMember, StaffRole
from bot.errors import BadInput
from bot.storage.stats import StatsQuery, StatsStore
from bot.web.auth import AuthSettings, StaffGetter, requires
from bot.web.charts import report_charts, report_csv

READERS = (StaffRole.ADMIN.value, StaffRole.SUPERVISOR.value, StaffRole.EDITOR.value)
NO_STORE = {"Cache-Control": "no-store"}


def parse_query(request: Request) -> StatsQuery:
    """The report's period and channel from the query string, or a 400."""
    try:
        return StatsQuery.from_args(
            {name: request.args.get(name) for name in ("from", "to", "channel")}
        )
    except ValueError as exc:
        raise BadInput(str(exc)) from exc


def csv_filename(query: StatsQuery) -> str:
    channel = f"-{query.channel}" if query.channel else ""
    return f"donghanh-thong-ke-{query.start.isoformat()}-{query.end.isoformat()}{channel}.csv"


def create_blueprint(
    stats: Callable[[Request], StatsStore], staff: StaffGetter, settings: AuthSettings
) -> Blueprint:
    bp = Blueprint("stats_api", url_prefix="/api/v1")

    @bp.get("/stats")
    @requires(staff, settings, *READERS)
    async def report(request: Request, member: StaffMember) -> HTTPResponse:
        numbers = await stats(request).get_report(parse_query(request))
        return json(
            {**numbers, "charts": report_charts(numbers)}, ensure_ascii=False, headers=NO_STORE
        )

    @bp.get("/stats.csv")
    @requires(staff, settings, *READERS)
    async def report_as_csv(request: Request, member: StaffMember) -> HTTPResponse:
        query = parse_query(request)
        numbers = await stats(request).get_report(query)
        return text(
            report_csv(numbers),
            content_type="text/csv; charset=utf-8",
            headers={
                **NO_STORE,
                "Content-Disposition": f'attachment; filename="{csv_filename(query)}"',
            },
        )

    return bp
