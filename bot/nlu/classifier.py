"""The intent classifier: TF-IDF word 1-2-grams and character 2-5-grams, linear model.

Trained (with scikit-learn) on every example plus a copy with diacritics removed, so
text typed without diacritics is understood. Persisted as plain JSON and NumPy arrays,
never pickle: loading a model runs no code from disk. Inference uses ``features`` and
NumPy only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.errors import ConfigError
from bot.nlu.features import WORD_PATTERN, TfidfSpace
from bot.nlu.normalize import Normalizer, strip_diacritics

FEATURE_VERSION = "tfidf-word12-char25-v4"
ARRAYS_FILE = "arrays.npz"
META_FILE = "model.json"
SPACES: dict[str, tuple[str, int, int]] = {"word": ("word", 1, 2), "char": ("char_wb", 2, 5)}
REGULARISATION_C = 30.0


def _augment(
    texts: Sequence[str], labels: Sequence[str], normalizer: Normalizer
) -> tuple[list[str], list[str]]:
    out_texts: list[str] = []
    out_labels: list[str] = []
    for text, label in zip(texts, labels, strict=True):
        normal = normalizer.features(text)
        out_texts.append(normal)
        out_labels.append(label)
        bare = strip_diacritics(normal)
        if bare != normal:
            out_texts.append(bare)
            out_labels.append(label)
    return out_texts, out_labels


def _softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted = scores - scores.max()
    exp = np.exp(shifted)
    result: NDArray[np.float64] = exp / exp.sum()
    return result


def _fit_spaces(texts: list[str]) -> tuple[dict[str, TfidfSpace], Any]:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    spaces: dict[str, TfidfSpace] = {}
    blocks = []
    for name, (analyzer, low, high) in SPACES.items():
        vectorizer = TfidfVectorizer(
            analyzer=analyzer,
            ngram_range=(low, high),
            token_pattern=WORD_PATTERN if analyzer == "word" else None,
            sublinear_tf=True,
        )
        blocks.append(vectorizer.fit_transform(texts))
        vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        spaces[name] = TfidfSpace(analyzer, low, high, vocabulary, np.asarray(vectorizer.idf_))
    return spaces, sp.hstack(blocks).tocsr()


@dataclass
class IntentClassifier:
    spaces: dict[str, TfidfSpace]
    coef: NDArray[np.float64]
    intercept: NDArray[np.float64]
    classes: list[str]
    normalizer: Normalizer

    def __post_init__(self) -> None:
        self._offsets: list[int] = []
        offset = 0
        for space in self.spaces.values():
            self._offsets.append(offset)
            offset += len(space.idf)

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        normalizer: Normalizer | None = None,
        c: float = REGULARISATION_C,
    ) -> IntentClassifier:
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) < 2:
            raise ValueError("training needs examples of at least two intents")
        normalizer = normalizer or Normalizer()
        aug_texts, aug_labels = _augment(texts, labels, normalizer)
        spaces, matrix = _fit_spaces(aug_texts)
        model = LogisticRegression(C=c, max_iter=3000)
        model.fit(matrix, aug_labels)
        coef = np.asarray(model.coef_, dtype=np.float64)
        intercept = np.asarray(model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:  # two classes: make it a two-row softmax
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        classes = [str(name) for name in model.classes_]
        return cls(spaces, coef, intercept, classes, normalizer)

    def scores_of_features(self, normal: str) -> NDArray[np.float64]:
        """Scores of a text already in its ``Normalizer.features`` form."""
        total = self.intercept.copy()
        for offset, space in zip(self._offsets, self.spaces.values(), strict=True):
            indices, values = space.vector(normal)
            if len(indices):
                total += self.coef[:, indices + offset] @ values
        return total

    def known_words(self, text: str) -> int:
        return self.spaces["word"].known_words(self.normalizer.features(text))

    def rank_features(self, normal: str, top: int = 10) -> list[tuple[str, float]]:
        probabilities = _softmax(self.scores_of_features(normal))
        order = np.argsort(-probabilities)[:top]
        return [(self.classes[i], float(probabilities[i])) for i in order]

    def rank(self, text: str, top: int = 10) -> list[tuple[str, float]]:
        return self.rank_features(self.normalizer.features(text), top)

    # -- persistence -----------------------------------------------------------------

    def save(self, directory: Path, extra_meta: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, NDArray[Any]] = {"coef": self.coef, "intercept": self.intercept}
        meta: dict[str, Any] = {
            "feature_version": FEATURE_VERSION,
            "classes": self.classes,
            "abbreviations": self.normalizer.abbreviations,
            "vocabularies": {},
            **extra_meta,
        }
        for name, space in self.spaces.items():
            arrays[f"idf_{name}"] = space.idf
            meta["vocabularies"][name] = space.vocabulary
        np.savez_compressed(directory / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> tuple[IntentClassifier, dict[str, Any]]:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if meta.get("feature_version") != FEATURE_VERSION:
            raise ConfigError(
                f"the NLU model in {directory} was built by another version: "
                "run `donghanh nlu train`"
            )
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            spaces = {
                name: TfidfSpace(
                    analyzer, low, high, meta["vocabularies"][name], arrays[f"idf_{name}"]
                )
                for name, (analyzer, low, high) in SPACES.items()
            }
            classifier = cls(
                spaces,
                arrays["coef"],
                arrays["intercept"],
                list(meta["classes"]),
                Normalizer(meta.get("abbreviations", {})),
            )
        return classifier, meta
