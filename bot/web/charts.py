"""Server-rendered charts and the CSV export of a statistics report.

This module owns how the numbers of ``bot.storage.stats`` are drawn and exported:
plain SVG (no JavaScript, nothing fetched from elsewhere) and CSV for spreadsheets.
It receives cells that are already protected: a number, or a marker string such as
``"<5"`` or ``"ẩn"``. A bar for a marker gets a fixed small height and the marker as its
label, never a size of its own, so a chart shows nothing the table hides.

- ``bar_chart``: vertical bars over days (one bar per day, the date below).
- ``horizontal_bar_chart``: one bar per row of a breakdown, its label on the left.
- ``report_charts``: every chart of a report, by table name.
- ``report_csv``: the report as one CSV row per (table, row, column, value), UTF-8 with a
  byte-order mark so that Excel shows Vietnamese correctly.

Every chart is ``role="img"`` with an ``aria-label``, a ``<title>`` and a ``<desc>``
that lists the values, so a screen reader gets the numbers too. All text is escaped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from html import escape
from typing import Any

Cell = int | float | str

WIDTH = 720
BAR_COLOUR = "#2b6cb0"
MARKER_COLOUR = "#a0aec0"
TEXT_COLOUR = "#1a202c"
FONT = "font-family=\"system-ui, 'Segoe UI', Roboto, 'Noto Sans', sans-serif\""
MARKER_HEIGHT = 6  # px: the fixed height of a bar whose value is not shown
MIN_PITCH = 14  # px per day at least; longer series make a wider chart
MAX_BAR_WIDTH = 40
LABEL_WIDTH = 220
ROW_HEIGHT = 24
MAX_LABEL_CHARS = 34
CSV_BOM = "\ufeff"
PERIOD_LABELS = {"from": "Từ ngày", "to": "Đến ngày", "channel": "Kênh (trống: tất cả)"}
NOT_CHARTED = frozenset({"deletions"})  # people and messages: no common scale
WITHHELD_MARKS = {"fewer_than_5": "<5", "no_data": ""}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: object) -> str:
    """Text or attribute content, XML-escaped (quotes included)."""
    return escape(str(value), quote=True)


def _shown(cell: Cell) -> str:
    return str(cell)


def _is_number(cell: Cell) -> bool:
    return isinstance(cell, (int, float)) and not isinstance(cell, bool)


def _scale_max(points: Sequence[tuple[str, Cell]]) -> float:
    numbers = [float(v) for _, v in points if _is_number(v)]
    return max([*numbers, 1.0])


def _description(points: Sequence[tuple[str, Cell]]) -> str:
    return "; ".join(f"{label}: {_shown(value)}" for label, value in points) or "Không có dữ liệu"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _svg(title: str, width: int, height: int, body: list[str], description: str) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_text(title)}" {FONT} '
            f'font-size="12">',
            f"<title>{_text(title)}</title>",
            f"<desc>{_text(description)}</desc>",
            *body,
            "</svg>",
        ]
    )


def _bar_height(value: Cell, top: float, plot_height: float) -> float:
    if not _is_number(value):
        return MARKER_HEIGHT
    return plot_height * float(value) / top


def bar_chart(title: str, points: Sequence[tuple[str, Cell]], *, height: int = 260) -> str:
    """Vertical bars, one per point (a day), with its value above it and its label
    below; a marker cell gets a small grey bar labelled with the marker."""
    left, right, top_margin, bottom = 40, 10, 36, 56
    pitch = max(MIN_PITCH, (WIDTH - left - right) / max(len(points), 1))
    width = int(max(WIDTH, left + right + pitch * len(points)))
    plot_height = height - top_margin - bottom
    top = _scale_max(points)
    rotate = pitch < 28
    body = [
        f'<text x="{left}" y="20" font-size="14" font-weight="bold" fill="{TEXT_COLOUR}">'
        f"{_text(title)}</text>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        f'stroke="{TEXT_COLOUR}" stroke-width="1"/>',
    ]
    every = max(1, round(36 / pitch)) if rotate else 1
    for index, (label, value) in enumerate(points):
        x = left + index * pitch
        bar = _bar_height(value, top, plot_height)
        y = height - bottom - bar
        centre = x + pitch / 2
        bar_width = min(pitch * 0.7, MAX_BAR_WIDTH)
        body.append(_bar(centre - bar_width / 2, y, bar_width, bar, label, value))
        body.append(_value_label(centre, y - 3, value, rotate))
        if index % every == 0:
            body.append(
                f'<text x="{centre:.1f}" y="{height - bottom + 14}" text-anchor="end" '
                f'transform="rotate(-45 {centre:.1f} {height - bottom + 14})" '
                f'fill="{TEXT_COLOUR}" font-size="10">{_text(label[:5])}</text>'
            )
    return _svg(title, width, height, body, _description(points))


def horizontal_bar_chart(title: str, rows: Sequence[tuple[str, Cell]]) -> str:
    """One horizontal bar per row, the row's label on the left and its value after
    the bar; a marker cell gets a small grey bar labelled with the marker."""
    top_margin, right = 36, 60
    height = top_margin + ROW_HEIGHT * max(len(rows), 1) + 10
    plot_width = WIDTH - LABEL_WIDTH - right
    top = _scale_max(rows)
    body = [
        f'<text x="10" y="20" font-size="14" font-weight="bold" fill="{TEXT_COLOUR}">'
        f"{_text(title)}</text>"
    ]
    if not rows:
        body.append(
            f'<text x="10" y="{top_margin + 16}" fill="{TEXT_COLOUR}">Không có dữ liệu</text>'
        )
    for index, (label, value) in enumerate(rows):
        y = top_margin + index * ROW_HEIGHT
        length = _bar_height(value, top, plot_width)
        middle = y + ROW_HEIGHT / 2 + 4
        body.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle:.1f}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}">{_text(_short(label))}</text>'
        )
        body.append(_bar(LABEL_WIDTH, y + 4, length, ROW_HEIGHT - 8, label, value))
        body.append(
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{middle:.1f}" '
            f'fill="{TEXT_COLOUR}">{_text(_shown(value))}</text>'
        )
    return _svg(title, WIDTH, height, body, _description(rows))


def _bar(x: float, y: float, width: float, height: float, label: str, value: Cell) -> str:
    marker = not _is_number(value)
    colour = MARKER_COLOUR if marker else BAR_COLOUR
    kind = ' class="suppressed"' if marker else ""
    return (
        f'<rect{kind} x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'fill="{colour}"><title>{_text(label)}: {_text(_shown(value))}</title></rect>'
    )


def _value_label(x: float, y: float, value: Cell, rotate: bool) -> str:
    turn = f' transform="rotate(-90 {x:.1f} {y:.1f})" text-anchor="start"' if rotate else ""
    anchor = "" if rotate else ' text-anchor="middle"'
    return (
        f'<text x="{x:.1f}" y="{y:.1f}"{anchor}{turn} font-size="10" fill="{TEXT_COLOUR}">'
        f"{_text(_shown(value))}</text>"
    )


# -- a report's charts and CSV ----------------------------------------------------------------


def _column_points(table: Mapping[str, Any], column: str) -> list[tuple[str, Cell]]:
    return [(str(row["label"]), row["values"][column]) for row in table["rows"]]


def report_charts(report: Mapping[str, Any]) -> dict[str, str]:
    """Every chart of a report: the days as vertical bars, each breakdown as
    horizontal bars (rows of 0 left out of the long province list)."""
    tables: Mapping[str, Any] = report["tables"]
    charts: dict[str, str] = {}
    for name, table in tables.items():
        if name in NOT_CHARTED:
            continue
        column = table["columns"][0]["key"]
        points = _column_points(table, column)
        if name == "per_day":
            charts[name] = bar_chart(table["title"], points)
            continue
        if name == "province":
            points = [(label, value) for label, value in points if value != 0]
        charts[name] = horizontal_bar_chart(table["title"], points)
    return charts


def _csv_rows(report: Mapping[str, Any]) -> Iterator[list[str]]:
    yield ["table", "table_title", "row", "row_label", "column", "column_label", "value"]
    period = report["period"]
    for key, label in PERIOD_LABELS.items():
        yield ["period", "Kỳ báo cáo", key, label, "value", "Giá trị", str(period[key] or "")]
    for name, table in report["tables"].items():
        yield from _table_lines(name, table)
    for name, item in report["measures"].items():
        head = ["measures", "Chỉ số", name, item["label"]]
        value = item["value"]
        shown = _shown(value) if value is not None else WITHHELD_MARKS[item["withheld"]]
        yield [*head, "value", item["unit"], shown]
        yield [*head, "people", "Số người", _shown(item["people"])]


def _table_lines(name: str, table: Mapping[str, Any]) -> Iterator[list[str]]:
    """One line per cell of a table: its rows, then its total and any subtotal."""
    labels = {c["key"]: c["label"] for c in table["columns"]}
    lines = [(row["key"], row["label"], row["values"]) for row in table["rows"]]
    if table.get("total"):
        lines.append(("total", table["total"]["label"], table["total"]["values"]))
    if table.get("completed"):
        completed = table["completed"]
        lines.append(("completed", completed["label"], {"people": completed["value"]}))
    for key, label, values in lines:
        for column, value in values.items():
            yield [
                name,
                table["title"],
                key,
                label,
                column,
                labels.get(column, column),
                _shown(value),
            ]


def _safe(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def report_csv(report: Mapping[str, Any]) -> str:
    """The report as CSV text (with a leading BOM): one row per (table, row, column,
    value); protected values stay markers ("<5", "ẩn")."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in _csv_rows(report):
        writer.writerow([_safe(cell) for cell in row])
    return CSV_BOM + buffer.getvalue()
