"""The intent classifier: TF-IDF word and character n-grams with a linear model.

Trained on every example plus a copy with diacritics removed, so text typed without
diacritics is understood. Persisted as plain JSON and NumPy arrays (no pickle): loading
a model never runs code from disk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bot.nlu.normalize import Normalizer, strip_diacritics

FEATURE_VERSION = "tfidf-word12-char25-v3"
ARRAYS_FILE = "arrays.npz"
META_FILE = "model.json"

_VECTORIZER_PARAMS: dict[str, dict[str, Any]] = {
    "word": {
        "analyzer": "word",
        "ngram_range": (1, 2),
        "token_pattern": r"(?u)\b\w+\b",
        "sublinear_tf": True,
        "min_df": 1,
    },
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True, "min_df": 1},
}


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
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
    return result


@dataclass
class IntentClassifier:
    vectorizers: dict[str, TfidfVectorizer]
    coef: NDArray[np.float64]
    intercept: NDArray[np.float64]
    classes: list[str]
    normalizer: Normalizer

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        normalizer: Normalizer | None = None,
        c: float = 10.0,
    ) -> IntentClassifier:
        if len(set(labels)) < 2:
            raise ValueError("training needs examples of at least two intents")
        normalizer = normalizer or Normalizer()
        aug_texts, aug_labels = _augment(texts, labels, normalizer)
        vectorizers = {
            name: TfidfVectorizer(**params) for name, params in _VECTORIZER_PARAMS.items()
        }
        matrix = sp.hstack([v.fit_transform(aug_texts) for v in vectorizers.values()]).tocsr()
        model = LogisticRegression(C=c, max_iter=3000)
        model.fit(matrix, aug_labels)
        return cls(
            vectorizers=vectorizers,
            coef=np.asarray(model.coef_, dtype=np.float64),
            intercept=np.asarray(model.intercept_, dtype=np.float64),
            classes=[str(name) for name in model.classes_],
            normalizer=normalizer,
        )

    def _features(self, texts: Sequence[str]) -> sp.csr_matrix:
        normal = [self.normalizer.features(text) for text in texts]
        return sp.hstack([v.transform(normal) for v in self.vectorizers.values()]).tocsr()

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        scores = np.asarray(self._features(texts) @ self.coef.T) + self.intercept
        if len(self.classes) == 2:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        return _softmax(scores)

    def rank(self, text: str, top: int = 10) -> list[tuple[str, float]]:
        probabilities = self.predict_proba([text])[0]
        order = np.argsort(-probabilities)[:top]
        return [(self.classes[i], float(probabilities[i])) for i in order]

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
        for name, vectorizer in self.vectorizers.items():
            arrays[f"idf_{name}"] = vectorizer.idf_
            meta["vocabularies"][name] = {
                term: int(i) for term, i in vectorizer.vocabulary_.items()
            }
        np.savez_compressed(directory / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> tuple[IntentClassifier, dict[str, Any]]:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if meta.get("feature_version") != FEATURE_VERSION:
            raise ValueError(f"model in {directory} was built by another feature version")
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            vectorizers: dict[str, TfidfVectorizer] = {}
            for name, params in _VECTORIZER_PARAMS.items():
                vectorizer = TfidfVectorizer(**params)
                vectorizer.vocabulary_ = meta["vocabularies"][name]
                vectorizer.idf_ = arrays[f"idf_{name}"]
                vectorizers[name] = vectorizer
            classifier = cls(
                vectorizers=vectorizers,
                coef=arrays["coef"],
                intercept=arrays["intercept"],
                classes=list(meta["classes"]),
                normalizer=Normalizer(meta.get("abbreviations", {})),
            )
        return classifier, meta
