"""Safety rules that override any flow: danger now, and risk cues acknowledged.

``is_danger_now``: the emergency intent, or a danger cue (violence, being held, ransom:
data/safety.yml) in a message that says it is happening now ("đang", "bây giờ",
"cứu"...). The policy then answers with 113 and 111 before anything else.

``cue_acknowledgement``: when a message shows risk cues not yet acknowledged in this
conversation, one short message that thanks the person, gives the right that applies
in one line per cue (at most two, in the order of the data), and offers to look at the
situation together or to talk to a counsellor.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.datafiles import read_yaml
from bot.domain import Button, ParseResult, Reply
from bot.errors import DataFormatError
from bot.nlu.normalize import strip_diacritics

EMERGENCY_INTENT = "emergency"
ACKNOWLEDGED_SLOT = "cues_acknowledged"
MAX_CUE_LINES = 2


@dataclass(frozen=True)
class SafetyRules:
    danger_cues: frozenset[str]
    present: re.Pattern[str]  # markers as written, for text typed with diacritics
    present_folded: re.Pattern[str]  # the same without diacritics, for text typed without
    acknowledge: str
    offer: str
    offer_buttons: tuple[Button, ...]
    cue_lines: dict[str, str]  # in order of importance
    personal: re.Pattern[str] | None = None
    personal_folded: re.Pattern[str] | None = None

    def is_danger_now(self, parse: ParseResult) -> bool:
        if parse.intent_name == EMERGENCY_INTENT:
            return True
        if not self.danger_cues & parse.cue_names:
            return False
        words = _words(parse.text)
        if strip_diacritics(words) != words:  # typed with diacritics: "đáng" is not "đang"
            return self.present.search(words) is not None
        return self.present_folded.search(words) is not None

    def is_about_someone(self, text: str) -> bool:
        """Whether the message speaks of the writer or someone they know."""
        if self.personal is None or self.personal_folded is None:
            return True
        words = _words(text)
        if strip_diacritics(words) != words:
            return self.personal.search(words) is not None
        return self.personal_folded.search(words) is not None

    def cue_acknowledgement(
        self, cues: Iterable[str], already: Iterable[str], *, with_offer: bool = True
    ) -> Reply | None:
        """Thanks, the right for each new cue, and (unless the next message makes the
        offer itself) the offer to look at the situation or to talk to a counsellor."""
        new = set(cues) - set(already)
        lines = [line for cue, line in self.cue_lines.items() if cue in new][:MAX_CUE_LINES]
        if not lines:
            return None
        if not with_offer:
            return Reply(" ".join([self.acknowledge, *lines]))
        return Reply(" ".join([self.acknowledge, *lines, self.offer]), self.offer_buttons)


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFC", text).lower()))


def _marker_pattern(markers: list[str]) -> re.Pattern[str]:
    """Whole-word markers; "giờ" in "bao giờ" ("ever") is not "now"."""
    alternation = "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))
    return re.compile(rf"(?<!\bbao )\b({alternation})\b")


def _word_pattern(words: list[str]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"\b({alternation})\b")


def load_safety_rules(path: Path) -> SafetyRules:
    raw = read_yaml(path)
    try:
        danger = raw["danger_now"]
        written = [_words(str(m)) for m in danger["present_markers"]]
        personal = [_words(str(m)) for m in raw.get("personal_markers") or []]
        lines = {str(k): " ".join(str(v).split()) for k, v in raw["cue_lines"].items()}
        buttons = tuple(
            Button(str(b["title"]), str(b["payload"])) for b in raw.get("offer_buttons") or []
        )
        return SafetyRules(
            danger_cues=frozenset(danger["cues"]),
            present=_marker_pattern(written),
            present_folded=_marker_pattern([strip_diacritics(m) for m in written]),
            acknowledge=str(raw["acknowledge"]).strip(),
            offer=" ".join(str(raw["offer"]).split()),
            offer_buttons=buttons,
            cue_lines=lines,
            personal=_word_pattern(personal) if personal else None,
            personal_folded=(
                _word_pattern([strip_diacritics(m) for m in personal]) if personal else None
            ),
        )
    except (KeyError, TypeError) as exc:
        raise DataFormatError(path, f"incomplete safety rules: {exc}") from exc
