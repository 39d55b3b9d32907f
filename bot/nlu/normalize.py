"""Text normalisation for features: Unicode NFC, lower case, folded repeats, no diacritics.

Features are computed on normalised text; the original text is never changed, so
entity offsets always point into what the person wrote.
"""

from __future__ import annotations

import re
import unicodedata

_REPEATED_LETTER = re.compile(r"(\w)\1{2,}")
_SPACES = re.compile(r"\s+")
_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def clean_text(text: str) -> str:
    """Drop control characters and unpaired surrogates; keep everything a person sees."""
    kept = (
        " " if ch in "\t\n\r" else ch
        for ch in text
        if ch in "\t\n\r" or unicodedata.category(ch) not in _CONTROL_CATEGORIES
    )
    return "".join(kept)


def strip_diacritics(text: str) -> str:
    """'Tôi bị giữ hộ chiếu' -> 'Toi bi giu ho chieu' (đ/Đ become d/D)."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", bare.replace("đ", "d").replace("Đ", "D"))


def normalize_for_features(text: str) -> str:
    """The form every classifier feature is computed from."""
    text = unicodedata.normalize("NFC", clean_text(text)).lower()
    text = _REPEATED_LETTER.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()
