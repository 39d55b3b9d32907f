"""Text normalisation: what every feature and rule sees, never what is stored or shown.

- ``clean_text``: drops control characters and unpaired surrogates.
- ``Normalizer.features``: Unicode NFC, tone marks placed one way (underthesea's
  ``text_normalize``), lower case, teencode and abbreviations expanded from
  ``data/nlu/abbreviations.yml``, emoji dropped and repeated letters folded ("cuuuu").
- ``Normalizer.fold``: the same without diacritics, for rules that must match however
  people type.

The original text is never changed, so entity offsets always point into what the person
wrote.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from bot.datafiles import read_yaml
from bot.errors import DataFormatError

_REPEATED_LETTER = re.compile(r"([^\W\d_])\1{2,}")
_NON_WORD = re.compile(r"[^\w]+")
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")
_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_SYMBOL_CATEGORIES = {"So", "Sk", "Sm"}
TABLE_LIMIT = 20_000  # characters remembered by each translation table


class _CleanTable(dict[int, str]):
    """``str.translate`` table: line breaks and tabs to spaces, control characters and
    unpaired surrogates dropped, everything else kept. Filled on first sight."""

    def __missing__(self, codepoint: int) -> str:
        ch = chr(codepoint)
        if ch in "\t\n\r":
            out = " "
        elif unicodedata.category(ch) in _CONTROL_CATEGORIES:
            out = ""
        else:
            out = ch
        if len(self) < TABLE_LIMIT:  # bounded: odd input must not grow it for ever
            self[codepoint] = out
        return out


class _SymbolTable(dict[int, str]):
    """``str.translate`` table turning symbols (emoji, arrows, maths) into spaces."""

    def __missing__(self, codepoint: int) -> str:
        ch = chr(codepoint)
        out = " " if unicodedata.category(ch) in _SYMBOL_CATEGORIES else ch
        if len(self) < TABLE_LIMIT:  # bounded: odd input must not grow it for ever
            self[codepoint] = out
        return out


_CLEAN_TABLE = _CleanTable()
_SYMBOL_TABLE = _SymbolTable()


def clean_text(text: str) -> str:
    """Drop control characters and unpaired surrogates; keep everything a person sees."""
    return text.translate(_CLEAN_TABLE)


def strip_diacritics(text: str) -> str:
    """'Tôi bị giữ hộ chiếu' -> 'Toi bi giu ho chieu' (đ/Đ become d/D)."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", bare.replace("đ", "d").replace("Đ", "D"))


def _drop_symbols(text: str) -> str:
    return text.translate(_SYMBOL_TABLE)


_TOKEN = re.compile(r"\w+|[^\w\s]")


@functools.lru_cache(maxsize=TABLE_LIMIT)
def _normal_token(token: str) -> str:
    from underthesea.pipeline.text_normalize import token_normalize

    try:
        return str(token_normalize(token))
    except Exception:  # underthesea is a helper here, never a reason to fail a parse
        return token


def _place_tone_marks(text: str) -> str:
    """underthesea's ``text_normalize`` (its per-token tone-mark and character
    normalisation, with words and punctuation split apart), each token looked up once."""
    return " ".join(_normal_token(token) for token in _TOKEN.findall(text))


def load_abbreviations(path: Path) -> dict[str, str]:
    """Read ``{abbreviations: {short: expansion}}``; keys match whole words, any case."""
    loaded = read_yaml(path) or {}
    table = loaded.get("abbreviations") if isinstance(loaded, dict) else None
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip()
        for k, v in table.items()
    ):
        raise DataFormatError(path, "expected 'abbreviations:' mapping short forms to expansions")
    return {
        unicodedata.normalize("NFC", k.strip().lower()): unicodedata.normalize(
            "NFC", v.strip().lower()
        )
        for k, v in table.items()
    }


class Normalizer:
    def __init__(self, abbreviations: Mapping[str, str] | None = None) -> None:
        self.abbreviations = dict(abbreviations or {})

    def _expand(self, text: str) -> str:
        if not self.abbreviations:
            return text
        return _WORD.sub(lambda m: self.abbreviations.get(m.group(0), m.group(0)), text)

    def features(self, text: str) -> str:
        text = self._expand(unicodedata.normalize("NFC", clean_text(text)).lower())
        text = _place_tone_marks(_drop_symbols(text)).lower()
        text = _REPEATED_LETTER.sub(r"\1", text)
        return _SPACES.sub(" ", text).strip()

    def fold(self, text: str) -> str:
        return self.fold_features(self.features(text))

    @staticmethod
    def fold_features(features: str) -> str:
        """``fold`` of a text whose ``features`` form is already at hand."""
        bare = strip_diacritics(features)
        return _SPACES.sub(" ", _NON_WORD.sub(" ", bare)).strip()
