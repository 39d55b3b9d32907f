"""The export to a Rasa project (``bot/content/rasa_export.py``).

The shipped content (``data/nlu``, ``responses.yml`` with the ``data/faq`` answers, the
``actions`` package) is exported once per module and checked against Rasa itself:
``data/nlu.yml`` against Rasa's NLU schema and read back to the same examples,
``domain.yml`` against Rasa 3.6's domain schema (vendored in ``fixtures/``, validated
as Rasa's ``validate_yaml_schema`` does), the files against each other (rules, intents,
buttons), the rules against the engine's policy, and the slots and responses against
what the actions really do. The reference cases of ``shared/rasa_format`` survive the
round trip field for field; examples the format cannot express, empty data and
foreign directories are refused.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from pykwalify.core import Core
from pykwalify.errors import SchemaError
from rasa_sdk.executor import ActionExecutor
from ruamel.yaml import YAML

from bot.content import rasa_export
from bot.content.faq import faq_metadata, faq_responses, read_faq_dir, to_entry
from bot.content.rasa_export import (
    CONFIG_FILE,
    DOMAIN_FILE,
    EXPORT_MARKER,
    NLU_FILE,
    RULES_FILE,
    RasaExportError,
    build_rasa_project,
    write_rasa_project,
)
from bot.domain import IntentScore, ParseResult
from bot.engine import handoff, policy, screening
from bot.engine.actions import ActionResult, InProcessActionRunner
from bot.engine.policy import Policy, TurnContext
from bot.engine.responses import ResponseCatalog
from bot.nlu import interpreter
from bot.nlu.rasa_yaml import (
    SCHEMA_FILE,
    ExampleEntity,
    NluData,
    TrainingExample,
    read_nlu_dir,
    read_nlu_file,
)

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).with_name("fixtures")
DOMAIN_SCHEMA = FIXTURES / "rasa_domain_schema.yml"
RESPONSES_SCHEMA = FIXTURES / "rasa_responses_schema.yml"
SCHEMA_EXTENSIONS = FIXTURES / "rasa_pykwalify_extensions.py"
FORMAT_DIR = REPO.parent / "shared" / "rasa_format"
SHARED_NLU_SCHEMA = FORMAT_DIR / "schema" / "nlu.yml"
CASE_FILES = sorted((FORMAT_DIR / "cases").glob("*.yml"))
RASA_DEFAULT_INTENTS = {"restart", "back", "out_of_scope", "session_start", "nlu_fallback"}
PROJECT_FILES = {CONFIG_FILE, DOMAIN_FILE, NLU_FILE, RULES_FILE}


# -- helpers ---------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    """As Rasa reads YAML: version 1.2."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    return yaml.load(path.read_text(encoding="utf-8"))


def rasa_schema_errors(document: Path, schema_file: Path) -> list[str]:
    """Rasa's ``validate_yaml_schema``: the schema merged with the responses schema,
    Rasa's pykwalify extension loaded, the document read round-trip."""
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    schema = {**load_yaml(schema_file), **load_yaml(RESPONSES_SCHEMA)}
    reader = YAML(typ="rt")
    reader.version = (1, 2)
    source = reader.load(document.read_text(encoding="utf-8"))
    core = Core(source_data=source, schema_data=schema, extensions=[str(SCHEMA_EXTENSIONS)])
    with warnings.catch_warnings():  # pykwalify loads the extension with load_module()
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            core.validate(raise_exception=True)
        except SchemaError:
            return [str(error) for error in core.errors]
    return []


def nlu_schema() -> Path:
    """Rasa's NLU schema from ``shared/`` next to the repo, else the repo's copy of it
    (``tests/bot/nlu/test_rasa_format.py`` holds the two equal)."""
    return SHARED_NLU_SCHEMA if SHARED_NLU_SCHEMA.is_file() else SCHEMA_FILE


def example_fields(data: NluData) -> list[tuple[str, str, tuple[ExampleEntity, ...], Any]]:
    return [(ex.text, ex.full_intent, ex.entities, ex.metadata) for ex in data.examples]


