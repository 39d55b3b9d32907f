"""``POST /model/parse`` in Rasa's shape, and the interpreter behind it on any text."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.config import load_settings
from bot.nlu.interpreter import FALLBACK_INTENT, ClassifierInterpreter, parse_payload
from bot.nlu.normalize import clean_text
from bot.nlu.training import load_interpreter

PARSE = "/model/parse"
THRESHOLD = 0.25
REQUEST_MAX_BYTES = 256 * 1024


# -- the endpoint, on one server for the module ------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LiveServer]:
    # /model/parse never touches the database: SQLite alone is enough here.
    from bot.storage.migrate import upgrade_database

    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('parse-db') / 'parse.sqlite3'}"
    upgrade_database(url)
    instance = tmp_path_factory.mktemp("parse-instance")
    shutil.copytree(model_dir, instance / "nlu-model", copy_function=os.link)
    settings = load_settings(
        {
            "DONGHANH_INSTANCE_DIR": str(instance),
            "DONGHANH_DATABASE_URL": url,
            "DONGHANH_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DONGHANH_PSEUDONYM_SECRET": "test-pseudonym-secret",
        }
    )
    live = LiveServer(settings).start(timeout=90)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


def _assert_rasa_shape(result: dict[str, Any], text: str) -> None:
    assert set(result) == {"text", "intent", "intent_ranking", "entities", "risk_cues"}
    assert result["text"] == text
    assert isinstance(result["entities"], list)
    assert isinstance(result["risk_cues"], list)
    for cue in result["risk_cues"]:
        assert set(cue) == {"cue", "confidence"}
    ranking = result["intent_ranking"]
    assert isinstance(ranking, list)
    for item in ranking:
        assert set(item) == {"name", "confidence"}
        assert isinstance(item["name"], str) and item["name"]
        assert isinstance(item["confidence"], float)
        assert 0.0 <= item["confidence"] <= 1.0
    confidences = [item["confidence"] for item in ranking]
    assert confidences == sorted(confidences, reverse=True)


@pytest.mark.slow
def test_parse_greeting_in_rasa_shape(client: httpx.Client) -> None:
    response = client.post(PARSE, json={"text": "xin chào"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    result = response.json()
    _assert_rasa_shape(result, "xin chào")
    assert result["intent"]["name"] == "greet"
    confidence = result["intent"]["confidence"]
    assert isinstance(confidence, float) and THRESHOLD <= confidence <= 1.0
    assert len(result["intent_ranking"]) > 1
    assert result["intent_ranking"][0] == result["intent"]
    assert result["entities"] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("cứu tôi với tôi bị nhốt", "emergency"),
        ("cuu toi voi toi bi nhot", "emergency"),
        ("/request_counsellor", "request_counsellor"),
        ("qwzx plorf vbnm", FALLBACK_INTENT),
    ],
    ids=["danger", "danger-without-diacritics", "button-payload", "gibberish"],
)
def test_parse_intents(client: httpx.Client, text: str, intent: str) -> None:
    result = client.post(PARSE, json={"text": text}).json()

    _assert_rasa_shape(result, text)
    assert result["intent"]["name"] == intent
    if intent == FALLBACK_INTENT:  # as Rasa's FallbackClassifier: first in the ranking too
        assert result["intent"]["confidence"] == THRESHOLD
        assert result["intent_ranking"][0] == {"name": FALLBACK_INTENT, "confidence": THRESHOLD}


@pytest.mark.slow
@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t", "\u200b\x00"], ids=["empty", "spaces", "newline-tab", "invisible"]
)
def test_parse_blank_text_has_no_intent(client: httpx.Client, text: str) -> None:
    response = client.post(PARSE, json={"text": text})

    assert response.status_code == 200
    result = response.json()
    _assert_rasa_shape(result, text.replace("\x00", ""))
    assert result["intent"] is None
    assert result["intent_ranking"] == []


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


BAD_BODIES: list[Any] = [
    pytest.param(b"{not json", 400, id="invalid-json"),
    pytest.param(b"", 400, id="empty-body"),
    pytest.param(_json(["xin chào"]), 400, id="json-array"),
    pytest.param(_json("xin chào"), 400, id="json-string"),
    pytest.param(_json({}), 400, id="missing-text"),
    pytest.param(_json({"message": "xin chào"}), 400, id="rest-shape-not-parse-shape"),
    pytest.param(_json({"text": 42}), 400, id="text-number"),
    pytest.param(_json({"text": None}), 400, id="text-null"),
    pytest.param(_json({"text": ["xin chào"]}), 400, id="text-list"),
    pytest.param(b'{"text": "\\ud800"}', 400, id="lone-surrogate"),
    pytest.param(b'\xff\xfe{"text": "hi"}', 400, id="non-utf8-bytes"),
    pytest.param(_json({"text": "x" * 20_001}), 400, id="text-over-field-limit"),
    pytest.param(_json({"text": "x" * REQUEST_MAX_BYTES}), 413, id="body-over-size-limit"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, id="deeply-nested-json"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
def test_parse_bad_bodies_are_clear_json_errors(
    client: httpx.Client, body: bytes, status: int
) -> None:
    response = client.post(
        PARSE, content=body, headers={"Content-Type": "application/json", "Connection": "close"}
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and error.strip()
    # ... and the endpoint still works afterwards.
    assert client.post(PARSE, json={"text": "xin chào"}).json()["intent"]["name"] == "greet"


# -- the interpreter itself never raises -----------------------------------------------------


@pytest.fixture(scope="module")
def interpreter(model_dir: Path) -> ClassifierInterpreter:
    return load_interpreter(model_dir, THRESHOLD)


_any_char = st.characters(blacklist_categories=())  # surrogates and control characters too
_texts = st.one_of(
    st.text(alphabet=_any_char, max_size=300),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    st.text(alphabet=st.sampled_from("\x00\x01\x1b\x7f\u200b\u200d\ufeff\r\n\t /{}"), max_size=50),
    st.builds(
        lambda chunk, size: (chunk * (20_000 // max(len(chunk), 1) + 1))[:size],
        st.text(alphabet=_any_char, min_size=1, max_size=20),
        st.integers(min_value=2_000, max_value=20_000),
    ),
    st.builds(lambda name, raw: f"/{name}{raw}", st.from_regex(r"[\w/\-]{1,20}", fullmatch=True),
              st.text(alphabet=_any_char, max_size=30)),
)  # fmt: skip


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=_texts)
@example(text="")
@example(text="\ud800")
@example(text="xin chào \udfff")
@example(text="\x00" * 100)
@example(text="x" * 20_000)
@example(text="cứu tôi " * 2_500)
@example(text='/greet{"name": "Hoa"}')
@example(text="/greet{not json}")
@example(text="/greet[1]")
@example(text="/nlu_fallback")
@example(text="/")
@example(text="//")
def test_interpreter_parse_never_raises(interpreter: ClassifierInterpreter, text: str) -> None:
    result = interpreter.parse(text)

    data = result.as_rasa_dict()
    assert isinstance(data, dict)
    json.dumps(data)  # always serialisable (surrogates are escaped)
    assert data["text"] == text
    assert isinstance(data["entities"], list)
    ranking = data["intent_ranking"]
    confidences = [item["confidence"] for item in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 and not math.isnan(c) for c in confidences)

    if not clean_text(text).strip():
        assert data["intent"] is None and ranking == []
        return
    intent = data["intent"]
    assert intent is not None
    assert intent["name"] in {*interpreter.intents, FALLBACK_INTENT}
    assert 0.0 <= intent["confidence"] <= 1.0
    assert ranking, "a visible text always has a ranking"
    assert intent == ranking[0]
    if intent["name"] == FALLBACK_INTENT and parse_payload(text) is None:
        # first, with the threshold; the rest below it
        assert intent["confidence"] == THRESHOLD
        assert all(item["confidence"] < THRESHOLD for item in ranking[1:])
    else:
        assert result.confidence >= THRESHOLD
    assert interpreter.parse(text) == result, "parsing is deterministic"


def test_parse_reports_entities_and_risk_cues(client: httpx.Client) -> None:
    text = "con tôi 15 tuổi ở vung tau bị giữ hộ chiếu"
    result = client.post("/model/parse", json={"text": text}).json()
    entities = {(e["entity"], e["value"]) for e in result["entities"]}
    assert ("age", "15") in entities
    assert ("province", "Hồ Chí Minh") in entities
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]]
    assert {"documents_withheld", "minor"} <= {c["cue"] for c in result["risk_cues"]}


def test_gibberish_falls_back(client: httpx.Client) -> None:
    for text in ("asdf qwer", "123456", "zxcvbnm lkjhgf"):
        result = client.post("/model/parse", json={"text": text}).json()
        assert result["intent"]["name"] == "nlu_fallback", (text, result["intent"])
