"""The export to a Rasa 3.x project (``donghanh export rasa DIR``): ``config.yml``,
``domain.yml``, ``data/nlu.yml`` and ``data/rules.yml``, in Rasa's format "3.1".

``build_rasa_project`` turns the NLU data, the response catalogue and the names of the
rasa-sdk actions into the four documents (plain dicts and lists, ready for YAML);
``write_rasa_project`` writes them as UTF-8 YAML. The CLI wires both.

What the export holds, and why:

* ``data/nlu.yml`` holds every example, written back as Rasa writes them: ``examples: |``
  blocks of ``- `` lines, ``[text](entity)`` when the value is the text and there is no
  role or group, ``[text]{"entity": ..., "role": ..., "group": ..., "value": ...}``
  otherwise (JSON kept readable, not ASCII-escaped), ``[text][{...}, {...}]`` for
  several entities on one span, and ``- text:`` entries for an intent whose examples
  carry metadata or line breaks. Each annotated example is parsed again before it is
  written, so what Rasa (and ``bot.nlu.rasa_yaml``) reads back is exactly the input;
  an example the format cannot express (markup-like text, overlapping entities) is an
  error, never written wrong. Consecutive examples of one intent share one block, so
  the order of the examples is kept. Synonyms, regexes (sorted, as Rasa sorts them) and
  lookup tables follow; lookup tables of one name are merged into one, as Rasa merges
  them within a file.
* ``domain.yml``: the intents (base names: ``faq`` once for every ``faq/<key>``), plus
  the intents and entities that buttons send (``/handoff_consent{"consent": "full"}``),
  so Rasa's ``RegexMessageHandler`` accepts them; the entities; every response as the
  catalogue gives it (``utter_faq/<key>`` are the retrieval responses); the custom
  actions and ``utter_faq``; the slots the actions set; the session settings.
* ``data/rules.yml``: one rule per intent, answering as ``bot/engine/policy.py`` does
  when no flow is running (this package may not import the engine, so the few names
  are repeated here and a test holds them equal): a retrieval intent gets its
  ``utter_<intent>`` (Rasa's ResponseSelector picks the topic), ``nlu_fallback``,
  ``affirm`` and ``deny`` get ``action_fallback``, then ``action_<intent>`` if the
  actions have it, else ``utter_<intent>``, else ``utter_not_ready``. The flows the
  engine owns (handing over to a counsellor, the screening questionnaire, erasing a
  person's data: ``FLOW_INTENTS``) have no counterpart here: their intents get
  ``utter_not_ready`` ("not ready yet; call 111"), as the engine answers an intent it
  has nothing for; a team moving to Rasa Pro rebuilds them there.
* ``config.yml``: ``recipe: default.v1`` with a pipeline for Vietnamese written with
  spaces between syllables (whitespace tokens, word and ``char_wb`` 2-5 counts, DIET,
  one ResponseSelector per retrieval intent, Rasa's FallbackClassifier defaults) and
  the RulePolicy, MemoizationPolicy and TEDPolicy.

What does not carry over, and a team moving to Rasa has to rebuild:

* buttons to one FAQ topic (``/faq/<key>``, and "Xem thêm": ``/faq/<key>{"detail":
  "more"}``) are kept as written, but Rasa's ``RegexMessageHandler`` accepts only the
  intents the domain lists, which names ``faq`` alone, so such a tap reaches Rasa as
  text; for the same reason ``action_fallback`` and ``action_answer_faq``, which look
  for ``faq/<key>`` in the intent ranking, find no topic there (Rasa puts the topic in
  ``response_selector``);
* ``action_find_service`` asks for the province once and expects the next message back
  (the engine does that); in Rasa that takes a form;
* the regexes are written for the text the engine folds first (lower case, no
  diacritics); Rasa's ``RegexFeaturizer`` runs them on the text as typed.

Writing: each file starts with ``EXPORT_MARKER``. The target directory must be missing,
empty, or hold only an earlier export: every file in it carries the marker (a Rasa
project of one's own, with the same file names, is refused, and so are a trained
``models/`` folder, symlinks or anything else), and the earlier export's files are
replaced (those the new export no longer has are removed). Every document is dumped
and read back before anything is written, so a document YAML would change is an error
and the directory is left as it was. The marker's line is not ASCII, which also keeps
Rasa from decoding ``\\uXXXX`` sequences (it does that to pure-ASCII files).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from itertools import groupby, pairwise
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from bot.errors import DonghanhError
from bot.nlu.rasa_yaml import (
    ENV_VAR_SCALAR,
    LATEST_FORMAT_VERSION,
    RESPONSE_KEY_DELIMITER,
    STRIP_SYMBOLS,
    ExampleEntity,
    NluData,
    TrainingExample,
    check_annotations_closed,
    find_entities,
    replace_entities,
)

FORMAT_VERSION = LATEST_FORMAT_VERSION
CONFIG_FILE = "config.yml"
DOMAIN_FILE = "domain.yml"
NLU_FILE = "data/nlu.yml"
RULES_FILE = "data/rules.yml"
ASSISTANT_ID = "donghanh"
LANGUAGE = "vi"
EXPORT_MARKER = "# Tạo bởi `donghanh export rasa` (Đồng Hành). Lần xuất sau sẽ ghi đè tệp này."
HEADER = (
    f"{EXPORT_MARKER}\n"
    "# Generated by `donghanh export rasa`; the next export overwrites this file.\n"
)

# As bot/engine/policy.py and bot/nlu/interpreter.py name them (a test holds them equal).
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTION = "action_fallback"
CONTEXT_ONLY_INTENTS = frozenset({"affirm", "deny"})
# Intents the engine's flows own (bot/engine/handoff.py, screening.py, policy.py): the
# handover to a counsellor, the screening questionnaire, erasing a person's data.
FLOW_INTENTS = frozenset(
    {
        "request_counsellor",
        "handoff_consent",
        "request_callback",
        "cancel_handoff",
        "start_screening",
        "screening",
        "delete_my_data",
    }
)
NOT_READY_RESPONSE = "utter_not_ready"
ACTION_PREFIX = "action_"
UTTER_PREFIX = "utter_"

# Slots the actions in actions/ set or read (a test runs them and holds this complete);
# set by the actions only, never by Rasa from entities, and not used to predict.
ACTION_SLOTS: dict[str, dict[str, Any]] = {
    "fallback_count": {"type": "float", "initial_value": 0, "min_value": 0, "max_value": 10},
    "province": {"type": "text"},
    "requested_slot": {"type": "text"},
}
SESSION_CONFIG = {"session_expiration_time": 60, "carry_over_slots_to_new_session": True}
FALLBACK_THRESHOLD = 0.3  # Rasa's defaults, for DIET's confidences (the engine's
AMBIGUITY_THRESHOLD = 0.1  # own threshold is calibrated on its own classifier)
TRAINING_EPOCHS = 100

# Rasa's RegexMessageHandler pattern for "/intent@confidence{entities}" messages.
_INTENT_PAYLOAD = re.compile(
    r"^/(?P<intent>[^{@]+)(?P<confidence>@[0-9.]+)?(?P<entities>\{.+\})?(?P<rest>.*)$",
    re.DOTALL,
)
_YAML_WIDTH = 4096  # as Rasa: never fold long lines
_METADATA_INTENT = "intent"
_METADATA_EXAMPLE = "example"


class RasaExportError(DonghanhError):
    """The data cannot be exported, or the target directory may not be written."""


class ResponseSource(Protocol):
    """What the export needs of the response catalogue
    (``bot.engine.responses.ResponseCatalog``, which this package may not import)."""

    def as_rasa_domain(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- building


def build_rasa_project(
    nlu: NluData, responses: ResponseSource, action_names: Iterable[str]
) -> dict[str, Any]:
    """The Rasa project: relative path -> YAML-ready document."""
    check_exportable(nlu)
    actions = sorted(set(action_names))
    domain_responses = copy.deepcopy(responses.as_rasa_domain())
    check_retrieval_responses(nlu, domain_responses)
    intents = domain_intents(nlu, domain_responses)
    return {
        CONFIG_FILE: rasa_config(nlu.retrieval_intents),
        DOMAIN_FILE: rasa_domain(nlu, intents, domain_responses, actions),
        NLU_FILE: rasa_nlu(nlu),
        RULES_FILE: rasa_rules(intents, nlu.retrieval_intents, domain_responses, actions),
    }


def check_exportable(nlu: NluData) -> None:
    if not nlu.examples:
        raise RasaExportError(
            "Không có câu mẫu NLU nào để xuất: một dự án Rasa cần ít nhất một ý định "
            "có câu mẫu (kiểm tra thư mục data/nlu)."
        )


def check_retrieval_responses(nlu: NluData, responses: Mapping[str, Any]) -> None:
    """Rasa's ResponseSelector needs an ``utter_faq/<key>`` for every ``faq/<key>``."""
    missing = [
        intent
        for intent in nlu.full_intents
        if RESPONSE_KEY_DELIMITER in intent and f"{UTTER_PREFIX}{intent}" not in responses
    ]
    if missing:
        raise RasaExportError(
            f"Thiếu câu trả lời cho {len(missing)} chủ đề có câu mẫu NLU: "
            f"{', '.join(f'{UTTER_PREFIX}{intent}' for intent in missing)}."
        )


