"""``donghanh nlu evaluate`` on any Rasa-format dataset, and training errors that name
the file and line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.nlu.evaluation import evaluate_intents, expected_calibration_error, intent_report

REPO = Path(__file__).resolve().parents[3]
SHARED_CASES = REPO.parent / "shared" / "rasa_format" / "cases"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "DONGHANH_LOG_LEVEL": "WARNING"},
        timeout=300,
    )


def test_intent_report_figures() -> None:
    report = intent_report(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert report.accuracy == 0.75
    assert report.per_intent["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert report.confusions == [("a", "b", 1)]


@pytest.mark.parametrize("tokenizer", ["regex", "underthesea"])
def test_evaluate_works_on_another_projects_rasa_data(tmp_path: Path, tokenizer: str) -> None:
    moodbot = SHARED_CASES / "moodbot_nlu.yml"
    if not moodbot.exists():
        pytest.skip(f"Rasa's moodbot data is not at {moodbot}")
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    shutil.copy(moodbot, tmp_path / "train" / "nlu.yml")
    shutil.copy(moodbot, tmp_path / "test" / "nlu.yml")
    done = run(
        "nlu",
        "evaluate",
        "--train",
        str(tmp_path / "train"),
        "--test",
        str(tmp_path / "test"),
        "--json",
        "--tokenizer",
        tokenizer,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"as_written", "no_diacritics"}
    assert report["as_written"]["accuracy"] >= 0.9  # its own training data
    assert 0 <= report["as_written"]["calibration_error"] <= 1
    assert {"greet", "goodbye", "mood_great"} <= set(report["as_written"]["per_intent"])


def test_training_on_a_malformed_file_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - xin chào\n- intent: stop\n',
        encoding="utf-8",
    )
    done = run("nlu", "train", "--data", str(tmp_path), "--out", str(tmp_path / "model"))
    assert done.returncode == 2
    assert "bad.yml:6" in done.stderr
    assert "Traceback" not in done.stderr


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0)
    assert expected_calibration_error([1.0, 1.0], [False, False]) == pytest.approx(1.0)
    assert expected_calibration_error([], []) == 0.0


def test_calibrated_confidences_on_the_held_out_set(model_dir: Path) -> None:
    from bot.nlu.rasa_yaml import read_nlu_dir
    from bot.nlu.training import load_interpreter

    interpreter = load_interpreter(model_dir, 0.25)
    assert interpreter.classifier.temperature < 1.0  # the raw model is under-confident
    test = read_nlu_dir(REPO / "data" / "nlu" / "test", exclude=())
    report = evaluate_intents(lambda t: interpreter.classifier.rank(t, 1)[0], test)
    assert (report["as_written"].calibration_error or 1.0) < 0.08
