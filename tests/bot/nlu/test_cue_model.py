"""The learned half of the risk-cue detector, and the two halves together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.errors import DataFormatError
from bot.nlu.classifier import IntentClassifier
from bot.nlu.cue_model import CueModel, read_cue_training, train_cue_model
from bot.nlu.cues import CUE_NAMES
from bot.nlu.evaluation import evaluate_cues, read_cue_examples
from bot.nlu.interpreter import ClassifierInterpreter
from bot.nlu.training import load_interpreter

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "nlu"


@pytest.fixture(scope="module")
def interpreter(model_dir: Path) -> ClassifierInterpreter:
    return load_interpreter(model_dir, 0.25, DATA / "risk_cues.yml")


@pytest.mark.parametrize("held_out", ["risk_cues_test.yml", "risk_cues_fresh.yml"])
def test_rules_and_model_together_reach_the_targets_on_held_out_sets(
    interpreter: ClassifierInterpreter, held_out: str
) -> None:
    report = evaluate_cues(
        lambda text: interpreter.parse(text).cue_names,
        read_cue_examples(DATA / "test" / held_out),
    )
    assert report.examples >= 200
    assert report.micro_recall >= 0.90, report
    assert report.micro_precision >= 0.85, report


def test_the_model_adds_recall_the_rules_alone_lack(interpreter: ClassifierInterpreter) -> None:
    examples = read_cue_examples(DATA / "test" / "risk_cues_fresh.yml")
    assert interpreter.cues is not None
    rules_only = evaluate_cues(lambda t: {c.cue for c in interpreter.cues.detect(t)}, examples)
    both = evaluate_cues(lambda t: interpreter.parse(t).cue_names, examples)
    assert both.micro_recall > rules_only.micro_recall


@pytest.mark.parametrize(
    "text",
    [
        "nếu bị chủ giữ hộ chiếu thì mình nên làm gì ạ",
        "nếu bị giữ hộ chiếu thì tôi nên làm gì",
        "đọc báo thấy nhiều người bị bán sang Trung Quốc, sợ quá",
    ],
)
def test_learned_cues_defer_to_the_rules_exclusions(
    interpreter: ClassifierInterpreter, text: str
) -> None:
    assert interpreter.parse(text).cue_names == set()


def tiny_classifier() -> IntentClassifier:
    texts = ["xin chào", "chào bạn", "tôi muốn hỏi", "cho hỏi với", "hello", "chào nhé"]
    labels = ["greet", "greet", "ask", "ask", "greet", "greet"]
    return IntentClassifier.train(texts, labels, calibrate=False)


def test_a_cue_is_learned_from_labelled_messages(tmp_path: Path) -> None:
    classifier = tiny_classifier()
    examples = [(f"họ đánh tôi {i}", {"violence"}) for i in range(6)] + [
        (f"tôi muốn hỏi chào {i}", set()) for i in range(6)
    ]
    model = train_cue_model(classifier, examples, CUE_NAMES)
    assert model is not None and model.cues == ["violence"]  # other cues: too few examples
    normal = classifier.normalizer.features("ho danh toi")
    assert [c.cue for c in model.detect(classifier.vectors(normal))] == ["violence"]
    assert model.detect(classifier.vectors(classifier.normalizer.features("chào bạn"))) == ()

    meta = model.save(tmp_path)
    loaded = CueModel.load(tmp_path, meta)
    assert loaded is not None and loaded.cues == model.cues
    np.testing.assert_array_equal(loaded.weights, model.weights)


def test_no_model_without_enough_examples() -> None:
    assert train_cue_model(tiny_classifier(), [("họ đánh tôi", {"violence"})], CUE_NAMES) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("examples: [\n", "invalid YAML"),
        ("version: 1\n", "expected 'examples:'"),
        ("examples:\n  - cues: [violence]\n", "example 1: needs a 'text'"),
        ("examples:\n  - text: x\n    cues: [beaten]\n", "unknown cues"),
    ],
)
def test_bad_training_file_names_itself(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "risk_cue_examples.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message) as caught:
        read_cue_training(path, CUE_NAMES)
    assert "risk_cue_examples.yml" in str(caught.value)
