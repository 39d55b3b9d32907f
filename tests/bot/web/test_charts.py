"""Charts and CSV of the statistics report (bot/web/charts.py).

Every SVG parses as XML, is an accessible image (role, aria-label, title, desc), escapes
whatever text it is given, and draws a protected cell as a small bar of fixed height
labelled with its marker, whatever the other bars are. The CSV starts with a BOM, has one
line per (table, row, column, value), keeps markers as they are and defuses formulas.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import pytest

from bot.storage.stats import (
    HIDDEN,
    SUPPRESSED,
    Column,
    Facts,
    Row,
    StatsQuery,
    assemble_report,
    build_table,
)
from bot.web.charts import (
    MARKER_HEIGHT,
    bar_chart,
    horizontal_bar_chart,
    report_charts,
    report_csv,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def bars(root: ET.Element) -> list[ET.Element]:
    return root.findall(f"{SVG}rect")


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def test_a_bar_chart_is_an_accessible_well_formed_svg() -> None:
    svg = bar_chart("Số người nhắn tin mỗi ngày", [("01/07/2025", 12), ("02/07/2025", 30)])
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Số người nhắn tin mỗi ngày"
    assert root.findtext(f"{SVG}title") == "Số người nhắn tin mỗi ngày"
    assert root.findtext(f"{SVG}desc") == "01/07/2025: 12; 02/07/2025: 30"
    heights = [float(rect.get("height", "0")) for rect in bars(root)]
    assert heights[1] > heights[0] > MARKER_HEIGHT
    assert heights[0] / heights[1] == pytest.approx(12 / 30, rel=1e-2)
    assert {"12", "30", "01/07", "02/07"} <= set(texts(root))
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_suppressed_bars_have_a_fixed_small_height_and_their_marker() -> None:
    for big in (10, 10_000):
        root = parse(
            horizontal_bar_chart(
                "Theo kênh", [("Zalo", SUPPRESSED), ("Web", big), ("Telegram", HIDDEN)]
            )
        )
        rects = bars(root)
        assert [float(r.get("width", "0")) for r in (rects[0], rects[2])] == [MARKER_HEIGHT] * 2
        assert [r.get("class") for r in rects] == ["suppressed", None, "suppressed"]
        assert rects[0].findtext(f"{SVG}title") == "Zalo: <5"
        assert {SUPPRESSED, HIDDEN, str(big)} <= set(texts(root))
    root = parse(bar_chart("Ngày", [("01/07/2025", SUPPRESSED), ("02/07/2025", 7)]))
    rect = bars(root)[0]
    assert float(rect.get("height", "0")) == MARKER_HEIGHT
    assert SUPPRESSED in texts(root)


def test_all_text_is_escaped() -> None:
    nasty = "A & B <script>alert(\"x\")</script> 'q'"
    for svg in (bar_chart(nasty, [(nasty, 1_000)]), horizontal_bar_chart(nasty, [(nasty, 5)])):
        root = parse(svg)  # would fail on an unescaped <, & or quote
        assert root.get("aria-label") == nasty
        assert root.findtext(f"{SVG}title") == nasty
        assert root.find(f".//{SVG}script") is None
        assert "<script>" not in svg


def test_an_empty_breakdown_says_so() -> None:
    root = parse(horizontal_bar_chart("Theo tỉnh, thành phố", []))
    assert "Không có dữ liệu" in texts(root)
    assert root.findtext(f"{SVG}desc") == "Không có dữ liệu"


def test_a_long_series_widens_the_chart_and_turns_its_labels() -> None:
    points = [(f"{d % 28 + 1:02d}/07/2025", d) for d in range(366)]
    root = parse(bar_chart("Cả năm", points))
    assert int(root.get("width", "0")) >= 366 * 14
    assert len(bars(root)) == 366
    assert any("rotate(-90" in (t.get("transform") or "") for t in root.iter(f"{SVG}text"))


# -- a whole report ----------------------------------------------------------------------------


def sample_report() -> dict[str, Any]:
    facts = Facts(
        active_by_day={date(2025, 7, 1): 3, date(2025, 7, 2): 9},
        new_by_day={date(2025, 7, 1): 3, date(2025, 7, 2): 6},
        new_total=9,
        people_by_channel={"zalo": 3, "telegram": 9},
        intents=[(n, "faq/=HYPERLINK(1)", 1) for n in range(6)] + [(7, "nlu_fallback", 2)],
        cues={},
        details={},
        handoffs=[],
        deletions={"erasures": 7, "messages_erased": 40},
    )
    return assemble_report(
        StatsQuery(date(2025, 7, 1), date(2025, 7, 2), None), facts, ("Hà Nội", "Huế"), {}
    )


def test_report_charts_draw_every_breakdown_but_the_deletions() -> None:
    report = sample_report()
    charts = report_charts(report)
    assert set(charts) == set(report["tables"]) - {"deletions"}
    for name, svg in charts.items():
        root = parse(svg)
        assert root.findtext(f"{SVG}title") == report["tables"][name]["title"]
    channels = parse(charts["channels"])
    assert [r.get("class") for r in bars(channels)] == ["suppressed", "suppressed"]  # <5, ẩn
    province = parse(charts["province"])  # rows of 0 are left out of the long list
    assert [t for t in texts(province) if t in ("Hà Nội", "Huế", "Không rõ")] == ["Không rõ"]


def read_csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_csv_has_one_line_per_cell_with_markers_kept() -> None:
    report = sample_report()
    lines = read_csv(report_csv(report))
    assert lines[0] == [
        "table",
        "table_title",
        "row",
        "row_label",
        "column",
        "column_label",
        "value",
    ]
    assert ["period", "Kỳ báo cáo", "from", "Từ ngày", "value", "Giá trị", "2025-07-01"] in lines
    assert [
        "per_day",
        "Số người nhắn tin mỗi ngày",
        "2025-07-01",
        "01/07/2025",
        "active",
        "Người nhắn tin",
        SUPPRESSED,
    ] in lines
    assert ["channels", "Theo kênh", "zalo", "Zalo", "people", "Số người", SUPPRESSED] in lines
    assert ["channels", "Theo kênh", "telegram", "Telegram", "people", "Số người", HIDDEN] in lines
    assert ["channels", "Theo kênh", "total", "Tổng", "people", "Số người", "12"] in lines
    assert [
        "deletions",
        "Xóa dữ liệu theo yêu cầu",
        "erasures",
        "Số người xóa dữ liệu",
        "count",
        "Số lượng",
        "7",
    ] in lines
    per_day = [line for line in lines if line[0] == "per_day"]
    assert len(per_day) == 2 * 2 + 2  # two days, two columns, and the totals
    assert all(len(line) == 7 for line in lines)


def test_the_csv_gives_withheld_measures_as_markers_or_blank() -> None:
    lines = read_csv(report_csv(sample_report()))
    measures = {(line[2], line[4]): line[6] for line in lines if line[0] == "measures"}
    assert measures[("fallback_rate", "value")] == SUPPRESSED  # one person's fallbacks
    assert measures[("fallback_rate", "people")] == "7"
    assert measures[("handoff_wait_median", "value")] == ""  # nobody waited
    screening = [line for line in lines if line[0] == "screening" and line[2] == "completed"]
    assert screening[0][6] == "0"


def test_the_csv_defuses_spreadsheet_formulas() -> None:
    lines = read_csv(report_csv(sample_report()))
    topic = next(line for line in lines if line[0] == "faq_topics")
    assert topic[2] == "'=HYPERLINK(1)"
    assert topic[3] == "'=HYPERLINK(1)"
    assert topic[6] == "6"


def test_build_tables_round_trip_through_the_csv() -> None:
    table = build_table(
        "Thử",
        [Row("a", "Một, hai", {"x": 3, "y": 8}), Row("b", 'Có "ngoặc"', {"x": 20, "y": 0})],
        columns=(Column("x", "Cột X"), Column("y", "Cột Y")),
        totals={"x": 23, "y": 8},
    )
    report = {
        "period": {"from": "2025-07-01", "to": "2025-07-01", "channel": "zalo"},
        "tables": {"t": table},
        "measures": {},
    }
    lines = read_csv(report_csv(report))
    values = {(line[2], line[4]): line[6] for line in lines if line[0] == "t"}
    assert values == {
        ("a", "x"): SUPPRESSED,
        ("a", "y"): "8",
        ("b", "x"): HIDDEN,
        ("b", "y"): "0",
        ("total", "x"): "23",
        ("total", "y"): "8",
    }
    labels = {line[2]: line[3] for line in lines if line[0] == "t"}
    assert labels["a"] == "Một, hai" and labels["b"] == 'Có "ngoặc"'
    assert [
        "period",
        "Kỳ báo cáo",
        "channel",
        "Kênh (trống: tất cả)",
        "value",
        "Giá trị",
        "zalo",
    ] in lines
