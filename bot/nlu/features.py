"""TF-IDF features at inference, without scikit-learn.

Training fits scikit-learn's ``TfidfVectorizer``; serving only needs its vocabulary and
idf weights. Re-deriving the vector here (the same analyzers, sublinear tf, idf, l2
norm; a test checks equality with scikit-learn) keeps scikit-learn and SciPy out of the
server: a worker starts faster, holds less memory and parses a message in well under a
millisecond.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bot.nlu.tokenizer import RegexTokenizer, feature_words, get_tokenizer

WORD_PATTERN = r"(?u)\b\w+\b"
_WHITE_SPACES = re.compile(r"\s\s+")


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside word boundaries, exactly as scikit-learn's ``char_wb``."""
    grams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text.lower()).split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            offset = 0
            grams.append(padded[offset : offset + n])
            while offset + n < length:
                offset += 1
                grams.append(padded[offset : offset + n])
            if offset == 0:
                break
    return grams


def word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    grams: list[str] = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


@dataclass
class TfidfSpace:
    analyzer: str  # "word" or "char_wb"
    low: int
    high: int
    vocabulary: dict[str, int]
    idf: NDArray[np.float64]
    tokenizer_name: str = RegexTokenizer.name

    def __post_init__(self) -> None:
        self._pattern = re.compile(WORD_PATTERN)
        self._tokenizer = get_tokenizer(self.tokenizer_name)

    def words(self, text: str) -> list[str]:
        if self.tokenizer_name == RegexTokenizer.name:  # scikit-learn's own token pattern
            return list(self._pattern.findall(text.lower()))
        return feature_words(self._tokenizer, text)

    def grams(self, text: str) -> list[str]:
        if self.analyzer == "char_wb":
            return char_wb_ngrams(text, self.low, self.high)
        return word_ngrams(self.words(text), self.low, self.high)

    def known_words(self, text: str, *, letters_only: bool = False) -> int:
        """How many of the text's words the vocabulary knows (word spaces only); with
        ``letters_only``, numbers do not count ("<script>alert(1)</script>" knows none)."""
        return sum(
            1
            for token in self.words(text)
            if token in self.vocabulary and (not letters_only or not token.isdigit())
        )

    def vector(self, text: str) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        vocabulary = self.vocabulary
        known = [
            (i, c)
            for g, c in Counter(self.grams(text)).items()
            if (i := vocabulary.get(g)) is not None
        ]
        if not known:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64)
        indices = np.fromiter((i for i, _ in known), dtype=np.intp, count=len(known))
        counts = np.fromiter((c for _, c in known), dtype=np.float64, count=len(known))
        values = (1.0 + np.log(counts)) * self.idf[indices]
        norm = float(np.sqrt(values @ values))
        return indices, values / norm if norm else values
