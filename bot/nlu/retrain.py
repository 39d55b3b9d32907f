"""``python -m bot.nlu.retrain``: train a candidate model in a process of its own and
score it against the model in use, on the held-out test data.

The service runs this while it keeps answering (training takes tens of seconds of CPU,
which must not stall the event loop). It prints ``progress <percent> <stage>`` lines
and ends with one ``result <json>`` line: the candidate's path and hash, and the
accuracy of both models on the test examples whose intent both know, as written and
without diacritics. Whether to install the candidate is the caller's decision.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.nlu.classifier import IntentClassifier
from bot.nlu.evaluation import evaluate_intents
from bot.nlu.rasa_yaml import NluData, read_nlu_dir
from bot.nlu.training import current_model_path, train


def report(percent: int, stage: str) -> None:
    print(f"progress {percent} {stage}", flush=True)


def shared_test_data(test_dir: Path, *classifiers: IntentClassifier) -> NluData:
    """The test examples every classifier was trained to recognise (a retired topic's
    test examples would count against the model that no longer knows it)."""
    data = read_nlu_dir(test_dir, exclude=())
    known = set.intersection(*(set(c.classes) for c in classifiers))
    return NluData(examples=[e for e in data.examples if e.full_intent in known])


def accuracy(classifier: IntentClassifier, test: NluData) -> dict[str, float]:
    if not test.examples:
        return {}
    reports = evaluate_intents(lambda text: classifier.rank(text, 1)[0], test)
    return {variant: round(r.accuracy, 4) for variant, r in reports.items()}


def candidate_verdict(out_dir: Path, test_dir: Path, current_dir: Path | None) -> dict[str, Any]:
    candidate_path = current_model_path(out_dir)
    assert candidate_path is not None
    candidate, meta = IntentClassifier.load(candidate_path)
    current = None
    current_path = current_model_path(current_dir) if current_dir else None
    if current_path is not None:
        current, _ = IntentClassifier.load(current_path)
    test = shared_test_data(test_dir, *([candidate, current] if current else [candidate]))
    return {
        "model_path": str(candidate_path),
        "data_hash": str(meta.get("data_hash", "")),
        "examples": int(meta.get("examples", 0)),
        "intents": len(candidate.classes),
        "test_examples": len(test.examples),
        "candidate": accuracy(candidate, test),
        "current": accuracy(current, test) if current else {},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.retrain")
    parser.add_argument("--data", required=True, help="training data (Rasa NLU folder)")
    parser.add_argument("--out", required=True, help="where the candidate model goes")
    parser.add_argument("--test", required=True, help="held-out test data")
    parser.add_argument("--current", help="the model directory in use, to compare with")
    args = parser.parse_args(argv)
    summary = train(Path(args.data), Path(args.out), report)
    report(85, "scoring")
    verdict = candidate_verdict(
        Path(args.out), Path(args.test), Path(args.current) if args.current else None
    )
    verdict["seconds"] = round(summary.seconds, 1)
    print("result " + json.dumps(verdict, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
