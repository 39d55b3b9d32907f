"""What the bot did not understand goes to the editors' queue, masked (TurnEngine with
the real model, on SQLite: where the row is stored is tested in
tests/bot/storage/test_content.py on both databases).

A message the NLU falls back on becomes one masked missed row (reason "fallback"); one
answered on a guess below ``missed_review_below`` becomes a "low_confidence" row; a
button payload, an empty message and an answer the screening flow takes never do.
``missed_reason`` decides, and is tested on its own too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import make_settings, sqlite_only

from bot.app import Services, close_services, open_services
from bot.domain import InboundMessage
from bot.engine.policy import FALLBACK_ACTION, FAQ_ACTION, HELD_SILENT, SCREENING_START
from bot.engine.screening import Questionnaire, load_questionnaire
from bot.engine.turns import missed_reason
from bot.nlu.cues import CUE_NAMES
from bot.nlu.interpreter import FALLBACK_INTENT
from bot.nlu.masking import PHONE
from bot.storage.content import Missed
from bot.storage.repository import TurnOutcome

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the module's one instance
CHANNEL = "test"
GIBBERISH = "qwertzuiop asdfgh"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sqlite_only(tmp_path_factory) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    tmp_path_factory: pytest.TempPathFactory, database: str, model_dir: Path
) -> AsyncIterator[Services]:
    """One running instance (no server) for the module; each test has its own sender
    and looks only at the rows its turns add."""
    settings = make_settings(tmp_path_factory.mktemp("instance"), database, model_dir)
    opened = await open_services(settings)
    yield opened
    await close_services(opened)


async def all_missed(services: Services) -> list[Missed]:
    items, total = await services.content.get_missed(limit=1000)
    assert len(items) == total
    return items


async def exchange(services: Services, sender: str, *texts: str) -> tuple[list[str], list[Missed]]:
    """Send ``texts`` as ``sender``: the replies' texts, and the missed rows those turns
    added (oldest first)."""
    before = {item.id for item in await all_missed(services)}
    for text in texts:
        await services.turns.handle(InboundMessage(channel=CHANNEL, sender_id=sender, text=text))
    replies = await services.store.do_take_pending_for_contact(CHANNEL, sender)
    added = [item for item in await all_missed(services) if item.id not in before]
    return [d.reply.text for d in replies], sorted(added, key=lambda item: item.id)


async def rows_added_by(services: Services, sender: str, *texts: str) -> list[Missed]:
    return (await exchange(services, sender, *texts))[1]


@in_module_loop
async def test_a_message_the_bot_did_not_understand_is_kept_masked(services: Services) -> None:
    (row,) = await rows_added_by(services, "gibberish", GIBBERISH)
    assert (row.reason, row.masked_text, row.channel) == ("fallback", GIBBERISH, CHANNEL)
    assert row.guessed_intent == FALLBACK_INTENT and row.status == "open"
    assert 0.0 <= row.confidence < 1.0


@in_module_loop
async def test_what_could_identify_the_person_is_masked_before_it_is_kept(
    services: Services,
) -> None:
    text = "qwertzuiop 0912 345 678 zxcvbnm lan.nguyen@gmail.com"
    assert services.models.get().parse(text).intent_name == FALLBACK_INTENT
    (row,) = await rows_added_by(services, "personal", text)
    assert PHONE in row.masked_text and "[email]" in row.masked_text
    assert not re.search(r"\d", row.masked_text) and "lan.nguyen" not in row.masked_text


@in_module_loop
async def test_each_message_not_understood_is_one_row(services: Services) -> None:
    rows = await rows_added_by(services, "twice", GIBBERISH, "zxcvbnm lkjhgf")
    assert [row.masked_text for row in rows] == [GIBBERISH, "zxcvbnm lkjhgf"]


@in_module_loop
async def test_a_button_payload_never_goes_to_the_queue(services: Services) -> None:
    payload = f"/{FALLBACK_INTENT}"
    parsed = services.models.get().parse(payload)
    assert parsed.intent_name == FALLBACK_INTENT  # the turn would count as not understood
    assert await rows_added_by(services, "buttons", payload, "/greet", "/emergency") == []


@in_module_loop
async def test_an_empty_message_never_goes_to_the_queue(services: Services) -> None:
    assert await rows_added_by(services, "empty", "", "   ", "\n\t") == []


@in_module_loop
async def test_an_understood_message_does_not_go_to_the_queue(services: Services) -> None:
    assert await rows_added_by(services, "greeter", "xin chào", "cảm ơn bạn") == []


@in_module_loop
async def test_an_answer_on_a_guess_below_the_review_level_goes_to_the_queue(
    services: Services,
) -> None:
    parsed = services.models.get().parse("xin chào")
    assert parsed.intent_name == "greet"
    engine = services.turns
    saved = engine.missed_review_below
    engine.missed_review_below = 1.01  # every guess is below it
    try:
        (row,) = await rows_added_by(services, "guessed", "xin chào")
    finally:
        engine.missed_review_below = saved
    assert (row.reason, row.guessed_intent, row.masked_text) == (
        "low_confidence",
        "greet",
        "xin chào",
    )
    assert row.confidence == pytest.approx(parsed.confidence, abs=1e-3)


async def screening_started(services: Services, sender: str) -> Questionnaire:
    """The questionnaire started and consented to: its first question is asked."""
    questionnaire = load_questionnaire(services.settings.questionnaire_file, frozenset(CUE_NAMES))
    asked, added = await exchange(services, sender, "/start_screening", questionnaire.consent_yes)
    assert questionnaire.questions[0].text in asked[-1] and added == []
    return questionnaire


@in_module_loop
async def test_an_answer_the_screening_takes_does_not_go_to_the_queue(
    services: Services,
) -> None:
    questionnaire = await screening_started(services, "screened")
    for answer, next_question in zip(("không", "có"), questionnaire.questions[1:3], strict=True):
        asked, added = await exchange(services, "screened", answer)
        assert next_question.text in asked[-1] and added == []


@in_module_loop
async def test_a_typed_answer_the_nlu_does_not_know_is_still_the_flows(
    services: Services,
) -> None:
    questionnaire = await screening_started(services, "unsure")
    assert services.models.get().parse("hmm").intent_name == FALLBACK_INTENT
    asked, added = await exchange(services, "unsure", "hmm")  # "hmm": not sure
    assert questionnaire.questions[1].text in asked[-1]  # the flow took it as an answer
    assert added == []


# -- missed_reason on its own --------------------------------------------------------------


def outcome(
    intent: str | None, handled_by: str | None, confidence: float, *, erase: bool = False
) -> TurnOutcome:
    return TurnOutcome(
        replies=[],
        context={},
        intent=intent,
        intent_handled_by=handled_by,
        confidence=confidence,
        erase=erase,
    )


@pytest.mark.parametrize(
    ("turn", "review_below", "reason"),
    [
        (outcome(FALLBACK_INTENT, FALLBACK_ACTION, 0.2), 0.5, "fallback"),
        (outcome(FALLBACK_INTENT, FALLBACK_ACTION, 0.2), 0.0, "fallback"),
        (outcome("faq/deposit", FAQ_ACTION, 0.4), 0.5, "low_confidence"),
        (outcome("greet", "utter_greet", 0.3), 0.5, "low_confidence"),
        (outcome("find_service", "action_find_service", 0.3), 0.5, "low_confidence"),
        (outcome("faq/deposit", FAQ_ACTION, 0.5), 0.5, None),
        (outcome("faq/deposit", FAQ_ACTION, 0.99), 0.5, None),
        (outcome("faq/deposit", FAQ_ACTION, 0.1), 0.0, None),
        (outcome("greet", "utter_help", 0.1), 0.5, None),
        (outcome("affirm", FALLBACK_ACTION, 0.3), 0.5, None),
        (outcome("deny", "screening", 0.1), 0.5, None),
        (outcome("start_screening", SCREENING_START, 0.3), 0.5, None),
        (outcome("request_counsellor", "handoff", 0.3), 0.5, None),
        (outcome(None, "utter_empty", 0.0), 0.5, None),
        (outcome(FALLBACK_INTENT, "erase", 0.1, erase=True), 0.5, None),
        (outcome("greet", "utter_greet", 0.1, erase=True), 0.5, None),
        pytest.param(
            outcome(FALLBACK_INTENT, "screening", 0.25),
            0.5,
            None,
            id="flow-took-a-fallback",
        ),
        pytest.param(
            outcome(FALLBACK_INTENT, HELD_SILENT, 0.25),
            0.5,
            None,
            id="counsellor-holds-it",
        ),
    ],
)
def test_missed_reason(turn: TurnOutcome, review_below: float, reason: str | None) -> None:
    assert missed_reason(turn, review_below) == reason
