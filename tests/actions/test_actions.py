"""The rasa-sdk actions on their own, through rasa-sdk's executor, as a Rasa server would
call them: FAQ answers and choices, the province flow, reports and the fallback."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.executor import ActionExecutor

DOMAIN: dict[str, Any] = {
    "responses": {
        "utter_faq/deposit": [{"text": "ký quỹ", "metadata": {"title": "Tiền ký quỹ"}}],
        "utter_faq_more/deposit": [{"text": "thêm về ký quỹ"}],
        "utter_faq/recruitment_fees": [{"text": "phí", "metadata": {"title": "Tiền dịch vụ"}}],
        "utter_faq_choose": [{"text": "chọn"}],
    }
}


async def run(
    action: str,
    intent: str,
    confidence: float = 0.95,
    *,
    ranking: list[tuple[str, float]] | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    text: str = "câu hỏi",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    executor = ActionExecutor()
    executor.register_package("actions")
    ranked = ranking or [(intent, confidence)]
    tracker = {
        "sender_id": "s1",
        "slots": slots or {},
        "latest_message": {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranked],
            "entities": entities or [],
        },
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": None,
    }
    result = await executor.run(
        {"next_action": action, "sender_id": "s1", "tracker": tracker, "domain": DOMAIN}
    )
    assert result is not None
    return list(result.responses), list(result.events)


async def test_a_clear_question_gets_its_answer() -> None:
    responses, _ = await run(
        "action_answer_faq", "faq/deposit", 0.9, ranking=[("faq/deposit", 0.9), ("greet", 0.05)]
    )
    assert [r["response"] for r in responses] == ["utter_faq/deposit"]


async def test_more_gives_the_follow_up() -> None:
    responses, _ = await run(
        "action_answer_faq",
        "faq/deposit",
        1.0,
        entities=[{"entity": "detail", "value": "more", "start": 0, "end": 0}],
    )
    assert [r["response"] for r in responses] == ["utter_faq_more/deposit"]


@pytest.mark.parametrize(
    "ranking",
    [
        [("faq/deposit", 0.40), ("faq/recruitment_fees", 0.35)],  # not confident
        [("faq/deposit", 0.52), ("faq/recruitment_fees", 0.47)],  # too close to tell
    ],
)
async def test_an_unclear_question_offers_the_two_best_topics(
    ranking: list[tuple[str, float]],
) -> None:
    responses, _ = await run("action_answer_faq", ranking[0][0], ranking[0][1], ranking=ranking)
    (offer,) = responses
    assert offer["response"] == "utter_faq_choose"
    assert offer["buttons"] == [
        {"title": "Tiền ký quỹ", "payload": "/faq/deposit"},
        {"title": "Tiền dịch vụ", "payload": "/faq/recruitment_fees"},
    ]


async def test_find_service_asks_for_the_province_once() -> None:
    responses, events = await run("action_find_service", "find_service")
    assert [r["response"] for r in responses] == ["utter_ask_province"]
    assert {"event": "slot", "name": "requested_slot", "value": "province"} in [
        {k: e[k] for k in ("event", "name", "value")} for e in events
    ]
    again, events = await run("action_find_service", "deny", slots={"requested_slot": "province"})
    assert [r["response"] for r in again] == ["utter_services_unknown_place"]
    assert "111" in again[0]["services"].split("\n")[0]


async def test_find_service_with_a_former_province_explains_the_merger() -> None:
    responses, events = await run(
        "action_find_service",
        "find_service",
        text="tôi ở Hà Giang",
        entities=[{"entity": "province", "value": "Tuyên Quang", "start": 6, "end": 14}],
    )
    names = [r["response"] for r in responses]
    assert names == ["utter_services_national", "utter_province_merged", "utter_services_local"]
    assert responses[1]["former"] == "Hà Giang"
    assert responses[1]["place"] == "tỉnh Tuyên Quang"
    assert "Sở Y tế tỉnh Tuyên Quang" in responses[2]["services"]
    assert {"event": "slot", "name": "province", "value": "Tuyên Quang"} in [
        {k: e[k] for k in ("event", "name", "value")} for e in events
    ]


async def test_report_case_names_local_bodies_and_asks_for_no_details() -> None:
    responses, events = await run(
        "action_report_case",
        "report_case",
        text="em tôi ở Nghệ An mất liên lạc",
        entities=[{"entity": "province", "value": "Nghệ An", "start": 9, "end": 16}],
    )
    names = [r["response"] for r in responses]
    assert names == ["utter_report_case", "utter_report_case_local", "utter_report_case_details"]
    assert "Công an tỉnh Nghệ An" in responses[1]["services"]
    assert events == []  # nothing about the third person is kept


async def test_fallback_offers_close_topics_then_a_person() -> None:
    ranking = [("nlu_fallback", 0.25), ("faq/deposit", 0.2), ("greet", 0.1)]
    first, _ = await run("action_fallback", "nlu_fallback", 0.25, ranking=ranking)
    assert first[0]["response"] == "utter_rephrase"
    assert first[0]["buttons"] == [{"title": "Tiền ký quỹ", "payload": "/faq/deposit"}]
    second, _ = await run(
        "action_fallback", "nlu_fallback", 0.25, ranking=ranking, slots={"fallback_count": 1}
    )
    assert second[0]["response"] == "utter_fallback_handoff"
