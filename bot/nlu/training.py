"""Training and loading the NLU model, retraining only when the data changed.

Models live in ``<model_dir>/<data hash>/``; the file ``<model_dir>/CURRENT`` names the
one in use and is replaced atomically, so a reader never sees a half-written model.

The training data is ``data/nlu`` with two files that the database owns once the
service runs: ``faq.yml`` (each FAQ topic's examples, edited in the admin pages) and
``added.yml`` (examples added from the missed-messages queue). ``write_training_dir``
puts the files and the database's examples together; those two files are hashed by
their examples, not their bytes, so the same examples give the same model whoever wrote
them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.datafiles import load_yaml
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


FAQ_EXAMPLES_FILE = "faq.yml"
ADDED_EXAMPLES_FILE = "added.yml"
EXAMPLE_FILES = frozenset({FAQ_EXAMPLES_FILE, ADDED_EXAMPLES_FILE})


def training_data_hash(data_dir: Path) -> str:
    digest = hashlib.sha256(FEATURE_VERSION.encode())
    examples: set[tuple[str, str]] = set()
    for path in training_files(data_dir):
        if path.parent == data_dir and path.name in EXAMPLE_FILES:
            examples.update(example_lines(path))
            continue
        digest.update(str(path.relative_to(data_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(json.dumps(sorted(examples), ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def example_lines(path: Path) -> list[tuple[str, str]]:
    """(intent, example as written) for every example of a Rasa NLU file."""
    loaded = load_yaml(path.read_text(encoding="utf-8")) or {}
    found = []
    for item in loaded.get("nlu") or []:
        if not isinstance(item, dict) or "intent" not in item:
            continue
        for line in str(item.get("examples") or "").splitlines():
            text = line.strip()
            if text.startswith("- ") and text[2:].strip():
                found.append((str(item["intent"]), text[2:].strip()))
    return found


def training_intents(data_dir: Path) -> set[str]:
    """Every intent the training files give examples of (a quick read, no checks)."""
    return {intent for path in training_files(data_dir) for intent, _ in example_lines(path)}


def printable(text: str) -> str:
    """One line of printable text: control characters (which YAML refuses) dropped,
    runs of whitespace made one space."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def examples_document(examples: Mapping[str, Sequence[str]]) -> str:
    """A Rasa NLU file (``version: "3.1"``) with these examples, intents in order."""
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in examples.items():
        if not texts:
            continue
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {printable(text)}" for text in texts]
    return "\n".join(lines) + "\n"


def write_training_dir(
    source_dir: Path,
    out_dir: Path,
    faq_examples: Mapping[str, Sequence[str]],
    added_examples: Mapping[str, Sequence[str]],
) -> Path:
    """``source_dir`` (``data/nlu``) with the database's examples in place of
    ``faq.yml`` (``faq_examples``: topic key -> examples) and as ``added.yml``."""
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(
        source_dir,
        out_dir,
        ignore=lambda folder, names: [
            n for n in names if Path(folder) == source_dir and n in EXAMPLE_FILES
        ],
    )
    faq = {f"faq/{key}": texts for key, texts in sorted(faq_examples.items())}
    (out_dir / FAQ_EXAMPLES_FILE).write_text(examples_document(faq), encoding="utf-8")
    if any(added_examples.values()):
        (out_dir / ADDED_EXAMPLES_FILE).write_text(
            examples_document(dict(sorted(added_examples.items()))), encoding="utf-8"
        )
    return out_dir


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


Progress = Callable[[int, str], None]


def _no_progress(percent: int, stage: str) -> None:
    return None


def train(data_dir: Path, model_dir: Path, progress: Progress = _no_progress) -> TrainSummary:
    """Train from ``data_dir`` into ``model_dir`` and make it the current model there;
    ``progress(percent, stage)`` hears how far it got."""
    started = time.perf_counter()
    progress(5, "reading")
    data_hash = training_data_hash(data_dir)
    data = read_nlu_dir(data_dir)
    progress(10, "intents")
    classifier = train_classifier(data, load_normalizer(data_dir))
    progress(60, "risk_cues")
    cue_model = _train_cue_model(classifier, data_dir)
    progress(75, "saving")
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
