"""The Rasa YAML NLU reader against what Rasa 3.6.21 itself produced.

The reference cases and goldens live in ``shared/rasa_format/``, a sibling of the repo.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bot.errors import DataFormatError
from bot.nlu.rasa_yaml import (
    SCHEMA_FILE,
    NluData,
    read_nlu_dir,
    read_nlu_file,
    read_nlu_text,
    to_golden,
    validate_nlu_document,
)

REPO = Path(__file__).resolve().parents[3]
FORMAT_DIR = REPO.parent / "shared" / "rasa_format"
CASE_FILES = sorted((FORMAT_DIR / "cases").glob("*.yml"))
MISSING = f"Rasa reference data not found at {FORMAT_DIR} (the shared/ checkout next to the repo)"

EXAMPLE_FIELDS = ("text", "intent", "intent_response_key", "entities", "metadata")
DATA_FIELDS = (
    "entity_synonyms",
    "regex_features",
    "lookup_tables",
    "intents",
    "retrieval_intents",
    "entities",
    "file",
)


def _cases(*fields: str) -> list[Any]:
    if not CASE_FILES:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=MISSING), id="missing")]
    return [
        pytest.param(case, field, id=case.stem if field is None else f"{case.stem}-{field}")
        for case in CASE_FILES
        for field in fields or (None,)
    ]


@cache
def _golden(case: Path) -> dict[str, Any]:
    golden_file = FORMAT_DIR / "goldens" / f"{case.stem}.golden.json"
    result: dict[str, Any] = json.loads(golden_file.read_text(encoding="utf-8"))
    return result


@cache
def _ours(case: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # asserted separately below
        return to_golden(read_nlu_file(case), case.name)


# --------------------------------------------------------------------------- goldens


@pytest.mark.parametrize(("case", "field"), _cases())
def test_example_count_matches_rasa(case: Path, field: None) -> None:
    assert len(_ours(case)["examples"]) == len(_golden(case)["examples"])


@pytest.mark.parametrize(("case", "field"), _cases(*EXAMPLE_FIELDS))
def test_example_field_matches_rasa(case: Path, field: str) -> None:
    ours = [example[field] for example in _ours(case)["examples"]]
    golden = [example[field] for example in _golden(case)["examples"]]
    assert ours == golden


@pytest.mark.parametrize(("case", "field"), _cases(*DATA_FIELDS))
def test_data_field_matches_rasa(case: Path, field: str) -> None:
    assert _ours(case)[field] == _golden(case)[field]


@pytest.mark.parametrize(("case", "field"), _cases())
def test_whole_result_matches_rasa(case: Path, field: None) -> None:
    assert _ours(case) == _golden(case)


def test_comment_line_in_examples_block_is_skipped_with_a_warning() -> None:
    vi_faq = FORMAT_DIR / "cases" / "vi_faq.yml"
    if not vi_faq.is_file():
        pytest.skip(MISSING)
    pattern = r"doesn't start with a '-' symbol: # a comment line inside the block"
    with pytest.warns(UserWarning, match=pattern) as record:
        data = read_nlu_file(vi_faq)
    assert [str(warning.message) for warning in record if "(line 19)" in str(warning.message)]
    deposit = [ex.text for ex in data.examples if ex.full_intent == "faq/deposit"]
    assert deposit == ["tiền ký quỹ có được trả lại không", "ky quy bao nhieu", "ký quỹ gửi ở đâu"]


def test_vendored_schema_equals_rasas() -> None:
    shared_schema = FORMAT_DIR / "schema" / "nlu.yml"
    if not shared_schema.is_file():
        pytest.skip(MISSING)
    vendored = SCHEMA_FILE.read_text(encoding="utf-8")
    header, body = _split_header(vendored)
    assert "From Rasa 3.6.21 (Apache License 2.0)" in header
    assert body == shared_schema.read_text(encoding="utf-8")
    yaml = YAML(typ="safe")
    assert yaml.load(vendored) == yaml.load(shared_schema.read_text(encoding="utf-8"))


def _split_header(text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    count = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return "".join(lines[:count]), "".join(lines[count:])


# --------------------------------------------------------------------------- behaviour

RICH_DOCUMENT = """\
version: "3.1"
nlu:
- intent: faq/deposit
  metadata:
    sensitive: true
  examples:
  - text: tiền [ký quỹ](topic:deposit) có được trả lại không
    metadata:
      source: facts
  - text: ky quy bao nhieu
- intent: find_service
  examples: |
    - ở [Hà Nội]{"entity": "province", "role": "home"} có ai giúp không
    - ở [ha noi]{"entity": "province", "value": "Hà Nội"} co ai giup khong
    - ở [ha noi]{"entity": "province", "value": "Hà Nội"} co ai giup khong
    - [Lào][{"entity": "country"}, {"entity": "destination", "group": "1"}] xa không
