"""Masking what could identify a person in a message before editors see it.

``mask_personal`` replaces e-mail addresses, links, @handles, phone numbers, every other
number (ages, amounts, ids, plates, dates), and the names it can find: those
underthesea's named-entity model tags as people, and the words after "tên tôi là",
"tôi là", "em tên"... (which also catches names typed in lower case or without
diacritics). It errs on the side of masking; a masked message stays useful as a
training example because the words around the blanks carry the meaning.
"""

from __future__ import annotations

import re
import unicodedata

from bot.nlu.normalize import strip_diacritics

EMAIL = "[email]"
LINK = "[liên kết]"
HANDLE = "[tài khoản]"
PHONE = "[số điện thoại]"
NUMBER = "[số]"
NAME = "[tên]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|vn|net|org|me|ly)(?:/\S*)?\b")
_HANDLE = re.compile(r"(?<![\w@])@[\w.]{2,}")
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\s.\-()]*\d){7,13}(?![\w])")
_NUMBER = re.compile(r"\d+(?:[.,/:\-]\d+)*")
_AMOUNT = re.compile(r"(?<![\w.,])\d{1,3}(?:[.,]\d{3})+(?![\w])")
# matched on the text without diacritics, so "ten toi la lan" is caught as well
_NAME_CUE = re.compile(
    r"(?i)\b(?:ten(?:\s+(?:toi|em|minh|con|chau|chi|anh|to|tao|no))?\s+la|ten\s+(?:toi|em|"
    r"minh|con|chau|chi|anh)|(?:toi|em|minh|to|con|chau)\s+la|(?:chi|anh|em|ban|con|chau|vo|"
    r"chong)\s+(?:toi|em|minh)\s+(?:ten\s+)?la)\s+"
)
_WORD = re.compile(r"[^\W\d_]+")
MAX_NAME_WORDS = 4
NER_CHUNK_CHARS = 200
NER_MAX_PIECES = 5  # beyond ~1,000 characters only the rules mask names
# words after a cue that are not names ("tôi là người lao động", "em là nạn nhân")
_NOT_NAME_WORDS = (
    "người lao động nạn nhân học sinh viên công mẹ bố cha con vợ chồng chị anh em bạn "
    "ai gì một đang bị đã muốn cần không có phụ nữ nam trẻ"
)
_NOT_NAMES = frozenset(strip_diacritics(word) for word in _NOT_NAME_WORDS.split(" "))


def fold(text: str) -> str:
    """Lower case without diacritics, for searching."""
    return strip_diacritics(text.lower())


def mask_personal(text: str) -> str:
    visible = "".join(ch if ch.isprintable() or ch == "\n" else " " for ch in text)
    masked = _EMAIL.sub(EMAIL, unicodedata.normalize("NFC", visible))
    masked = _LINK.sub(LINK, masked)
    masked = _HANDLE.sub(HANDLE, masked)
    masked = _AMOUNT.sub(NUMBER, masked)
    masked = _PHONE.sub(PHONE, masked)
    masked = _NUMBER.sub(NUMBER, masked)
    masked = _mask_cued_names(masked)
    return _mask_recognised_names(masked)


def _mask_cued_names(text: str) -> str:
    """The name after a cue: the capitalised words that follow it (up to four), or,
    typed in lower case, the one word that follows it."""
    out, position = [], 0
    for cue in _NAME_CUE.finditer(strip_diacritics(text)):
        if cue.start() < position:
            continue
        span = _name_span(text, cue.end())
        if span is None:
            continue
        out.append(text[position : span[0]] + NAME)
        position = span[1]
    out.append(text[position:])
    return "".join(out)


def _name_span(text: str, start: int) -> tuple[int, int] | None:
    words: list[re.Match[str]] = []
    for word in _WORD.finditer(text, start):
        between = text[(words[-1].end() if words else start) : word.start()]
        if between.strip() or len(words) == MAX_NAME_WORDS:
            break
        if not words and strip_diacritics(word.group(0).lower()) in _NOT_NAMES:
            break
        if words and not (word.group(0)[0].isupper() and words[0].group(0)[0].isupper()):
            break
        words.append(word)
    if not words:
        return None
    return words[0].start(), words[-1].end()


def _mask_recognised_names(text: str) -> str:
    """Names underthesea's model finds, read in pieces of at most ``NER_CHUNK_CHARS``
    (its time grows much faster than the length of what it reads), only in pieces with
    a capital letter, and in at most ``NER_MAX_PIECES`` of them."""
    names: set[str] = set()
    pieces = [p for p in _pieces(text, NER_CHUNK_CHARS) if any(ch.isupper() for ch in p)]
    for piece in pieces[:NER_MAX_PIECES]:  # names the model finds are capitalised
        names |= _recognised_names(piece)
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", NAME, text)
    return text


def _recognised_names(text: str) -> set[str]:
    try:
        from underthesea import ner

        tagged = ner(text)
    except Exception:  # the model cannot run here: the rules above still masked
        return set()
    return {
        token
        for token, *_tags, label in tagged
        if label.endswith("-PER") and token.strip() and token not in (NAME, "tên")
    }


def _pieces(text: str, size: int) -> list[str]:
    """The text cut at spaces into pieces of at most ``size`` characters."""
    pieces: list[str] = []
    while len(text) > size:
        cut = text.rfind(" ", 0, size)
        cut = cut if cut > 0 else size
        pieces.append(text[:cut])
        text = text[cut:].lstrip()
    return [*pieces, text] if text else pieces
