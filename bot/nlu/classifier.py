"""The intent classifier: TF-IDF word 1-2-grams and character 2-5-grams, linear model.

Trained (with scikit-learn) on every example plus a copy with diacritics removed, so
text typed without diacritics is understood. Persisted as plain JSON and NumPy arrays,
never pickle: loading a model runs no code from disk. Inference uses ``features`` and
NumPy only.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.errors import ConfigError
from bot.nlu.features import WORD_PATTERN, TfidfSpace
from bot.nlu.normalize import Normalizer, strip_diacritics
from bot.nlu.tokenizer import RegexTokenizer

FEATURE_VERSION = "tfidf-word12-char25-v5"
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


FeatureVectors = list[tuple[NDArray[np.intp], NDArray[np.float64]]]
CALIBRATION_FOLDS = 2


def _fitted_temperature(
    texts: Sequence[str], labels: Sequence[str], normalizer: Normalizer, c: float, tokenizer: str
) -> float:
    """The temperature minimising the log-loss of out-of-fold predictions, each
    example scored as written and without diacritics by a model that never saw it."""
    from scipy.optimize import minimize_scalar
    from sklearn.model_selection import StratifiedKFold

    counts = Counter(labels)
    if min(counts.values()) < CALIBRATION_FOLDS or len(counts) < 2:
        return 1.0  # too little data to hold any out: leave confidences as they are
    scores: list[NDArray[np.float64]] = []
    truth: list[int] = []
    folds = StratifiedKFold(CALIBRATION_FOLDS, shuffle=True, random_state=0)
    for train_index, held_index in folds.split(list(texts), list(labels)):
        model = IntentClassifier._fit(
            [texts[i] for i in train_index],
            [labels[i] for i in train_index],
            normalizer,
            c,
            tokenizer,
        )
        position = {name: i for i, name in enumerate(model.classes)}
        for i in held_index:
            if labels[i] not in position:
                continue
            normal = normalizer.features(texts[i])
            for variant in {normal, strip_diacritics(normal)}:
                scores.append(model.scores_of_features(variant))
                truth.append(position[labels[i]])
    if not scores:
        return 1.0

    def log_loss(log_t: float) -> float:
        t = math.exp(log_t)
        return -sum(
            float(np.log(_softmax(s / t)[k] + 1e-12)) for s, k in zip(scores, truth, strict=True)
        )

    best = minimize_scalar(log_loss, bounds=(math.log(0.05), math.log(5.0)), method="bounded")
    return round(math.exp(float(best.x)), 4)


def _softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted = scores - scores.max()
    exp = np.exp(shifted)
    result: NDArray[np.float64] = exp / exp.sum()
    return result


def _fit_spaces(texts: list[str], tokenizer_name: str) -> tuple[dict[str, TfidfSpace], Any]:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    spaces: dict[str, TfidfSpace] = {}
    blocks = []
    for name, (analyzer, low, high) in SPACES.items():
        space = TfidfSpace(analyzer, low, high, {}, np.empty(0), tokenizer_name)
        own_tokens = analyzer == "word" and tokenizer_name != RegexTokenizer.name
        vectorizer = TfidfVectorizer(
            analyzer=analyzer,
            ngram_range=(low, high),
            token_pattern=WORD_PATTERN if analyzer == "word" and not own_tokens else None,
            tokenizer=space.words if own_tokens else None,
            sublinear_tf=True,
        )
        blocks.append(vectorizer.fit_transform(texts))
        space.vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        space.idf = np.asarray(vectorizer.idf_)
        spaces[name] = space
    return spaces, sp.hstack(blocks).tocsr()


@dataclass
class IntentClassifier:
    spaces: dict[str, TfidfSpace]
    coef: NDArray[np.float64]
    intercept: NDArray[np.float64]
    classes: list[str]
    normalizer: Normalizer
    temperature: float = 1.0

    def __post_init__(self) -> None:
        self._offsets: list[int] = []
        offset = 0
        for space in self.spaces.values():
            self._offsets.append(offset)
            offset += len(space.idf)
        # One row per feature: gathering a message's few features reads whole rows.
        self._weights_by_feature = np.ascontiguousarray(self.coef.T)
        self.coef = self._weights_by_feature.T  # a view: the weights are held once

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        normalizer: Normalizer | None = None,
        c: float = REGULARISATION_C,
        tokenizer: str = RegexTokenizer.name,
        calibrate: bool = True,
    ) -> IntentClassifier:
        """Fit on every example plus a copy without diacritics; with ``calibrate``, also
        fit the softmax temperature on out-of-fold scores so confidences mean what they
        say (a linear model on sparse text features is otherwise under-confident)."""
        if len(set(labels)) < 2:
            raise ValueError("training needs examples of at least two intents")
        normalizer = normalizer or Normalizer()
        classifier = cls._fit(texts, labels, normalizer, c, tokenizer)
        if calibrate:
            classifier.temperature = _fitted_temperature(texts, labels, normalizer, c, tokenizer)
        return classifier

    @classmethod
    def _fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        normalizer: Normalizer,
        c: float,
        tokenizer: str,
    ) -> IntentClassifier:
        from sklearn.linear_model import LogisticRegression

        aug_texts, aug_labels = _augment(texts, labels, normalizer)
        spaces, matrix = _fit_spaces(aug_texts, tokenizer)
        model = LogisticRegression(C=c, max_iter=3000)
        model.fit(matrix, aug_labels)
        coef = np.asarray(model.coef_, dtype=np.float64)
        intercept = np.asarray(model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:  # two classes: make it a two-row softmax
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        classes = [str(name) for name in model.classes_]
        return cls(spaces, coef, intercept, classes, normalizer)

    @property
    def feature_count(self) -> int:
        return int(self._weights_by_feature.shape[0])

    def vectors(self, normal: str) -> FeatureVectors:
        """The TF-IDF vectors of a text in ``Normalizer.features`` form, one per space,
        with indices into the joined feature space."""
        out: FeatureVectors = []
        for offset, space in zip(self._offsets, self.spaces.values(), strict=True):
            indices, values = space.vector(normal)
            out.append((indices + offset, values))
        return out

    def scores_of_vectors(self, vectors: FeatureVectors) -> NDArray[np.float64]:
        total = self.intercept.copy()
        for indices, values in vectors:
            if len(indices):
                total += values @ self._weights_by_feature[indices]
        return total

    def scores_of_features(self, normal: str) -> NDArray[np.float64]:
        """Scores of a text already in its ``Normalizer.features`` form."""
        return self.scores_of_vectors(self.vectors(normal))

    def rank_vectors(self, vectors: FeatureVectors, top: int = 10) -> list[tuple[str, float]]:
        probabilities = _softmax(self.scores_of_vectors(vectors) / self.temperature)
        order = np.argsort(-probabilities)[:top]
        return [(self.classes[i], float(probabilities[i])) for i in order]

    def known_words(self, text: str) -> int:
        return self.spaces["word"].known_words(self.normalizer.features(text))

    def rank_features(self, normal: str, top: int = 10) -> list[tuple[str, float]]:
        return self.rank_vectors(self.vectors(normal), top)

    def rank(self, text: str, top: int = 10) -> list[tuple[str, float]]:
        return self.rank_features(self.normalizer.features(text), top)

    # -- persistence -----------------------------------------------------------------

    def save(self, directory: Path, extra_meta: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, NDArray[Any]] = {"coef": self.coef, "intercept": self.intercept}
        meta: dict[str, Any] = {
            "feature_version": FEATURE_VERSION,
            "classes": self.classes,
            "tokenizer": self.spaces["word"].tokenizer_name,
            "temperature": self.temperature,
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
                    analyzer,
                    low,
                    high,
                    meta["vocabularies"][name],
                    arrays[f"idf_{name}"],
                    meta.get("tokenizer", RegexTokenizer.name),
                )
                for name, (analyzer, low, high) in SPACES.items()
            }
            classifier = cls(
                spaces,
                arrays["coef"],
                arrays["intercept"],
                list(meta["classes"]),
                Normalizer(meta.get("abbreviations", {})),
                float(meta.get("temperature", 1.0)),
            )
        return classifier, meta