- intent: affirm
  examples: |
    - yes
- regex: phone
  examples: |
    - 09[0-9]{8}
- regex: account
  examples: |
    - [0-9]{12}
- lookup: country
  examples: |
    - Lào
- lookup: country
  examples: |
    - Campuchia
- synonym: Hà Nội
  examples: |
    - hn
"""


def test_reads_retrieval_intents_metadata_entities_and_synonyms() -> None:
    data = read_nlu_text(RICH_DOCUMENT, "rich.yml")
    first, second = data.examples[:2]
    assert (first.intent, first.intent_response_key, first.full_intent) == (
        "faq",
        "faq/deposit",
        "faq/deposit",
    )
    assert first.text == "tiền ký quỹ có được trả lại không"
    assert first.metadata == {"intent": {"sensitive": True}, "example": {"source": "facts"}}
    assert second.metadata == {"intent": {"sensitive": True}}
    assert data.entity_synonyms == {"ký quỹ": "deposit", "ha noi": "Hà Nội", "hn": "Hà Nội"}
    assert data.intents == ["affirm", "faq", "find_service"]
    assert data.retrieval_intents == ["faq"]
    assert data.entities == ["country", "destination", "province", "topic"]


def test_duplicates_are_dropped_and_multiple_entities_share_a_span() -> None:
    data = read_nlu_text(RICH_DOCUMENT, "rich.yml")
    services = [ex for ex in data.examples if ex.intent == "find_service"]
    assert len(services) == 3  # the repeated example is dropped, as Rasa does
    laos = services[2]
    assert laos.text == "Lào xa không"
    assert [(e.start, e.end, e.entity, e.group) for e in laos.entities] == [
        (0, 3, "country", None),
        (0, 3, "destination", "1"),
    ]
    assert services[0].entities[0].role == "home"


def test_regexes_sorted_and_lookup_tables_merged_within_a_file() -> None:
    data = read_nlu_text(RICH_DOCUMENT, "rich.yml")
    assert data.regex_features == [
        {"name": "account", "pattern": "[0-9]{12}"},
        {"name": "phone", "pattern": "09[0-9]{8}"},
    ]
    assert data.lookup_tables == [{"name": "country", "elements": ["Lào", "Campuchia"]}]


def test_yaml_is_read_as_yaml_1_2_like_rasa() -> None:
    data = read_nlu_text("nlu:\n- intent: no\n  examples: |\n    - yes\n", "v12.yml")
    assert data.examples[0].intent == "no"


def test_ascii_files_have_unicode_escapes_decoded_like_rasa() -> None:
    data = read_nlu_text("nlu:\n- intent: greet\n  examples: |\n    - ch\\u00e0o\n", "a.yml")
    assert data.examples[0].text == "chào"


def test_comment_line_warning_without_shared_data() -> None:
    doc = "nlu:\n- intent: greet\n  examples: |\n    - hi\n    # not an example\n    - alo\n"
    with pytest.warns(UserWarning, match=r"\(line 5\).*# not an example"):
        data = read_nlu_text(doc, "c.yml")
    assert [ex.text for ex in data.examples] == ["hi", "alo"]


def test_newer_format_version_is_skipped_with_a_warning() -> None:
    doc = 'version: "3.2"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n'
    with pytest.warns(UserWarning, match="file skipped"):
        assert read_nlu_text(doc, "new.yml") == NluData()


# --------------------------------------------------------------------------- malformed

MALFORMED = [
    pytest.param(
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n"
        " - intent: bye\n  examples: |\n    - bye\n",
        5,
        "invalid YAML",
        id="bad-indentation",
    ),
    pytest.param(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n'
        "- intent: bye\n- intent: thank\n  examples: |\n    - thanks\n",
        6,
        "intent 'bye' has no examples",
        id="intent-without-examples",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples: |\n    # only a comment\n",
        2,
        "intent 'greet' has no examples",
        id="intent-with-only-a-comment",
    ),
    pytest.param(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: 5\n',
        4,
        "is not of type 'str'",
        id="examples-is-an-int",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n  exmaples: |\n    - hey\n",
        5,
        "Key 'exmaples' was not defined",
        id="unknown-key-in-nlu-item",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  synonym: x\n  examples: |\n    - hi\n",
        3,
        "Key 'synonym' was not defined",
        id="two-kinds-in-one-item",
    ),
    pytest.param(
        "nlu:\n- intent: find_service\n  examples: |\n    - ở [Hà Nội](province) nhé\n"
        "    - tôi ở [Quảng Ninh](province\n",
        5,
        "unclosed entity annotation '[Quảng Ninh](province'",
        id="unclosed-entity-bracket",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples:\n  - text: hi\n  - text:\n    metadata: {a: 1}\n",
        5,
        "needs a 'text' string",
        id="text-entry-without-text",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples:\n  - text: hi\n  - metadata: {a: 1}\n",
        5,
        "needs a 'text' string",
        id="entry-without-text-key",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples:\n  - text: hi\n  - text: 42\n",
        5,
        "is not of type 'str'",
        id="non-string-example",
    ),
    pytest.param(
        'nlu:\n- intent: greet\n  examples: |\n    - hi\n    - [x]{"entity" "e"}\n',
        5,
        "incorrect entity annotation",
        id="bad-entity-json",
    ),
    pytest.param(
        'nlu:\n- intent: greet\n  examples: |\n    - hi\n    - [5]{"entity": "n", "value": 5}\n',
        5,
        '"value" in entity annotation',
        id="numeric-entity-value",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n    -\n",
        5,
        "empty example",
        id="empty-example",
    ),
    pytest.param(
        "nlu:\n- intent: a/b/c\n  examples: |\n    - hi\n",
        2,
        "more than one '/'",
        id="two-slashes-in-intent",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n  examples: |\n    - hey\n",
        5,
        "duplicate key",
        id="duplicate-key",
    ),
    pytest.param(
        "nlu:\n- intent: greet\n  examples:\n  - text: hi ${USER}\n",
        4,
        "environment variable",
        id="unquoted-env-var",
    ),
    pytest.param(
        "version: 3.1\nnlu:\n- intent: greet\n  examples: |\n    - hi\n",
        1,
        "is not of type 'str'",
        id="unquoted-version",
    ),
]


@pytest.mark.parametrize(("document", "line", "message"), MALFORMED)
def test_malformed_document_raises_with_line(document: str, line: int, message: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(DataFormatError) as caught:
            read_nlu_text(document, "bad.yml")
    assert caught.value.path == "bad.yml"
    assert message in caught.value.detail
    assert caught.value.line == line
    assert str(caught.value).startswith(f"bad.yml:{line}: ")


def test_validate_nlu_document_names_file_and_line() -> None:
    good = "nlu:\n- intent: greet\n  examples: |\n    - hi\n"
    validate_nlu_document(good, "good.yml")
    with pytest.raises(DataFormatError, match=r"^bad\.yml:3: .*Key 'foo' was not defined"):
        validate_nlu_document("nlu:\n- intent: greet\n  foo: 1\n", "bad.yml")


def test_read_nlu_file_reports_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: greet\n  examples: 5\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        read_nlu_file(bad)
    assert (caught.value.path, caught.value.line) == (str(bad), 3)


# --------------------------------------------------------------------------- directories


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_read_nlu_dir_merges_files_and_skips_test_folder(tmp_path: Path) -> None:
    _write(
        tmp_path / "a.yml",
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n    - [hn](city:Hà Nội)\n"
        "- regex: z\n  examples: |\n    - z+\n- lookup: city\n  examples: |\n    - Huế\n",
    )
    _write(
        tmp_path / "b.yaml",
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n    - alo\n"
        "- regex: a\n  examples: |\n    - a+\n- lookup: city\n  examples: |\n    - Vinh\n",
    )
    _write(tmp_path / "sub" / "c.yml", "nlu:\n- intent: bye\n  examples: |\n    - bye\n")
    _write(tmp_path / "test" / "t.yml", "nlu:\n- intent: held_out\n  examples: |\n    - x\n")
    _write(tmp_path / "responses.yml", "responses:\n  utter_greet:\n  - text: chào\n")
    _write(tmp_path / "notes.txt", "not yaml: [")

    data = read_nlu_dir(tmp_path)

    assert [ex.text for ex in data.examples] == ["hi", "hn", "alo", "bye"]
    assert data.intents == ["bye", "greet"]
    assert data.entity_synonyms == {"hn": "Hà Nội"}
    assert [regex["name"] for regex in data.regex_features] == ["a", "z"]
    assert data.lookup_tables == [  # Rasa merges same-name tables only within a file
        {"name": "city", "elements": ["Huế"]},
        {"name": "city", "elements": ["Vinh"]},
    ]
    everything = read_nlu_dir(tmp_path, exclude=())
    assert "held_out" in everything.intents


def test_read_nlu_dir_reports_the_broken_file(tmp_path: Path) -> None:
    _write(tmp_path / "ok.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    _write(tmp_path / "broken.yml", "nlu:\n- intent: greet\n  examples: |\n    - [x](e\n")
    with pytest.raises(DataFormatError) as caught:
        read_nlu_dir(tmp_path)
    assert (Path(caught.value.path).name, caught.value.line) == ("broken.yml", 4)


def test_project_training_data_reads_cleanly() -> None:
    data_dir = REPO / "data" / "nlu"
    if not data_dir.is_dir():
        pytest.skip(f"no training data at {data_dir}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        data = read_nlu_dir(data_dir, exclude=())
    assert data.examples
