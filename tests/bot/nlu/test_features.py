"""The inference-time TF-IDF equals scikit-learn's, n-gram for n-gram."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.nlu.features import WORD_PATTERN, TfidfSpace

CORPUS = [
    "tôi bị giữ hộ chiếu ở campuchia",
    "toi bi giu ho chieu",
    "xin chào bạn",
    "phí xuất khẩu lao động đi nhật bao nhiêu",
    "cứu tôi với họ đánh tôi",
    "a b c  d",
]


def fitted(analyzer: str, low: int, high: int) -> tuple[TfidfVectorizer, TfidfSpace]:
    vectorizer = TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=(low, high),
        token_pattern=WORD_PATTERN if analyzer == "word" else None,
        sublinear_tf=True,
    )
    vectorizer.fit(CORPUS)
    vocabulary = {k: int(v) for k, v in vectorizer.vocabulary_.items()}
    return vectorizer, TfidfSpace(analyzer, low, high, vocabulary, np.asarray(vectorizer.idf_))


def dense(space: TfidfSpace, text: str) -> np.ndarray:
    out = np.zeros(len(space.idf))
    indices, values = space.vector(text)
    out[indices] = values
    return out


@pytest.mark.parametrize(("analyzer", "low", "high"), [("word", 1, 2), ("char_wb", 2, 5)])
@hypothesis_settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(
        st.sampled_from(CORPUS), st.text(alphabet="tôi bịgiữhộchếu xnàoab  c\n", max_size=60)
    )
)
def test_same_vector_as_scikit_learn(analyzer: str, low: int, high: int, text: str) -> None:
    vectorizer, space = fitted(analyzer, low, high)
    expected = vectorizer.transform([text]).toarray()[0]
    np.testing.assert_allclose(dense(space, text), expected, rtol=1e-9, atol=1e-12)


def test_known_words_counts_vocabulary_hits() -> None:
    _, space = fitted("word", 1, 2)
    assert space.known_words("tôi bị xyz") == 2
    assert space.known_words("qwerty asdf") == 0