def domain_intents(nlu: NluData, responses: Mapping[str, Any]) -> list[str]:
    """The NLU's intents (base names) and those the responses' buttons send."""
    sent = {_base_intent(intent) for intent, _ in button_intents(responses)}
    return sorted(set(nlu.intents) | sent)


def button_intents(responses: Mapping[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(intent, entity names) of every ``/intent{...}`` button payload, as Rasa's
    ``RegexMessageHandler`` reads it (entities that are not JSON are ignored)."""
    for variants in responses.values():
        for variant in variants or []:
            for button in variant.get("buttons") or []:
                parsed = parse_intent_payload(str(button.get("payload") or ""))
                if parsed is not None:
                    yield parsed


def parse_intent_payload(payload: str) -> tuple[str, list[str]] | None:
    """(intent, entity names) of a ``/intent@confidence{...}`` payload; ``None`` for text."""
    match = _INTENT_PAYLOAD.match(payload.strip())
    if match is None or not match["intent"].strip():
        return None
    try:
        entities = json.loads(match["entities"]) if match["entities"] else {}
    except json.JSONDecodeError:
        entities = {}
    names = sorted(str(name) for name in entities) if isinstance(entities, dict) else []
    return match["intent"].strip(), names


def _base_intent(intent: str) -> str:
    return intent.split(RESPONSE_KEY_DELIMITER, 1)[0].strip()


# --------------------------------------------------------------------------- config.yml


def rasa_config(retrieval_intents: Iterable[str]) -> dict[str, Any]:
    return {
        "recipe": "default.v1",
        "assistant_id": ASSISTANT_ID,
        "language": LANGUAGE,
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 2,
                "max_ngram": 5,
            },
            {"name": "DIETClassifier", "epochs": TRAINING_EPOCHS, "constrain_similarities": True},
            {"name": "EntitySynonymMapper"},
            *(
                {
                    "name": "ResponseSelector",
                    "retrieval_intent": intent,
                    "epochs": TRAINING_EPOCHS,
                    "constrain_similarities": True,
                }
                for intent in sorted(retrieval_intents)
            ),
            {
                "name": "FallbackClassifier",
                "threshold": FALLBACK_THRESHOLD,
                "ambiguity_threshold": AMBIGUITY_THRESHOLD,
            },
        ],
        "policies": [
            {"name": "RulePolicy", "core_fallback_threshold": FALLBACK_THRESHOLD},
            {"name": "MemoizationPolicy"},
            {
                "name": "TEDPolicy",
                "max_history": 5,
                "epochs": TRAINING_EPOCHS,
                "constrain_similarities": True,
            },
        ],
    }


# --------------------------------------------------------------------------- domain.yml


def rasa_domain(
    nlu: NluData, intents: list[str], responses: dict[str, Any], actions: list[str]
) -> dict[str, Any]:
    retrieval_actions = [f"{UTTER_PREFIX}{intent}" for intent in nlu.retrieval_intents]
    return {
        "version": FORMAT_VERSION,
        "intents": intents,
        "entities": domain_entities(nlu, responses),
        "slots": {
            name: {**spec, "influence_conversation": False, "mappings": [{"type": "custom"}]}
            for name, spec in ACTION_SLOTS.items()
        },
        "responses": responses,
        "actions": [*actions, *(name for name in retrieval_actions if name not in actions)],
        "session_config": dict(SESSION_CONFIG),
    }


def domain_entities(nlu: NluData, responses: Mapping[str, Any]) -> list[Any]:
    """Entity names, with the roles and groups the examples use (Rasa needs them listed)."""
    roles: dict[str, set[str]] = {}
    groups: dict[str, set[str]] = {}
    for entity in (entity for example in nlu.examples for entity in example.entities):
        roles.setdefault(entity.entity, set())
        groups.setdefault(entity.entity, set())
        if entity.role:
            roles[entity.entity].add(entity.role)
        if entity.group:
            groups[entity.entity].add(entity.group)
    names = set(roles) | {
        name for _, entity_names in button_intents(responses) for name in entity_names
    }
    return [
        _domain_entity(name, roles.get(name, set()), groups.get(name, set()))
        for name in sorted(names)
    ]


def _domain_entity(
    name: str, roles: set[str], groups: set[str]
) -> str | dict[str, dict[str, list[str]]]:
    if not roles and not groups:
        return name
    properties: dict[str, list[str]] = {}
    if roles:
        properties["roles"] = sorted(roles)
    if groups:
        properties["groups"] = sorted(groups)
    return {name: properties}


# --------------------------------------------------------------------------- rules.yml


def rasa_rules(
    intents: list[str],
    retrieval_intents: list[str],
    responses: Mapping[str, Any],
    actions: list[str],
) -> dict[str, Any]:
    if FALLBACK_ACTION not in actions:
        raise RasaExportError(
            f"Các action không có '{FALLBACK_ACTION}': Rasa cần nó cho ý định "
            f"'{FALLBACK_INTENT}' (khi không hiểu câu hỏi)."
        )
    rules = []
    for intent in [*intents, *([FALLBACK_INTENT] if FALLBACK_INTENT not in intents else [])]:
        target = rule_target(intent, retrieval_intents, responses, actions)
        if target is not None:
            rules.append(
                {"rule": f"{intent}: {target}", "steps": [{"intent": intent}, {"action": target}]}
            )
    return {"version": FORMAT_VERSION, "rules": rules}


def rule_target(
    intent: str, retrieval_intents: list[str], responses: Mapping[str, Any], actions: list[str]
) -> str | None:
    """What answers ``intent`` when no flow is running, as the engine's policy decides."""
    if intent in retrieval_intents:
        return f"{UTTER_PREFIX}{intent}"
    if intent == FALLBACK_INTENT or intent in CONTEXT_ONLY_INTENTS:
        return FALLBACK_ACTION
    if intent in FLOW_INTENTS:
        return NOT_READY_RESPONSE if NOT_READY_RESPONSE in responses else None
    if f"{ACTION_PREFIX}{intent}" in actions:
        return f"{ACTION_PREFIX}{intent}"
    if f"{UTTER_PREFIX}{intent}" in responses:
        return f"{UTTER_PREFIX}{intent}"
    return NOT_READY_RESPONSE if NOT_READY_RESPONSE in responses else None


# --------------------------------------------------------------------------- nlu.yml


def rasa_nlu(nlu: NluData) -> dict[str, Any]:
    items = [
        *_intent_items(nlu.examples),
        *_synonym_items(nlu.entity_synonyms),
        *_regex_items(nlu.regex_features),
        *_lookup_items(nlu.lookup_tables),
    ]
    return {"version": FORMAT_VERSION, "nlu": items}


def _intent_items(examples: list[TrainingExample]) -> Iterator[dict[str, Any]]:
    """One item per run of consecutive examples with one intent and intent metadata."""
    for (intent, _), run in groupby(examples, key=_intent_run_key):
        group = list(run)
        item: dict[str, Any] = {"intent": intent}
        intent_metadata = _metadata_part(group[0], _METADATA_INTENT)
        if intent_metadata is not None:
            item["metadata"] = copy.deepcopy(intent_metadata)
        item["examples"] = _intent_examples(intent, group)
        yield item


def _intent_run_key(example: TrainingExample) -> tuple[str, str]:
    metadata = _metadata_part(example, _METADATA_INTENT)
    return example.full_intent, json.dumps(metadata, sort_keys=True, default=str)


def _metadata_part(example: TrainingExample, part: str) -> Any:
    metadata = example.metadata or {}
    unknown = set(metadata) - {_METADATA_INTENT, _METADATA_EXAMPLE}
    if unknown:
        raise RasaExportError(
            f"Câu mẫu của ý định '{example.full_intent}' có metadata ngoài 'intent' và "
            f"'example' ({', '.join(sorted(unknown))}): định dạng Rasa không ghi được."
        )
    return metadata.get(part)


def _intent_examples(intent: str, examples: list[TrainingExample]) -> Any:
    """An ``examples: |`` block, or ``- text:`` entries when an example has its own
    metadata or a line break (as Rasa's writer decides)."""
    annotated = [
        annotate_example(example, intent, number) for number, example in enumerate(examples, 1)
    ]
    has_metadata = any(
        _metadata_part(example, _METADATA_EXAMPLE) is not None for example in examples
    )
    if not has_metadata and all(_fits_on_a_line(text) for text in annotated):
        return _block(annotated)
    entries = []
    for example, text in zip(examples, annotated, strict=True):
        entry: dict[str, Any] = {"text": text}
        example_metadata = _metadata_part(example, _METADATA_EXAMPLE)
        if example_metadata is not None:
            entry["metadata"] = copy.deepcopy(example_metadata)
        entries.append(entry)
    return entries


def annotate_example(example: TrainingExample, intent: str, number: int) -> str:
    """The example with its entities marked up, checked by parsing it again.

    ``number`` (1-based within the intent's block) names the example in errors without
    quoting it: added examples may come from what people wrote.
    """
    where = f"câu mẫu thứ {number} của ý định '{intent}'"
    text = example.text
    if not text or text != text.strip(STRIP_SYMBOLS):
        raise RasaExportError(f"{where} rỗng hoặc có khoảng trắng ở đầu/cuối.")
    marked = _markup(text, example.entities, where)
    try:
        check_annotations_closed(marked)
        parsed = find_entities(marked)
    except ValueError as error:
        raise RasaExportError(f"{where}: định dạng Rasa không ghi được ({error}).") from error
    if replace_entities(marked) != text or parsed != list(example.entities):
        raise RasaExportError(
            f"{where}: Rasa sẽ đọc câu này khác đi (chữ giống cú pháp đánh dấu thực thể "
            "[...](...), hoặc tên/giá trị thực thể không ghi được), nên không xuất."
        )
    return marked


def _markup(text: str, entities: tuple[ExampleEntity, ...], where: str) -> str:
    spans = sorted({(entity.start, entity.end) for entity in entities})
    for (_, end), (next_start, _) in pairwise(spans):
        if next_start < end:
            raise RasaExportError(f"{where}: hai thực thể chồng lên nhau, Rasa không ghi được.")
    parts = []
    position = 0
    for start, end in spans:
        if not 0 <= start < end <= len(text):
            raise RasaExportError(f"{where}: vị trí thực thể nằm ngoài câu.")
        on_span = [entity for entity in entities if (entity.start, entity.end) == (start, end)]
        parts += [text[position:start], _annotation(text[start:end], on_span)]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _annotation(entity_text: str, entities: list[ExampleEntity]) -> str:
    """Rasa's ``TrainingDataWriter.generate_entity``."""
    if len(entities) > 1:
        inner = ", ".join(_entity_json(entity_text, entity) for entity in entities)
        return f"[{entity_text}][{inner}]"
    entity = entities[0]
    if entity.value == entity_text and not entity.role and not entity.group:
        return f"[{entity_text}]({entity.entity})"
    return f"[{entity_text}]{_entity_json(entity_text, entity)}"


def _entity_json(entity_text: str, entity: ExampleEntity) -> str:
    data: dict[str, str] = {"entity": entity.entity}
    if entity.role:
        data["role"] = entity.role
    if entity.group:
        data["group"] = entity.group
    if entity.value != entity_text:
        data["value"] = entity.value
    return json.dumps(data, ensure_ascii=False)


def _synonym_items(synonyms: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    by_value: dict[str, list[str]] = {}
    for text, value in synonyms.items():
        by_value.setdefault(value, []).append(text)
    for value, texts in by_value.items():
        yield {
            "synonym": _name(value, "synonym"),
            "examples": _checked_block(texts, "synonym", value),
        }


def _regex_items(regexes: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
    for name, group in groupby(regexes, key=lambda regex: regex["name"]):
        patterns = [regex["pattern"] for regex in group]
        yield {"regex": _name(name, "regex"), "examples": _checked_block(patterns, "regex", name)}


def _lookup_items(tables: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    merged: dict[str, list[str]] = {}
    for table in tables:
        elements = table.get("elements")
        if not isinstance(elements, list):
            raise RasaExportError(f"Bảng tra cứu '{table.get('name')}' không phải danh sách.")
        merged.setdefault(str(table["name"]), []).extend(str(element) for element in elements)
    for name, elements in merged.items():
        yield {
            "lookup": _name(name, "lookup"),
            "examples": _checked_block(elements, "lookup", name),
        }


def _name(name: str, kind: str) -> str:
    if not name:
        raise RasaExportError(f"Một mục {kind} có tên rỗng.")
    return name


def _checked_block(entries: list[str], kind: str, name: str) -> str:
    for number, entry in enumerate(entries, 1):
        if not entry or entry != entry.strip(STRIP_SYMBOLS) or not _fits_on_a_line(entry):
            raise RasaExportError(
                f"Mục thứ {number} của {kind} '{name}' rỗng, có khoảng trắng ở đầu/cuối "
                "hoặc xuống dòng: định dạng Rasa không ghi được."
            )
    return _block(entries)


def _fits_on_a_line(text: str) -> bool:
    return len(text.splitlines()) == 1 and text.isprintable()


def _block(lines: list[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


# --------------------------------------------------------------------------- writing


def write_rasa_project(out_dir: Path, project: Mapping[str, Any]) -> list[Path]:
    """Write the project into ``out_dir`` (see the module docstring for which
    directories are refused); returns the files written."""
    texts = {_relative_path(name): render_document(name, doc) for name, doc in project.items()}
    earlier = check_export_target(out_dir)
    targets = {out_dir.joinpath(*path.parts): text for path, text in texts.items()}
    for stale in earlier:
        if stale not in targets:
            stale.unlink()
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    return list(targets)


def check_export_target(out_dir: Path) -> list[Path]:
    """The files of an earlier export in ``out_dir``; ``RasaExportError`` if it holds
    anything else. Reads only."""
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise RasaExportError(f"{out_dir} không phải là một thư mục.")
    earlier: list[Path] = []
    for path in sorted(out_dir.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        if path.is_symlink() or not path.is_file() or not _is_exported_file(path):
            raise RasaExportError(
                f"Thư mục {out_dir} đã có nội dung khác ({path.relative_to(out_dir)}), không "
                "phải một bản xuất trước: chọn thư mục trống hoặc thư mục chưa có."
            )
        earlier.append(path)
    return earlier


def _is_exported_file(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as file:
            return file.readline().rstrip("\n") == EXPORT_MARKER
    except (OSError, UnicodeDecodeError):
        return False


def _relative_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.suffix != ".yml":
        raise RasaExportError(f"'{name}' không phải đường dẫn tương đối tới một tệp .yml.")
    return path


def render_document(name: str, document: Any) -> str:
    """The file's text: the marker, then the YAML, checked by reading it back."""
    stream = io.StringIO()
    _yaml_writer().dump(_styled(document, top_level=True), stream)
    text = stream.getvalue()
    if _yaml_reader().load(text) != document:
        raise RasaExportError(f"{name}: YAML không giữ nguyên được dữ liệu, không xuất.")
    return HEADER + text


def _yaml_writer() -> YAML:
    """As Rasa's ``write_yaml``: block style, key order kept, no line folding."""
    yaml = YAML(typ="rt")
    yaml.width = _YAML_WIDTH
    yaml.allow_unicode = True
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.representer.add_representer(
        type(None),
        lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null"),
    )
    return yaml


def _yaml_reader() -> YAML:
    """As Rasa reads YAML: version 1.2 (``yes`` and ``no`` stay strings)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    return yaml


def _styled(value: Any, *, top_level: bool = False) -> Any:
    """Literal blocks for text with line breaks (``examples: |``); double quotes for the
    version and for ``${...}``, which Rasa would otherwise read as an environment
    variable."""
    if isinstance(value, Mapping):
        return {
            key: DoubleQuotedScalarString(item)
            if top_level and key == "version" and isinstance(item, str)
            else _styled(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_styled(item) for item in value]
    if isinstance(value, str):
        if "\n" in value:
            return LiteralScalarString(value)
        if ENV_VAR_SCALAR.match(value):
            return DoubleQuotedScalarString(value)
    return value
