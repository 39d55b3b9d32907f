"""Typed choices and non-text messages through the real TurnEngine (both databases).

A number or a button's title typed after a message with buttons is answered exactly as
the tapped button would be; after a message without buttons "1" is ordinary text. A
sticker gets utter_text_only (from data/responses.yml), also in the middle of the
screening questionnaire, which then goes on with the next proper answer; "/help" gets
utter_help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.domain import Button, Delivery, InboundMessage
from bot.engine.screening import load_questionnaire
from bot.nlu.cues import CUE_NAMES

CHANNEL = "test"
STICKER = '/user_sent_media{"kind": "sticker"}'
RESPONSES_FILE = Path(__file__).resolve().parents[3] / "data" / "responses.yml"


def response(name: str) -> dict[str, Any]:
    """The first variant of a response in data/responses.yml."""
    data = yaml.safe_load(RESPONSES_FILE.read_text(encoding="utf-8"))
    variant: dict[str, Any] = data["responses"][name][0]
    return variant


def shown(deliveries: list[Delivery]) -> list[tuple[str, tuple[Button, ...]]]:
    """What the person sees: each reply's text and buttons."""
    return [(d.reply.text, d.reply.buttons) for d in deliveries]


async def say(services: Any, text: str, sender: str) -> list[Delivery]:
    await services.turns.handle(InboundMessage(channel=CHANNEL, sender_id=sender, text=text))
    deliveries: list[Delivery] = await services.store.do_take_pending_for_contact(CHANNEL, sender)
    assert deliveries, f"no reply to {text!r}"
    return deliveries


async def test_typing_a_number_after_the_greeting_is_tapping_its_button(services: Any) -> None:
    greeting = await say(services, "/greet", "typed")
    buttons = greeting[-1].reply.buttons
    assert len(buttons) >= 2
    await say(services, "/greet", "tapped")
    typed = await say(services, "2", "typed")
    tapped = await say(services, buttons[1].payload, "tapped")
    assert shown(typed) == shown(tapped)
    fresh = await say(services, "2", "no-greeting")  # the same "2" with nothing to pick
    assert shown(fresh) != shown(tapped)


async def test_typing_a_buttons_title_is_tapping_it(services: Any) -> None:
    await say(services, "/greet", "title-typed")
    await say(services, "/greet", "title-tapped")
    offer = await say(services, "2", "title-typed")
    await say(services, "2", "title-tapped")
    second = offer[-1].reply.buttons[1]
    typed = await say(services, second.title, "title-typed")
    tapped = await say(services, second.payload, "title-tapped")
    assert shown(typed) == shown(tapped)
    # the title alone, when the last message did not offer it, means something else
    await say(services, "/greet", "title-unoffered")
    unoffered = await say(services, second.title, "title-unoffered")
    assert shown(unoffered) != shown(tapped)


async def test_a_number_after_a_message_without_buttons_is_ordinary_text(services: Any) -> None:
    greeting = await say(services, "/greet", "late")
    first_payload = greeting[-1].reply.buttons[0].payload
    sticker_reply = await say(services, STICKER, "late")
    assert sticker_reply[-1].reply.buttons == ()
    late = await say(services, "1", "late")
    fresh = await say(services, "1", "fresh")  # "1" from someone never offered a button
    tapped = await say(services, first_payload, "tapper")
    assert shown(late) == shown(fresh)
    assert shown(late) != shown(tapped)


async def test_a_sticker_and_help_get_their_responses(services: Any) -> None:
    text_only = response("utter_text_only")
    replies = await say(services, STICKER, "sticker")
    assert [d.reply.text for d in replies] == [text_only["text"]]
    help_ = response("utter_help")
    replies = await say(services, "/help", "helped")
    assert replies[0].reply.text == help_["text"]
    assert [(b.title, b.payload) for b in replies[0].reply.buttons] == [
        (b["title"], b["payload"]) for b in help_["buttons"]
    ]


async def test_a_sticker_during_screening_does_not_end_it(services: Any, settings: Any) -> None:
    questionnaire = load_questionnaire(settings.questionnaire_file, frozenset(CUE_NAMES))
    text_only = response("utter_text_only")["text"]
    sender = "screened"
    intro = await say(services, "/start_screening", sender)
    assert intro[-1].reply.text == questionnaire.intro
    assert [d.reply.text for d in await say(services, STICKER, sender)] == [text_only]
    first = await say(services, questionnaire.consent_yes, sender)
    assert questionnaire.questions[0].text in first[-1].reply.text
    assert [d.reply.text for d in await say(services, STICKER, sender)] == [text_only]
    second = await say(services, "không", sender)  # the answer to the first question
    assert questionnaire.questions[1].text in second[-1].reply.text
    assert {b.title for b in second[-1].reply.buttons} == set(questionnaire.answer_buttons.values())