def merged_lookups(data: NluData) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for table in data.lookup_tables:
        merged.setdefault(table["name"], []).extend(table["elements"])
    return merged


def read_quietly(path: Path) -> NluData:
    """A file or folder, without the warnings Rasa gives for the cases' comment lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_nlu_file(path) if path.is_file() else read_nlu_dir(path)


class StubResponses:
    """A response catalogue with an answer for every retrieval intent given."""

    def __init__(self, full_intents: Iterable[str], extra: dict[str, Any] | None = None) -> None:
        self._responses: dict[str, Any] = {
            f"utter_{intent}": [{"text": f"trả lời {intent}"}]
            for intent in full_intents
            if "/" in intent
        }
        self._responses["utter_not_ready"] = [{"text": "Phần này mình đang hoàn thiện."}]
        self._responses.update(extra or {})

    def as_rasa_domain(self) -> dict[str, Any]:
        return copy.deepcopy(self._responses)


class NamesOnlyRunner:
    """The actions' names, without running them: the policy's decision is enough."""

    def __init__(self, names: set[str]) -> None:
        self._names = set(names)

    @property
    def names(self) -> set[str]:
        return set(self._names)

    async def run(self, name: str, tracker: dict[str, Any]) -> ActionResult:
        return ActionResult()

    def use_domain(self, domain: dict[str, Any]) -> None:
        return None


def example(
    text: str, intent: str, *entities: ExampleEntity, metadata: dict[str, Any] | None = None
) -> TrainingExample:
    base, _, key = intent.partition("/")
    return TrainingExample(text, base, intent if key else None, entities, metadata)


# -- the shipped content, exported once --------------------------------------------------


@pytest.fixture(scope="module")
def shipped_nlu() -> NluData:
    return read_nlu_dir(REPO / "data" / "nlu")


@pytest.fixture(scope="module")
def catalog() -> ResponseCatalog:
    entries = [to_entry(faq) for faq in read_faq_dir(REPO / "data" / "faq")]
    return ResponseCatalog.from_file(REPO / "data" / "responses.yml").with_extra(
        faq_responses(entries), faq_metadata(entries)
    )


@pytest.fixture(scope="module")
def action_names() -> set[str]:
    return InProcessActionRunner(domain={}).names


@pytest.fixture(scope="module")
def project(
    shipped_nlu: NluData, catalog: ResponseCatalog, action_names: set[str]
) -> dict[str, Any]:
    return build_rasa_project(shipped_nlu, catalog, action_names)


@pytest.fixture(scope="module")
def small_project() -> dict[str, Any]:
    """A project small enough to write many times."""
    nlu = NluData(examples=[example("xin chào", "greet"), example("tiền cọc", "faq/deposit")])
    return build_rasa_project(nlu, StubResponses(nlu.full_intents), ["action_fallback"])


@pytest.fixture(scope="module")
def exported(project: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("rasa") / "project"
    write_rasa_project(out_dir, project)
    return out_dir


@pytest.fixture(scope="module")
def domain(exported: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(exported / DOMAIN_FILE)
    return loaded


@pytest.fixture(scope="module")
def rules(exported: Path) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = load_yaml(exported / RULES_FILE)["rules"]
    return loaded


# -- data/nlu.yml --------------------------------------------------------------------------


def test_exported_nlu_matches_rasas_own_schema(exported: Path) -> None:
    assert rasa_schema_errors(exported / NLU_FILE, nlu_schema()) == []


def test_the_schema_check_catches_a_broken_nlu_file(tmp_path: Path) -> None:
    broken = tmp_path / "nlu.yml"
    broken.write_text('version: "3.1"\nnlu:\n- intent: greet\n  exemples: |\n    - chào\n')
    assert rasa_schema_errors(broken, nlu_schema()) != []


def test_reading_the_export_back_gives_the_same_examples(
    exported: Path, shipped_nlu: NluData
) -> None:
    read_back = read_nlu_dir(exported / "data")
    assert len(read_back.examples) == len(shipped_nlu.examples) > 1000
    assert example_fields(read_back) == example_fields(shipped_nlu)
    assert read_back.entity_synonyms == shipped_nlu.entity_synonyms
    assert read_back.regex_features == shipped_nlu.regex_features
    assert merged_lookups(read_back) == merged_lookups(shipped_nlu)


def test_examples_are_literal_blocks_with_entities_marked_as_rasa_writes_them(
    exported: Path,
) -> None:
    text = (exported / NLU_FILE).read_text(encoding="utf-8")
    assert text.startswith(EXPORT_MARKER + "\n")
    assert '\nversion: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - xin chào\n' in text
    assert "- intent: faq/deposit\n  examples: |\n" in text
    assert '[cam]{"entity": "country", "value": "Campuchia"}' in text  # not ASCII-escaped
    assert "\\u" not in text


@pytest.mark.parametrize("case", CASE_FILES, ids=[case.stem for case in CASE_FILES])
def test_rasa_reference_cases_survive_the_round_trip(case: Path, tmp_path: Path) -> None:
    original = read_quietly(case)
    project = build_rasa_project(
        original, StubResponses(original.full_intents), ["action_fallback"]
    )
    write_rasa_project(tmp_path / "out", project)
    read_back = read_quietly(tmp_path / "out" / "data")
    assert example_fields(read_back) == example_fields(original)
    assert read_back.entity_synonyms == original.entity_synonyms
    assert read_back.regex_features == original.regex_features
    assert merged_lookups(read_back) == merged_lookups(original)
    assert rasa_schema_errors(tmp_path / "out" / NLU_FILE, nlu_schema()) == []


def test_every_kind_of_annotation_and_metadata_is_written_and_read_back(tmp_path: Path) -> None:
    city = ExampleEntity(16, 27, "Hồ Chí Minh", "province")
    nlu = NluData(
        examples=[
            example(
                "tôi ở Quảng Ninh", "find_service", ExampleEntity(6, 16, "Quảng Ninh", "province")
            ),
            example(
                "tôi ở sài gòn rồi", "find_service", ExampleEntity(6, 13, "Hồ Chí Minh", "province")
            ),
            example(
                "bị đưa sang Trung Quốc",
                "report_case",
                ExampleEntity(12, 22, "Trung Quốc", "country", role="destination", group="1"),
            ),
            example(
                "đi từ Hà Nội",
                "report_case",
                ExampleEntity(6, 12, "Hà Nội", "province"),
                ExampleEntity(6, 12, "Hà Nội", "place", role="origin"),
            ),
            example("dòng một\ndòng hai", "report_case"),
            example(
                "gặp người thật", "request_counsellor", metadata={"intent": {"sensitive": True}}
            ),
            example(
                "cho tôi gặp tư vấn viên",
                "request_counsellor",
                metadata={"intent": {"sensitive": True}, "example": {"source": "web"}},
            ),
            example("tiền đặt cọc", "faq/deposit"),
            example("xin chào", "greet"),
            example("tôi ở thành phố Hồ Chí Minh", "find_service", city),
        ],
        entity_synonyms={"sài gòn": "Hồ Chí Minh", "tp hcm": "Hồ Chí Minh"},
        regex_features=[{"name": "phone_number", "pattern": r"(0|\+84)[0-9]{9}"}],
        lookup_tables=[
            {"name": "country", "elements": ["Lào"]},
            {"name": "country", "elements": ["Campuchia"]},
        ],
    )
    project = build_rasa_project(nlu, StubResponses(nlu.full_intents), ["action_fallback"])
    write_rasa_project(tmp_path, project)
    text = (tmp_path / NLU_FILE).read_text(encoding="utf-8")
    read_back = read_nlu_dir(tmp_path / "data")

    assert example_fields(read_back) == example_fields(nlu)
    assert read_back.entity_synonyms == nlu.entity_synonyms
    assert merged_lookups(read_back) == {"country": ["Lào", "Campuchia"]}
    assert "- tôi ở [Quảng Ninh](province)\n" in text
    assert '- tôi ở [sài gòn]{"entity": "province", "value": "Hồ Chí Minh"} rồi\n' in text
    assert '[Trung Quốc]{"entity": "country", "role": "destination", "group": "1"}' in text
    assert '[Hà Nội][{"entity": "province"}, {"entity": "place", "role": "origin"}]' in text
    assert "- intent: greet\n  examples: |\n    - xin chào\n" in text
    # the intent split by another intent's examples keeps its place: a second block
    assert text.count("- intent: find_service\n") == 2
    assert rasa_schema_errors(tmp_path / NLU_FILE, nlu_schema()) == []


# -- domain.yml ----------------------------------------------------------------------------


def test_domain_matches_rasas_own_domain_schema(exported: Path) -> None:
    assert rasa_schema_errors(exported / DOMAIN_FILE, DOMAIN_SCHEMA) == []


def test_the_domain_schema_check_catches_a_broken_domain(tmp_path: Path) -> None:
    broken = tmp_path / "domain.yml"
    broken.write_text(
        'version: "3.1"\nslots:\n  province:\n    type: text\n'  # a slot needs mappings
        "responses:\n  utter_greet:\n  - buttons: []\n",  # a response needs a text
        encoding="utf-8",
    )
    errors = rasa_schema_errors(broken, DOMAIN_SCHEMA)
    assert any("mappings" in error for error in errors)
    assert any("text" in error for error in errors)


def test_domain_lists_base_intents_entities_responses_and_actions(
    domain: dict[str, Any], shipped_nlu: NluData, catalog: ResponseCatalog, action_names: set[str]
) -> None:
    assert domain["version"] == "3.1"
    assert domain["intents"].count("faq") == 1
    assert not [intent for intent in domain["intents"] if "/" in intent]
    assert set(shipped_nlu.intents) <= set(domain["intents"])
    assert set(shipped_nlu.entities) <= set(domain["entities"])
    assert domain["responses"] == catalog.as_rasa_domain()
    assert all(name.startswith("utter_") for name in domain["responses"])
    assert domain["actions"] == [*sorted(action_names), "utter_faq"]
    assert domain["session_config"]["carry_over_slots_to_new_session"] is True


def test_faq_answers_are_retrieval_responses_with_buttons_as_rasa_expects(
    domain: dict[str, Any], shipped_nlu: NluData
) -> None:
    faq_intents = [intent for intent in shipped_nlu.full_intents if intent.startswith("faq/")]
    assert len(faq_intents) >= 10
    for intent in faq_intents:
        assert f"utter_{intent}" in domain["responses"], intent
    deposit = domain["responses"]["utter_faq/deposit"][0]
    assert deposit["text"].startswith("Theo Điều 25")
    assert {"title": "Xem thêm", "payload": '/faq/deposit{"detail": "more"}'} in deposit["buttons"]
    assert all(set(button) == {"title", "payload"} for button in deposit["buttons"])


# -- the files against each other -------------------------------------------------------


def test_every_response_a_rule_uses_is_in_the_domain(
    domain: dict[str, Any], rules: list[dict[str, Any]]
) -> None:
    known = set(domain["responses"]) | set(domain["actions"])
    used = [step["action"] for rule in rules for step in rule["steps"] if "action" in step]
    assert used
    assert [name for name in used if name not in known] == []
    for name in used:
        if name.startswith("utter_"):  # a response, or the retrieval action of one
            assert name in domain["responses"] or any(
                response.startswith(f"{name}/") for response in domain["responses"]
            )


def test_every_intent_of_the_nlu_file_and_the_rules_is_in_the_domain(
    exported: Path, domain: dict[str, Any], rules: list[dict[str, Any]]
) -> None:
    nlu_items = load_yaml(exported / NLU_FILE)["nlu"]
    nlu_intents = {item["intent"].split("/")[0] for item in nlu_items if "intent" in item}
    assert "faq" in nlu_intents
    assert nlu_intents - set(domain["intents"]) == set()
    rule_intents = {step["intent"] for rule in rules for step in rule["steps"] if "intent" in step}
    assert rule_intents - set(domain["intents"]) - RASA_DEFAULT_INTENTS == set()


def test_every_button_payload_names_an_intent_and_entities_of_the_domain(
    domain: dict[str, Any],
) -> None:
    payloads = [
        str(button["payload"])
        for variants in domain["responses"].values()
        for variant in variants
        for button in variant.get("buttons") or []
        if str(button["payload"]).startswith("/")
    ]
    assert len(payloads) > 20
    for payload in payloads:
        parsed = rasa_export.parse_intent_payload(payload)
        assert parsed is not None, payload
        intent, entities = parsed
        base, _, key = intent.partition("/")
        assert base in domain["intents"], payload
        if key:  # a retrieval intent's topic: its answer must exist
            assert f"utter_{intent}" in domain["responses"], payload
        assert set(entities) <= set(domain["entities"]), payload
    assert {"handoff_consent", "cancel_handoff", "request_callback"} <= set(domain["intents"])


# -- data/rules.yml against the engine's policy -----------------------------------------------


def test_rules_answer_each_intent_once_with_the_fallback_rule(rules: list[dict[str, Any]]) -> None:
    by_intent = {rule["steps"][0]["intent"]: rule["steps"][1]["action"] for rule in rules}
    assert len(by_intent) == len(rules)
    assert all(len(rule["steps"]) == 2 for rule in rules)
    assert by_intent["nlu_fallback"] == "action_fallback"
    assert by_intent["faq"] == "utter_faq"
    assert by_intent["greet"] == "utter_greet"
    assert by_intent["emergency"] == "utter_emergency"
    assert by_intent["find_service"] == "action_find_service"


def test_names_shared_with_the_engine_are_the_engines(action_names: set[str]) -> None:
    assert rasa_export.FALLBACK_ACTION == policy.FALLBACK_ACTION
    assert rasa_export.FALLBACK_ACTION in action_names
    assert rasa_export.FALLBACK_INTENT == interpreter.FALLBACK_INTENT
    assert rasa_export.CONTEXT_ONLY_INTENTS == policy.CONTEXT_ONLY_INTENTS
    assert {
        handoff.REQUEST_INTENT,
        *handoff.BUTTON_INTENTS,
        policy.START_SCREENING_INTENT,
        screening.SCREENING_INTENT,
        policy.DELETE_INTENT,
    } == rasa_export.FLOW_INTENTS


async def test_rules_answer_as_the_policy_does_when_no_flow_runs(
    rules: list[dict[str, Any]], catalog: ResponseCatalog, action_names: set[str]
) -> None:
    engine = Policy(catalog, NamesOnlyRunner(action_names))
    compared = 0
    for rule in rules:
        intent, action = rule["steps"][0]["intent"], rule["steps"][1]["action"]
        if intent == "faq":  # Rasa's ResponseSelector answers; the engine runs an action
            assert action == "utter_faq"
            continue
        if intent in rasa_export.FLOW_INTENTS:  # the engine's own flows are not exported
            assert action == "utter_not_ready"
            continue
        parse = ParseResult(text="…", intent=IntentScore(intent, 0.99))
        decision = await engine.decide(parse, TurnContext(sender_id="s1", slots={}))
        assert decision.handled_by == action, intent
        compared += 1
    assert compared >= 10


# -- the actions against the domain ------------------------------------------------------------


async def test_the_domain_declares_every_slot_and_response_the_actions_use(
    domain: dict[str, Any],
) -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    hanoi = [{"entity": "province", "value": "Hà Nội", "start": 6, "end": 12}]
    more = [{"entity": "detail", "value": "more"}]
    runs = [
        ("action_fallback", "nlu_fallback", {}, []),
        ("action_fallback", "nlu_fallback", {"fallback_count": 1}, []),
        ("action_find_service", "find_service", {}, []),
        ("action_find_service", "find_service", {}, hanoi),
        ("action_find_service", "deny", {"requested_slot": "province"}, []),
        ("action_report_case", "report_case", {}, hanoi),
        ("action_answer_faq", "faq/deposit", {}, []),
        ("action_answer_faq", "faq/deposit", {}, more),
        ("action_answer_faq", "faq/unknown_topic", {}, []),
    ]
    slots: set[str] = set()
    responses: set[str] = set()
    for action, intent, slot_values, entities in runs:
        tracker = {
            "sender_id": "s1",
            "slots": slot_values,
            "latest_message": {
                "text": "tôi ở Hà Nội",
                "intent": {"name": intent, "confidence": 0.99},
                "intent_ranking": [{"name": intent, "confidence": 0.99}],
                "entities": entities,
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        }
        request = {"next_action": action, "sender_id": "s1", "tracker": tracker, "domain": domain}
        result = await executor.run(request)
        assert result is not None
        slots |= {event["name"] for event in result.events if event["event"] == "slot"}
        responses |= {str(message["response"]) for message in result.responses}
    assert slots == set(domain["slots"]) == set(rasa_export.ACTION_SLOTS)
    assert {"utter_faq/deposit", "utter_faq_more/deposit", "utter_services_local"} <= responses
    assert responses - set(domain["responses"]) == set()


# -- config.yml ------------------------------------------------------------------------------


def test_config_is_a_rasa_3_pipeline_for_vietnamese(exported: Path) -> None:
    config = load_yaml(exported / CONFIG_FILE)
    assert config["recipe"] == "default.v1"
    assert config["language"] == "vi"
    assert config["assistant_id"] == "donghanh"
    names = [component["name"] for component in config["pipeline"]]
    assert names == [
        "WhitespaceTokenizer",
        "RegexFeaturizer",
        "LexicalSyntacticFeaturizer",
        "CountVectorsFeaturizer",
        "CountVectorsFeaturizer",
        "DIETClassifier",
        "EntitySynonymMapper",
        "ResponseSelector",
        "FallbackClassifier",
    ]
    char_counts = config["pipeline"][4]
    assert (char_counts["analyzer"], char_counts["min_ngram"], char_counts["max_ngram"]) == (
        "char_wb",
        2,
        5,
    )
    assert config["pipeline"][7]["retrieval_intent"] == "faq"
    assert 0 < config["pipeline"][8]["threshold"] < 1
    policies = [entry["name"] for entry in config["policies"]]
    assert policies == ["RulePolicy", "MemoizationPolicy", "TEDPolicy"]


# -- writing --------------------------------------------------------------------------------


def test_the_export_writes_four_marked_utf8_files(exported: Path) -> None:
    written = {str(path.relative_to(exported)) for path in exported.rglob("*") if path.is_file()}
    assert written == PROJECT_FILES
    for name in PROJECT_FILES:
        text = (exported / name).read_bytes().decode("utf-8")
        assert text.splitlines()[0] == EXPORT_MARKER
    assert "Xin chào, mình là Đồng Hành" in (exported / DOMAIN_FILE).read_text(encoding="utf-8")


def test_writing_into_a_foreign_directory_is_refused(
    tmp_path: Path, small_project: dict[str, Any]
) -> None:
    (tmp_path / "notes.txt").write_text("của người khác", encoding="utf-8")
    with pytest.raises(RasaExportError, match=r"notes\.txt"):
        write_rasa_project(tmp_path, small_project)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "của người khác"


def test_a_rasa_project_of_ones_own_with_the_same_names_is_refused(
    tmp_path: Path, small_project: dict[str, Any]
) -> None:
    own_domain = 'version: "3.1"\nintents:\n- greet\n'
    (tmp_path / DOMAIN_FILE).write_text(own_domain, encoding="utf-8")
    with pytest.raises(RasaExportError, match=r"domain\.yml"):
        write_rasa_project(tmp_path, small_project)
    assert (tmp_path / DOMAIN_FILE).read_text(encoding="utf-8") == own_domain
    assert not (tmp_path / "data").exists()


def test_an_earlier_export_is_replaced_and_its_stale_files_removed(
    tmp_path: Path, small_project: dict[str, Any]
) -> None:
    write_rasa_project(tmp_path, small_project)
    stale = tmp_path / "data" / "stories.yml"
    stale.write_text(f"{EXPORT_MARKER}\nstories: []\n", encoding="utf-8")
    (tmp_path / DOMAIN_FILE).write_text(f"{EXPORT_MARKER}\nintents: []\n", encoding="utf-8")
    written = write_rasa_project(tmp_path, small_project)
    assert {str(path.relative_to(tmp_path)) for path in written} == PROJECT_FILES
    assert not stale.exists()
    assert load_yaml(tmp_path / DOMAIN_FILE)["intents"] == small_project[DOMAIN_FILE]["intents"]


def test_an_earlier_export_with_a_trained_model_beside_it_is_refused(
    tmp_path: Path, small_project: dict[str, Any]
) -> None:
    write_rasa_project(tmp_path, small_project)
    before = (tmp_path / NLU_FILE).read_text(encoding="utf-8")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(RasaExportError, match=r"model\.tar\.gz"):
        write_rasa_project(tmp_path, {**small_project, NLU_FILE: {"version": "3.1", "nlu": []}})
    assert (tmp_path / NLU_FILE).read_text(encoding="utf-8") == before


def test_a_file_as_target_and_paths_outside_it_are_refused(
    tmp_path: Path, small_project: dict[str, Any]
) -> None:
    target = tmp_path / "a-file.yml"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(RasaExportError):
        write_rasa_project(target, small_project)
    with pytest.raises(RasaExportError, match=r"\.\./escape\.yml"):
        write_rasa_project(tmp_path / "out", {"../escape.yml": {}})
    assert not (tmp_path / "escape.yml").exists()


def test_environment_variable_syntax_is_quoted_so_rasa_keeps_it_as_text(tmp_path: Path) -> None:
    nlu = NluData(examples=[example("xin chào", "greet")])
    responses = StubResponses([], {"utter_greet": [{"text": "${HOME}"}]})
    write_rasa_project(tmp_path, build_rasa_project(nlu, responses, ["action_fallback"]))
    text = (tmp_path / DOMAIN_FILE).read_text(encoding="utf-8")
    assert '- text: "${HOME}"\n' in text
    assert load_yaml(tmp_path / DOMAIN_FILE)["responses"]["utter_greet"] == [{"text": "${HOME}"}]


# -- bad input ------------------------------------------------------------------------------


def test_empty_nlu_data_is_refused_with_a_clear_error() -> None:
    with pytest.raises(RasaExportError, match="Không có câu mẫu NLU nào"):
        build_rasa_project(NluData(), StubResponses([]), ["action_fallback"])


def test_text_that_reads_as_entity_markup_is_refused_not_written_wrong() -> None:
    nlu = NluData(examples=[example("xem [đây](link) nhé", "greet")])
    with pytest.raises(RasaExportError, match="câu mẫu thứ 1 của ý định 'greet'"):
        build_rasa_project(nlu, StubResponses([]), ["action_fallback"])


def test_overlapping_entities_are_refused() -> None:
    overlapping = example(
        "ở Hà Nội",
        "find_service",
        ExampleEntity(2, 8, "Hà Nội", "province"),
        ExampleEntity(5, 8, "Nội", "place"),
    )
    with pytest.raises(RasaExportError, match="chồng lên nhau"):
        build_rasa_project(NluData(examples=[overlapping]), StubResponses([]), ["action_fallback"])


def test_a_topic_without_an_answer_is_refused() -> None:
    nlu = NluData(examples=[example("tiền cọc", "faq/deposit")])
    with pytest.raises(RasaExportError, match="utter_faq/deposit"):
        build_rasa_project(nlu, StubResponses([]), ["action_fallback"])


def test_actions_without_the_fallback_action_are_refused() -> None:
    nlu = NluData(examples=[example("xin chào", "greet")])
    with pytest.raises(RasaExportError, match="action_fallback"):
        build_rasa_project(nlu, StubResponses([]), ["action_find_service"])


def test_payload_parsing_follows_rasas_regex_message_handler() -> None:
    parse = rasa_export.parse_intent_payload
    assert parse('/handoff_consent{"consent": "full"}') == ("handoff_consent", ["consent"])
    assert parse("/faq/deposit") == ("faq/deposit", [])
    assert parse("/greet@0.9") == ("greet", [])
    assert parse("/greet{not json}") == ("greet", [])
    assert parse("xin chào") is None
    assert parse("/ ") is None
