"""One turn end to end without a server: store, understand, decide, outbox, recover."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.domain import Delivery, InboundMessage

CHANNEL = "test"


def message(text: str, sender: str = "u1", message_id: str | None = None) -> InboundMessage:
    return InboundMessage(
        channel=CHANNEL, sender_id=sender, text=text, platform_message_id=message_id
    )


async def say(services: Any, text: str, sender: str = "u1") -> list[Delivery]:
    await services.turns.handle(message(text, sender))
    deliveries: list[Delivery] = await services.store.do_take_pending_for_contact(CHANNEL, sender)
    return deliveries


async def test_greeting_in_vietnamese_with_buttons(services: Any) -> None:
    replies = await say(services, "xin chào")
    assert len(replies) == 1
    assert replies[0].reply.text.startswith("Xin chào")
    assert {b.payload for b in replies[0].reply.buttons} == {"/emergency", "/request_counsellor"}


async def test_a_button_payload_is_understood(services: Any) -> None:
    replies = await say(services, "/emergency")
    assert "113" in replies[0].reply.text and "111" in replies[0].reply.text


async def test_danger_comes_first_with_and_without_diacritics(services: Any) -> None:
    for text in ("cứu tôi với, tôi bị nhốt", "cuu toi voi toi bi nhot", "họ đang đánh tôi"):
        replies = await say(services, text, sender=f"s-{text}")
        assert replies[0].reply.text.startswith("Nếu bạn đang gặp nguy hiểm"), text
        assert "113" in replies[0].reply.text and "111" in replies[0].reply.text


async def test_two_stage_fallback_runs_through_the_rasa_sdk_action(services: Any) -> None:
    first = await say(services, "qwertzuiop asdfgh")
    second = await say(services, "zxcvbnm lkjhgf")
    assert first[0].reply.text.startswith("Xin lỗi, mình chưa hiểu rõ")
    assert "111" in first[0].reply.text
    assert "111" in second[0].reply.text
    assert [b.payload for b in second[0].reply.buttons] == ["/request_counsellor"]
    third = await say(services, "poiuytre mnbvcx")  # the counter starts again
    assert third[0].reply.text.startswith("Xin lỗi, mình chưa hiểu rõ")


async def test_an_understood_message_resets_the_fallback_counter(services: Any) -> None:
    await say(services, "qwertzuiop asdfgh")
    await say(services, "xin chào")
    again = await say(services, "zxcvbnm lkjhgf")
    assert again[0].reply.text.startswith("Xin lỗi, mình chưa hiểu rõ")


async def test_empty_and_long_messages_get_a_polite_reply(services: Any) -> None:
    assert (await say(services, "   "))[0].reply.text.startswith("Mình chưa nhận được")
    long_text = "cứu tôi với " + "a" * 6000
    replies = await say(services, long_text, sender="long")
    assert replies[0].reply.text.startswith("Tin nhắn hơi dài")
    assert "113" in replies[1].reply.text  # the start of a long message is still read


async def test_a_redelivered_message_is_answered_once(services: Any) -> None:
    await services.turns.handle(message("xin chào", message_id="p-1"))
    await services.turns.handle(message("xin chào", message_id="p-1"))
    assert len(await services.store.do_take_pending_for_contact(CHANNEL, "u1")) == 1


async def test_turns_of_one_person_keep_their_order(services: Any) -> None:
    texts = ["xin chào", "/emergency", "cảm ơn", "tạm biệt"]
    await asyncio.gather(
        *(services.turns.handle(message(t, message_id=f"o-{i}")) for i, t in enumerate(texts))
    )
    deliveries = await services.store.do_take_pending_for_contact(CHANNEL, "u1")
    assert len(deliveries) == 4
    assert [d.outbox_id for d in deliveries] == sorted(d.outbox_id for d in deliveries)


async def test_a_stored_but_unprocessed_message_is_answered_by_recovery(services: Any) -> None:
    stored = await services.store.do_store_inbound(message("xin chào", sender="crashed"))
    assert stored is not None
    assert await services.turns.recover() == 1
    assert await services.turns.recover() == 0
    replies = await services.store.do_take_pending_for_contact(CHANNEL, "crashed")
    assert len(replies) == 1 and replies[0].reply.text.startswith("Xin chào")


async def test_recovery_leaves_young_messages_to_the_turn_that_has_them(services: Any) -> None:
    from datetime import timedelta

    stored = await services.store.do_store_inbound(message("xin chào", sender="live"))
    assert stored is not None
    assert await services.turns.recover(older_than=timedelta(seconds=10)) == 0
    assert await services.turns.recover(older_than=timedelta(0)) == 1


async def test_a_failing_action_still_gets_an_answer(services: Any) -> None:
    class Broken:
        @property
        def names(self) -> set[str]:
            return {"action_find_service"}

        async def run(self, name: str, tracker: dict[str, Any]) -> Any:
            raise RuntimeError("action server down")

    services.turns.policy.actions = Broken()
    replies = await say(services, "/find_service")
    assert "111" in replies[0].reply.text
    assert replies[0].reply.text.startswith("Xin lỗi, mình đang gặp trục trặc")
