"""Training and loading the NLU model, retraining only when the data changed.

Models live in ``<model_dir>/<data hash>/``; the file ``<model_dir>/CURRENT`` names the
one in use and is replaced atomically, so a reader never sees a half-written model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.nlu.classifier import FEATURE_VERSION, IntentClassifier
from bot.nlu.cue_model import CUE_EXAMPLES_FILE, CueModel, read_cue_training, train_cue_model
from bot.nlu.cues import CUE_NAMES, CueDetector
from bot.nlu.entities import EntityExtractor
from bot.nlu.interpreter import ClassifierInterpreter
from bot.nlu.normalize import Normalizer, load_abbreviations
from bot.nlu.rasa_yaml import NluData, read_nlu_dir

CURRENT_FILE = "CURRENT"


@dataclass(frozen=True)
class TrainSummary:
    model_path: Path
    data_hash: str
    examples: int
    intents: int
    seconds: float


RULE_FILES = frozenset({"risk_cues.yml"})  # read at load time; editing them needs no retraining


def training_files(data_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in data_dir.rglob("*")
        if path.suffix in {".yml", ".yaml"}
        and path.name not in RULE_FILES
        and "test" not in path.relative_to(data_dir).parts[:-1]
    )


def training_data_hash(data_dir: Path) -> str:
    digest = hashlib.sha256(FEATURE_VERSION.encode())
    for path in training_files(data_dir):
        digest.update(str(path.relative_to(data_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def current_model_path(model_dir: Path) -> Path | None:
    pointer = model_dir / CURRENT_FILE
    if not pointer.exists():
        return None
    path = model_dir / pointer.read_text(encoding="utf-8").strip()
    return path if path.is_dir() else None


def is_model_current(model_dir: Path, data_dir: Path) -> bool:
    path = current_model_path(model_dir)
    return path is not None and path.name == training_data_hash(data_dir)


ABBREVIATIONS_FILE = "abbreviations.yml"


def load_normalizer(data_dir: Path) -> Normalizer:
    path = data_dir / ABBREVIATIONS_FILE
    return Normalizer(load_abbreviations(path) if path.exists() else {})


def train_classifier(data: NluData, normalizer: Normalizer) -> IntentClassifier:
    texts = [example.text for example in data.examples]
    labels = [example.full_intent for example in data.examples]
    return IntentClassifier.train(texts, labels, normalizer=normalizer)


def _point_current_at(model_dir: Path, name: str) -> None:
    tmp = model_dir / f".{CURRENT_FILE}.tmp"
    tmp.write_text(name, encoding="utf-8")
    tmp.replace(model_dir / CURRENT_FILE)


def _remove_old_models(model_dir: Path, keep: str) -> None:
    for child in model_dir.iterdir():
        if child.is_dir() and child.name != keep:
            shutil.rmtree(child, ignore_errors=True)


def train(data_dir: Path, model_dir: Path) -> TrainSummary:
    started = time.perf_counter()
    data_hash = training_data_hash(data_dir)
    data = read_nlu_dir(data_dir)
    classifier = train_classifier(data, load_normalizer(data_dir))
    cue_model = _train_cue_model(classifier, data_dir)
    staging = model_dir / f".staging-{data_hash}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    classifier.save(
        staging,
        {
            "cue_model": cue_model.save(staging) if cue_model else None,
            "data_hash": data_hash,
            "trained_at": datetime.now(UTC).isoformat(),
            "examples": len(data.examples),
            "entities": entity_data(data),
        },
    )
    final = model_dir / data_hash
    shutil.rmtree(final, ignore_errors=True)
    staging.replace(final)
    _point_current_at(model_dir, data_hash)
    _remove_old_models(model_dir, keep=data_hash)
    return TrainSummary(
        final, data_hash, len(data.examples), len(classifier.classes), time.perf_counter() - started
    )


def _train_cue_model(classifier: IntentClassifier, data_dir: Path) -> CueModel | None:
    path = data_dir / CUE_EXAMPLES_FILE
    if not path.exists():
        return None
    return train_cue_model(classifier, read_cue_training(path, CUE_NAMES), CUE_NAMES)


def ensure_model(data_dir: Path, model_dir: Path) -> TrainSummary | None:
    """Train when the model is missing or older than the data; None when it is current."""
    if is_model_current(model_dir, data_dir):
        return None
    return train(data_dir, model_dir)


def entity_data(data: NluData) -> dict[str, Any]:
    """What the entity extractor needs, kept in the model so a model stands alone."""
    return {
        "lookups": {t["name"]: list(t["elements"]) for t in data.lookup_tables},
        "regexes": [[r["name"], r["pattern"]] for r in data.regex_features],
        "synonyms": dict(data.entity_synonyms),
    }


def entity_extractor(meta: dict[str, Any]) -> EntityExtractor:
    stored = meta.get("entities", {})
    return EntityExtractor(
        stored.get("lookups", {}),
        [(name, pattern) for name, pattern in stored.get("regexes", [])],
        stored.get("synonyms", {}),
    )


def load_interpreter(
    model_dir: Path,
    threshold: float,
    cue_rules: Path | None = None,
    button_intents: frozenset[str] = frozenset(),
) -> ClassifierInterpreter:
    """Load the current model; risk-cue rules are read from ``cue_rules`` when given;
    ``button_intents`` are intents only buttons send (``/screening{...}``)."""
    path = current_model_path(model_dir)
    if path is None:
        raise FileNotFoundError(f"no trained NLU model in {model_dir}; run `donghanh nlu train`")
    classifier, meta = IntentClassifier.load(path)
    cues = (
        CueDetector.from_file(cue_rules, classifier.normalizer)
        if cue_rules is not None and cue_rules.exists()
        else None
    )
    cue_model = CueModel.load(path, meta.get("cue_model"))
    return ClassifierInterpreter(
        classifier, threshold, meta, entity_extractor(meta), cues, cue_model, button_intents
    )
