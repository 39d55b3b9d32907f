"""Fitting a reply into a platform's message limit.

Limits are counted in UTF-16 code units, as Telegram counts them (an emoji is two), which
is never fewer than what Messenger and Zalo count. A long text is split at the best
boundary before the limit: a blank line, then a line break, then the end of a sentence,
then a space; only a single word longer than the limit is ever cut inside. Buttons go
with the last part, so they stay under the text they belong to.
"""

from __future__ import annotations

import re

from bot.domain import Reply

CHANNEL_TEXT_LIMITS = {
    "telegram": 4096,
    "facebook": 2000,
    "zalo": 2000,
    "webchat": 4000,
}
_BOUNDARIES = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?…;:])\s+"),
    re.compile(r"\s+"),
)


def text_length(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """How many characters of ``text`` fit in ``limit`` code units."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def _cut_at(text: str, fits: int) -> tuple[str, str]:
    window = text[: fits + 1]  # a boundary right after the last fitting character counts
    for boundary in _BOUNDARIES:
        ends = [m for m in boundary.finditer(window) if 0 < m.start() <= fits]
        if ends:
            last = ends[-1]
            return text[: last.start()], text[last.end() :]
    return text[:fits], text[fits:]


def split_text(text: str, limit: int) -> list[str]:
    """Parts of ``text``, each at most ``limit`` code units, cut at clean boundaries."""
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text.strip()
    while text_length(rest) > limit:
        # a character wider than the whole limit (an emoji at limit 1) still moves on
        head, rest = _cut_at(rest, max(_prefix_within(rest, limit), 1))
        if head.strip():
            parts.append(head.strip())
        rest = rest.strip()
    if rest or not parts:
        parts.append(rest)
    return parts


def split_reply(reply: Reply, limit: int) -> list[Reply]:
    """A reply as one or more replies within ``limit``; buttons on the last."""
    parts = split_text(reply.text, limit)
    return [
        Reply(text=part, buttons=reply.buttons if index == len(parts) - 1 else ())
        for index, part in enumerate(parts)
    ]
