"""The learned half of the risk-cue detector: one logistic model per cue.

The rules in ``risk_cues.yml`` are precise and explainable but miss wording nobody
wrote a pattern for; this model, trained on labelled messages
(``data/nlu/risk_cue_examples.yml``), catches much of that. A cue is reported when either
half finds it. The model reads the same TF-IDF vectors as the intent classifier, so it
adds one small matrix product per message and no extra text processing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.datafiles import read_yaml
from bot.domain import RiskCue
from bot.errors import DataFormatError
from bot.nlu.classifier import FeatureVectors, IntentClassifier
from bot.nlu.normalize import strip_diacritics

CUE_EXAMPLES_FILE = "risk_cue_examples.yml"
CUE_ARRAYS_FILE = "cues.npz"
DEFAULT_THRESHOLD = 0.5
MIN_POSITIVES = 5  # a cue with fewer labelled messages is left to the rules
REGULARISATION_C = 10.0


@dataclass
class CueModel:
    cues: list[str]
    weights: NDArray[np.float64]  # one row per feature, one column per cue
    intercept: NDArray[np.float64]
    threshold: float = DEFAULT_THRESHOLD

    def detect(self, vectors: FeatureVectors) -> tuple[RiskCue, ...]:
        scores = self.intercept.copy()
        for indices, values in vectors:
            if len(indices):
                scores += values @ self.weights[indices]
        probabilities = 1.0 / (1.0 + np.exp(-scores))
        return tuple(
            RiskCue(cue, round(float(p), 3))
            for cue, p in zip(self.cues, probabilities, strict=True)
            if p >= self.threshold
        )

    def save(self, directory: Path) -> dict[str, Any]:
        np.savez_compressed(
            directory / CUE_ARRAYS_FILE, weights=self.weights, intercept=self.intercept
        )
        return {"cues": self.cues, "threshold": self.threshold}

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any] | None) -> CueModel | None:
        if not meta or not (directory / CUE_ARRAYS_FILE).exists():
            return None
        with np.load(directory / CUE_ARRAYS_FILE, allow_pickle=False) as arrays:
            return cls(
                list(meta["cues"]),
                np.ascontiguousarray(arrays["weights"]),
                arrays["intercept"],
                float(meta.get("threshold", DEFAULT_THRESHOLD)),
            )


def read_cue_training(path: Path, known_cues: Sequence[str]) -> list[tuple[str, set[str]]]:
    """Labelled messages; a clear error with the file for anything malformed."""
    loaded = read_yaml(path)
    examples = loaded.get("examples") if isinstance(loaded, dict) else None
    if not isinstance(examples, list):
        raise DataFormatError(path, "expected 'examples:' with a list of {text, cues}")
    out: list[tuple[str, set[str]]] = []
    for number, item in enumerate(examples, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise DataFormatError(path, f"example {number}: needs a 'text' string")
        cues = set(item.get("cues") or [])
        unknown = cues - set(known_cues)
        if unknown:
            raise DataFormatError(path, f"example {number}: unknown cues {sorted(unknown)}")
        out.append((item["text"], cues))
    return out


def train_cue_model(
    classifier: IntentClassifier, examples: list[tuple[str, set[str]]], cue_names: Sequence[str]
) -> CueModel | None:
    """One balanced logistic model per cue with enough examples, on the classifier's
    features of each message as written and without diacritics."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    rows: list[FeatureVectors] = []
    labels: list[set[str]] = []
    for text, cues in examples:
        normal = classifier.normalizer.features(text)
        for variant in {normal, strip_diacritics(normal)}:
            rows.append(classifier.vectors(variant))
            labels.append(cues)
    trainable = [
        cue for cue in cue_names if sum(cue in wanted for wanted in labels) >= MIN_POSITIVES
    ]
    if not trainable or len(rows) < 2:
        return None
    matrix = _sparse(rows, classifier.feature_count, sp)
    weights = np.zeros((classifier.feature_count, len(trainable)))
    intercept = np.zeros(len(trainable))
    for column, cue in enumerate(trainable):
        target = np.array([cue in wanted for wanted in labels])
        if target.all():
            intercept[column] = 10.0
            continue
        model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=2000)
        model.fit(matrix, target)
        weights[:, column] = model.coef_[0]
        intercept[column] = model.intercept_[0]
    return CueModel(trainable, weights, intercept)


def _sparse(rows: list[FeatureVectors], width: int, sp: Any) -> Any:
    data: list[float] = []
    columns: list[int] = []
    pointers = [0]
    for vectors in rows:
        for indices, values in vectors:
            columns.extend(int(i) for i in indices)
            data.extend(float(v) for v in values)
        pointers.append(len(columns))
    return sp.csr_matrix((data, columns, pointers), shape=(len(rows), width))
