"""Picking a button by typing: "1", "2." or the button's own title.

Channels that show buttons as a numbered list (and people who type instead of
tapping) answer with a number or the title. The engine turns that answer into the
button's payload, against the buttons of the last message the person was sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.domain import Button
from bot.nlu.normalize import strip_diacritics

_NUMBER = re.compile(r"^\s*(?:số\s*|so\s*)?(\d{1,2})\s*[.)]?\s*$", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[^\w\s]")


def _folded(text: str) -> str:
    bare = _PUNCTUATION.sub(" ", strip_diacritics(text).casefold())
    return " ".join(bare.split())


def resolve_choice(text: str, buttons: Sequence[Button]) -> str:
    """The payload of the button ``text`` picks, or ``text`` itself."""
    if not buttons:
        return text
    number = _NUMBER.match(unicodedata.normalize("NFC", text))
    if number and 1 <= int(number[1]) <= len(buttons):
        return buttons[int(number[1]) - 1].payload
    folded = _folded(text)
    if folded:
        for button in buttons:
            if _folded(button.title) == folded:
                return button.payload
    return text
