"""Evaluating intent classification (and risk cues) on held-out Rasa-format data.

Works on any Rasa-format intent dataset: accuracy, macro-F1, per-intent precision and
recall, the most frequent confusions, and the same figures with diacritics stripped
from the test text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.metrics import precision_recall_fscore_support

from bot.datafiles import load_yaml
from bot.nlu.normalize import strip_diacritics
from bot.nlu.rasa_yaml import NluData


@dataclass(frozen=True)
class IntentReport:
    examples: int
    accuracy: float
    macro_f1: float
    per_intent: dict[str, dict[str, float]]
    confusions: list[tuple[str, str, int]]
    calibration_error: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "calibration_error": (
                None if self.calibration_error is None else round(self.calibration_error, 4)
            ),
            "per_intent": self.per_intent,
            "confusions": [
                {"expected": e, "predicted": p, "count": n} for e, p, n in self.confusions
            ],
        }


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """How far the top confidence is from the accuracy it claims (ECE, equal-width bins):
    0 means that, of the answers given with 80 % confidence, 80 % were right."""
    total = len(confidences)
    if total == 0:
        return 0.0
    error = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidences) if low < c <= high or (b == 0 and c == 0.0)]
        if members:
            mean_confidence = sum(confidences[i] for i in members) / len(members)
            accuracy = sum(correct[i] for i in members) / len(members)
            error += len(members) / total * abs(mean_confidence - accuracy)
    return error


def intent_report(
    expected: Sequence[str],
    predicted: Sequence[str],
    top: int = 15,
    confidences: Sequence[float] | None = None,
) -> IntentReport:
    labels = sorted(set(expected) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=labels, zero_division=0
    )
    per_intent = {
        label: {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f), 4),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        if s > 0
    }
    supported = [v["f1"] for v in per_intent.values()]
    confusions = Counter((e, p) for e, p in zip(expected, predicted, strict=True) if e != p)
    return IntentReport(
        examples=len(expected),
        accuracy=sum(e == p for e, p in zip(expected, predicted, strict=True))
        / max(len(expected), 1),
        macro_f1=sum(supported) / max(len(supported), 1),
        per_intent=per_intent,
        confusions=[(e, p, n) for (e, p), n in confusions.most_common(top)],
        calibration_error=(
            None
            if confidences is None
            else expected_calibration_error(
                confidences, [e == p for e, p in zip(expected, predicted, strict=True)]
            )
        ),
    )


def evaluate_intents(
    predict: Callable[[str], tuple[str, float]], test: NluData
) -> dict[str, IntentReport]:
    """Reports on the test text as written and with diacritics stripped; ``predict``
    gives the top intent and its confidence."""
    expected = [example.full_intent for example in test.examples]
    reports = {}
    for variant, transform in (("as_written", str), ("no_diacritics", strip_diacritics)):
        predictions = [predict(transform(e.text)) for e in test.examples]
        reports[variant] = intent_report(
            expected, [name for name, _ in predictions], confidences=[c for _, c in predictions]
        )
    return reports


@dataclass(frozen=True)
class CueReport:
    examples: int
    micro_precision: float
    micro_recall: float
    per_cue_recall: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "micro_precision": round(self.micro_precision, 4),
            "micro_recall": round(self.micro_recall, 4),
            "per_cue_recall": self.per_cue_recall,
        }


def read_cue_examples(path: Path) -> list[tuple[str, set[str]]]:
    loaded = load_yaml(path.read_text(encoding="utf-8"))
    return [(str(e["text"]), set(e.get("cues") or [])) for e in loaded["examples"]]


def evaluate_cues(
    detect: Callable[[str], set[str]], examples: list[tuple[str, set[str]]]
) -> CueReport:
    true_pos = false_pos = false_neg = 0
    hits: Counter[str] = Counter()
    wanted: Counter[str] = Counter()
    for text, want in examples:
        got = detect(text)
        true_pos += len(got & want)
        false_pos += len(got - want)
        false_neg += len(want - got)
        wanted.update(want)
        hits.update(got & want)
    return CueReport(
        examples=len(examples),
        micro_precision=true_pos / max(true_pos + false_pos, 1),
        micro_recall=true_pos / max(true_pos + false_neg, 1),
        per_cue_recall={cue: round(hits[cue] / wanted[cue], 4) for cue in sorted(wanted)},
    )
