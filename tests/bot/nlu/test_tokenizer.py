"""Tokenisers keep offsets into the original text, whatever the text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.nlu.tokenizer import (
    RegexTokenizer,
    Tokenizer,
    UndertheseaTokenizer,
    feature_words,
    get_tokenizer,
)

TOKENIZERS: list[Tokenizer] = [RegexTokenizer(), UndertheseaTokenizer()]
VIETNAMESE = st.text(
    alphabet=st.sampled_from(list("tôi bị giữ hộ chiếu ở Campuchia, ko cho về!? 😢\n\t123.đ")),
    max_size=80,
)


@pytest.mark.parametrize("tokenizer", TOKENIZERS, ids=lambda t: t.name)
@hypothesis_settings(max_examples=120, deadline=None)
@given(text=st.one_of(VIETNAMESE, st.text(max_size=60)))
def test_offsets_slice_the_original_text(tokenizer: Tokenizer, text: str) -> None:
    tokens = tokenizer.tokenize(text)
    previous_end = 0
    for token in tokens:
        assert text[token.start : token.end] == token.text
        assert token.start >= previous_end  # in order, never overlapping
        previous_end = token.end


def test_underthesea_keeps_a_vietnamese_word_whole() -> None:
    text = "Tôi bị giữ hộ chiếu ở Campuchia"
    tokens = UndertheseaTokenizer().tokenize(text)
    assert "hộ chiếu" in [t.text for t in tokens]
    word = next(t for t in tokens if t.text == "hộ chiếu")
    assert (word.start, word.end) == (11, 19)
    assert "hộ_chiếu" in feature_words(UndertheseaTokenizer(), text)


def test_regex_tokenizer_gives_the_words_scikit_learn_would() -> None:
    assert feature_words(RegexTokenizer(), "Cứu, tôi với!!") == ["cứu", "tôi", "với"]


def test_unknown_tokenizer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer 'spacy'"):
        get_tokenizer("spacy")
