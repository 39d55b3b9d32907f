"""Tokenisers: words with their character offsets in the text they came from.

Two implementations share one interface:

- ``RegexTokenizer`` ("regex"): runs of word characters, as scikit-learn's default
  token pattern; a few microseconds per message. The served model uses it.
- ``UndertheseaTokenizer`` ("underthesea"): underthesea's ``word_tokenize``, which
  joins the syllables of a Vietnamese word ("hộ chiếu"). It costs about a millisecond
  per message and splits text without diacritics badly ("bi giu", "chieu o"), so on
  this data it scores no better; ``donghanh nlu evaluate --tokenizer underthesea``
  measures it on any dataset.

Every token keeps ``start``/``end`` into the original text, so ``text[start:end]`` is
always ``token.text``. ``feature_words`` gives the lower-case units word features use,
a multi-syllable word joined by "_" ("hộ_chiếu").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_WORD = re.compile(r"(?u)\b\w+\b")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


class Tokenizer(Protocol):
    name: str

    def tokenize(self, text: str) -> list[Token]: ...


class RegexTokenizer:
    name = "regex"

    def tokenize(self, text: str) -> list[Token]:
        return [Token(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


class UndertheseaTokenizer:
    name = "underthesea"

    def tokenize(self, text: str) -> list[Token]:
        from underthesea import word_tokenize

        try:
            words = word_tokenize(text, use_token_normalize=False)
        except Exception:  # underthesea is a helper: odd input falls back to plain words
            return RegexTokenizer().tokenize(text)
        return _aligned(text, [str(word) for word in words])


def _aligned(text: str, words: list[str]) -> list[Token]:
    """Place each word's syllables in ``text`` in order; words not found are left out."""
    tokens: list[Token] = []
    cursor = 0
    for word in words:
        syllables = word.split()
        if not syllables:
            continue
        start = text.find(syllables[0], cursor)
        if start < 0:
            continue
        end = start + len(syllables[0])
        for syllable in syllables[1:]:
            found = text.find(syllable, end)
            if found < 0 or text[end:found].strip():
                break
            end = found + len(syllable)
        tokens.append(Token(text[start:end], start, end))
        cursor = end
    return tokens


TOKENIZERS: dict[str, type[RegexTokenizer] | type[UndertheseaTokenizer]] = {
    RegexTokenizer.name: RegexTokenizer,
    UndertheseaTokenizer.name: UndertheseaTokenizer,
}


def get_tokenizer(name: str) -> Tokenizer:
    try:
        return TOKENIZERS[name]()
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; known: {', '.join(TOKENIZERS)}") from None


def feature_words(tokenizer: Tokenizer, text: str) -> list[str]:
    """Lower-case word units for features: word characters only, syllables joined by _."""
    units = (" ".join(_WORD.findall(token.text.lower())) for token in tokenizer.tokenize(text))
    return [unit.replace(" ", "_") for unit in units if unit]
