"""``donghanh chat``: type a message, read the bot's replies, in a terminal.

Runs the same engine and storage as the server (messages are stored and encrypted the
same way). Buttons are shown numbered; typing the number selects the button (the
engine resolves it against the buttons last sent).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TextIO

from bot.domain import Delivery, InboundMessage
from bot.engine.turns import TurnEngine

CHANNEL = "terminal"
QUIT_WORDS = {"/quit", "/exit", "/thoat"}


def render(delivery: Delivery) -> list[str]:
    lines = [f"Đồng Hành: {delivery.reply.text}"]
    lines += [f"  {i}. {button.title}" for i, button in enumerate(delivery.reply.buttons, start=1)]
    return lines


async def run_terminal_chat(turns: TurnEngine, stdin: TextIO, stdout: TextIO) -> int:
    sender = f"terminal-{secrets.token_hex(8)}"
    stdout.write("Gõ tin nhắn rồi Enter. Gõ /thoat để kết thúc.\n")
    stdout.flush()
    while True:
        line = await asyncio.to_thread(stdin.readline)
        if not line or line.strip() in QUIT_WORDS:
            return 0
        text = line.rstrip("\r\n")
        await turns.handle(InboundMessage(channel=CHANNEL, sender_id=sender, text=text))
        for delivery in await turns.store.do_take_pending_for_contact(CHANNEL, sender):
            stdout.write("\n".join(render(delivery)) + "\n")
        stdout.flush()
