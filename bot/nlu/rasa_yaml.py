"""Reader for Rasa's YAML NLU training-data format (version "3.1").

This module owns the meaning of the files in ``data/nlu/``: it turns an ``nlu:`` document
into ``NluData`` exactly as Rasa 3.6.21's own loader does (``rasa_yaml.py``,
``entities_parser.py``, ``synonyms_parser.py``, ``lookup_tables_parser.py`` and the
``TrainingData`` constructor), and it validates every document against Rasa's own
pykwalify schema, vendored in ``schema/nlu.yml``. The reference cases and Rasa's output
for them live in ``shared/rasa_format/``; the tests compare against them field by field.

What is mirrored from Rasa, on purpose, even where it is surprising:

* YAML is read as YAML 1.2 with ruamel (``yes``/``no`` stay strings), and a file that is
  pure ASCII has its ``\\uXXXX`` escapes decoded first (Rasa's emoji workaround).
* Inside an ``examples: |`` block every line must start with ``-``; any other line (a
  ``#`` comment, a blank line) is skipped with a ``UserWarning``.
* ``[text](entity)``, ``[text](entity:value)``, ``[text]{"entity": ...}`` and
  ``[text][{...}, {...}]`` annotations; a value that differs from the text is recorded
  as a synonym (a conflicting synonym overwrites the earlier one, with a warning).
* ``faq/key`` is intent ``faq`` with ``intent_response_key`` ``faq/key``; the base intent
  is stripped of surrounding whitespace. Identical examples are dropped; regex features
  are sorted by ``name+pattern``; lookup tables of the same name merge within one file.
* A ``version`` newer than "3.1" makes the whole file be skipped with a warning.

Where Rasa would crash, keep an example that cannot mean anything, or warn and drop a
whole block, this reader raises ``DataFormatError`` (with the file and 1-based line)
instead: an empty intent/synonym/regex/lookup name, a block without examples, an empty
example, a ``- text:`` entry without text, a malformed or unclosed entity annotation, an
entity value that is not a string, and an unquoted ``${...}`` (which Rasa treats as an
environment variable reference).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from packaging.version import InvalidVersion, Version
from pykwalify.core import Core
from pykwalify.errors import SchemaError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from bot.errors import DataFormatError

logger = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("schema") / "nlu.yml"
LATEST_FORMAT_VERSION = "3.1"

KEY_VERSION = "version"
KEY_NLU = "nlu"
KEY_INTENT = "intent"
KEY_SYNONYM = "synonym"
KEY_REGEX = "regex"
KEY_LOOKUP = "lookup"
KEY_EXAMPLES = "examples"
KEY_TEXT = "text"
KEY_METADATA = "metadata"
ITEM_KINDS = (KEY_INTENT, KEY_SYNONYM, KEY_REGEX, KEY_LOOKUP)

EXAMPLE_PREFIX = "-"
STRIP_SYMBOLS = "\n\r "
RESPONSE_KEY_DELIMITER = "/"

# Verbatim from rasa/shared/nlu/training_data/entities_parser.py (3.6.21):
# `[entity_text]((entity_type(:entity_synonym)?)|{entity_dict}|[list_entity_dicts])`
ENTITY_REGEX = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\]"
    r"(\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)"
    r"|\{(?P<entity_dict>[^}]+?)\}"
    r"|\[(?P<list_entity_dicts>.*?)\])"
)
SINGLE_ENTITY_DICT = re.compile(r"{(?P<entity_dict>[^}]+?)\}")
# Rasa registers this as an implicit YAML resolver for environment variables.
ENV_VAR_SCALAR = re.compile(r"^(.*)\$\{(.*)\}(.*)$")
# `[text](` or `[text]{` left over once every well-formed annotation is masked out.
_MASK = "\x00"
_UNCLOSED_ANNOTATION = re.compile(r"\[[^\]\x00]*\][({]")
_LONE_SURROGATE = re.compile(
    r"[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]"
)

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class ExampleEntity:
    """One entity annotation; offsets index the plain text (markup removed)."""

    start: int
    end: int
    value: str
    entity: str
    role: str | None = None
    group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Rasa's entity dict: ``role``/``group`` only when set."""
        data: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "entity": self.entity,
        }
        if self.role:
            data["role"] = self.role
        if self.group:
            data["group"] = self.group
        return data


@dataclass(frozen=True)
class TrainingExample:
    """One user utterance with its intent, as Rasa's ``Message.build`` makes it."""

    text: str
    intent: str
    intent_response_key: str | None
    entities: tuple[ExampleEntity, ...]
    metadata: dict[str, Any] | None

    @property
    def full_intent(self) -> str:
        """``faq/deposit`` for a retrieval intent, otherwise the intent."""
        return self.intent_response_key or self.intent


@dataclass
class NluData:
    """Everything one or more NLU files define."""

    examples: list[TrainingExample] = field(default_factory=list)
    entity_synonyms: dict[str, str] = field(default_factory=dict)
    regex_features: list[dict[str, str]] = field(default_factory=list)
    lookup_tables: list[dict[str, Any]] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        return sorted({example.intent for example in self.examples})

    @property
    def full_intents(self) -> list[str]:
        """Every intent as the classifier predicts it (``faq/deposit``, ``greet``)."""
        return sorted({example.full_intent for example in self.examples})

    @property
    def retrieval_intents(self) -> list[str]:
        return sorted({ex.intent for ex in self.examples if ex.intent_response_key})

    @property
    def entities(self) -> list[str]:
        return sorted({entity.entity for ex in self.examples for entity in ex.entities})

    def merge(self, other: NluData) -> NluData:
        """A new ``NluData`` holding both, as Rasa's ``TrainingData.merge``."""
        synonyms = dict(self.entity_synonyms)
        for text, synonym in other.entity_synonyms.items():
            _add_synonym(synonyms, text, synonym, "merging training data")
        return NluData(
            examples=_drop_duplicates([*self.examples, *other.examples]),
            entity_synonyms=synonyms,
            regex_features=_sorted_regexes(
                copy.deepcopy(self.regex_features + other.regex_features)
            ),
            lookup_tables=copy.deepcopy(self.lookup_tables + other.lookup_tables),
        )


# --------------------------------------------------------------------------- public API


def read_nlu_text(text: str, source: str = "<string>") -> NluData:
    """Read one NLU document; ``source`` names it in errors and warnings."""
    decoded = _decode_ascii_escapes(text, source)
    return _read_tree(decoded, _load_tree(decoded, source), source)


def read_nlu_file(path: Path | str) -> NluData:
    return read_nlu_text(_read_file_text(Path(path)), str(path))


def read_nlu_dir(path: Path | str, *, exclude: Iterable[str] = ("test",)) -> NluData:
    """Merge every ``*.yml``/``*.yaml`` with an ``nlu:`` key under ``path``, sorted.

    Files inside a sub-folder named in ``exclude`` are skipped; files without an ``nlu``
    key (responses, stories) are ignored.
    """
    data = NluData()
    for file in _yaml_files(Path(path), frozenset(exclude)):
        decoded = _decode_ascii_escapes(_read_file_text(file), str(file))
        tree = _load_tree(decoded, str(file))
        if isinstance(tree, dict) and KEY_NLU in tree:
            data = data.merge(_read_tree(decoded, tree, str(file)))
    return data


def to_golden(data: NluData, file_name: str) -> dict[str, Any]:
    """The shape of ``shared/rasa_format/goldens/*.golden.json``."""
    return {
        "entities": data.entities,
        "entity_synonyms": dict(data.entity_synonyms),
        "examples": [_example_to_golden(example) for example in data.examples],
        "file": file_name,
        "intents": data.intents,
        "lookup_tables": copy.deepcopy(data.lookup_tables),
        "regex_features": copy.deepcopy(data.regex_features),
        "retrieval_intents": data.retrieval_intents,
    }


def validate_nlu_document(doc_text: str, source: str) -> None:
    """Raise ``DataFormatError`` unless the document satisfies Rasa's NLU schema."""
    decoded = _decode_ascii_escapes(doc_text, source)
    _validate_tree(_load_tree(decoded, source), source)


# --------------------------------------------------------------------------- files


def _read_file_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text: {error.reason}") from error


def _yaml_files(root: Path, exclude: frozenset[str]) -> list[Path]:
    return sorted(
        file
        for file in root.rglob("*")
        if file.suffix in {".yml", ".yaml"}
        and file.is_file()
        and not exclude.intersection(file.relative_to(root).parts[:-1])
    )


# --------------------------------------------------------------------------- YAML


def _decode_ascii_escapes(text: str, source: str) -> str:
    """Rasa decodes ``\\uXXXX`` escapes in files that are pure ASCII (``read_yaml``)."""
    if not text.isascii():
        return text
    try:
        unescaped = text.encode("utf-8").decode("raw_unicode_escape")
    except UnicodeDecodeError as error:
        line = text.count("\n", 0, error.start) + 1
        raise DataFormatError(source, f"invalid \\u escape: {error.reason}", line=line) from error
    try:
        return unescaped.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError as error:
        lone = _LONE_SURROGATE.search(unescaped)
        where = unescaped.count("\n", 0, lone.start()) + 1 if lone else None
        raise DataFormatError(
            source, "a \\u escape is half a surrogate pair", line=where
        ) from error


def _yaml_parser(typ: str) -> YAML:
    parser = YAML(typ=typ)
    parser.version = (1, 2)
    parser.preserve_quotes = True
    return parser


def _load_tree(text: str, source: str) -> Any:
    """Round-trip load (keeps line numbers and quoting), as Rasa's schema check does."""
    return _load_yaml(text, source, "rt")


def _load_content(text: str, source: str) -> dict[str, Any]:
    """Safe load, as Rasa's reader does: plain dicts, lists and YAML 1.2 scalars."""
    content = _load_yaml(text, source, "safe")
    if not isinstance(content, dict):
        raise DataFormatError(source, "the document must be a mapping", line=1)
    return content


def _load_yaml(text: str, source: str, typ: str) -> Any:
    try:
        return _yaml_parser(typ).load(text) or {}
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise DataFormatError(source, f"invalid YAML: {problem}", line=line) from error


def _value_line(tree: Any, path: YamlPath) -> int | None:
    """1-based line where the value at ``path`` starts (nearest known ancestor)."""
    node, line = tree, _own_line(tree)
    for step in path:
        try:
            position = _lc(node).item(step) if isinstance(node, list) else _lc(node).value(step)
            node = node[step]
        except (AttributeError, KeyError, IndexError, TypeError):
            break
        line = position[0] + 1
    return line


def _key_line(tree: Any, path: YamlPath, key: str) -> int | None:
    """1-based line of ``key`` in the mapping at ``path``."""
    try:
        return int(_lc(_node_at(tree, path)).key(key)[0]) + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return _value_line(tree, path)


def _node_at(tree: Any, path: YamlPath) -> Any:
    node = tree
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _lc(node: Any) -> Any:
    """ruamel's line/column record of a round-trip loaded mapping or sequence."""
    return node.lc


def _own_line(node: Any) -> int:
    return int(node.lc.line) + 1 if hasattr(node, "lc") else 1


# --------------------------------------------------------------------------- schema


@cache
def _vendored_schema() -> dict[str, Any]:
    schema: dict[str, Any] = YAML(typ="safe").load(SCHEMA_FILE.read_text(encoding="utf-8"))
    # Rasa merges its responses schema in here; this reader ignores responses.
    schema["schema;responses"] = {"type": "any"}
    return schema


def _validate_tree(tree: Any, source: str) -> None:
    _reject_env_var_scalars(tree, source)
    errors = _schema_errors(tree)
    if errors:
        message, line = _describe_schema_errors(errors, tree)
        raise DataFormatError(source, f"does not match Rasa's NLU schema: {message}", line=line)


def _schema_errors(tree: Any) -> list[Any]:
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)  # as Rasa: no log noise
    core = Core(source_data=tree, schema_data=copy.deepcopy(_vendored_schema()))
    try:
        core.validate(raise_exception=True)
    except SchemaError:
        return list(core.errors)
    return []


def _describe_schema_errors(errors: list[Any], tree: Any) -> tuple[str, int | None]:
    """Pick the most telling error: ``matching: any`` reports every alternative's."""
    relevant = [error for error in errors if not _is_other_alternative(error, tree)] or errors
    best = min(relevant, key=_error_rank)
    same_place = [repr(error) for error in relevant if _error_rank(error) == _error_rank(best)]
    return "; ".join(dict.fromkeys(same_place)), _schema_error_line(best, tree)


def _error_rank(error: Any) -> tuple[int, int, str]:
    """Unknown keys first (they fail every alternative), then the deepest path."""
    unknown_key = isinstance(getattr(error, "key", None), str)
    return (0 if unknown_key else 1, -len(_path_steps(error.path)), error.path)


def _is_other_alternative(error: Any, tree: Any) -> bool:
    """True for an error that only says the item is not one of the *other* alternatives."""
    return _is_key_of_own_kind(error, tree) or _is_other_examples_form(error, tree)


def _is_key_of_own_kind(error: Any, tree: Any) -> bool:
    """A key the item's own kind allows is "not defined" only in other kinds' alternatives."""
    key = getattr(error, "key", None)
    node = _node_at(tree, _path_steps(error.path))
    kind = _item_kind(node) if isinstance(node, dict) else None
    return kind is not None and key in _keys_allowed_for(kind)


def _is_other_examples_form(error: Any, tree: Any) -> bool:
    """An intent's examples may be a block or a list; each form fails the other's check."""
    steps = _path_steps(error.path)
    if len(steps) != 3 or steps[-1] != KEY_EXAMPLES or getattr(error, "key", None) is not None:
        return False
    item = _node_at(tree, steps[:-1])
    if not isinstance(item, dict) or _item_kind(item) != KEY_INTENT:
        return False
    examples = _node_at(tree, steps)
    if isinstance(examples, str):
        return "is not a list" in repr(error)
    return isinstance(examples, list) and "is not of type 'str'" in repr(error)


@cache
def _keys_allowed_for(kind: str) -> frozenset[str]:
    """The keys the vendored schema allows in an nlu item of ``kind``."""
    alternatives = _vendored_schema()["mapping"][KEY_NLU]["sequence"]
    return frozenset(
        key
        for alternative in alternatives
        if kind in alternative["mapping"]
        for key in alternative["mapping"]
    )


def _schema_error_line(error: Any, tree: Any) -> int | None:
    steps = _path_steps(error.path)
    key = getattr(error, "key", None)
    if isinstance(key, str):
        return _key_line(tree, steps, key)
    return _value_line(tree, steps)


def _path_steps(path: str) -> YamlPath:
    return tuple(int(part) if part.isdigit() else part for part in path.split("/") if part)


def _reject_env_var_scalars(tree: Any, source: str) -> None:
    for path, key in _env_var_scalars(tree, ()):
        line = _key_line(tree, path, key) if key is not None else _value_line(tree, path)
        raise DataFormatError(
            source,
            "unquoted '${...}' is an environment variable reference to Rasa "
            "(rejected by its schema, or expanded from the environment); quote the value",
            line=line,
        )


def _env_var_scalars(node: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str | None]]:
    """Plain (unquoted) scalars that Rasa's implicit ``!env_var`` resolver would tag."""
    if isinstance(node, dict):
        for key, value in node.items():
            if _is_env_var_scalar(key):
                yield path, key
            yield from _env_var_scalars(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _env_var_scalars(value, (*path, index))
    elif _is_env_var_scalar(node):
        yield path, None


def _is_env_var_scalar(value: Any) -> bool:
    return type(value) is str and ENV_VAR_SCALAR.match(value) is not None


# --------------------------------------------------------------------------- reading


def _read_tree(decoded: str, tree: Any, source: str) -> NluData:
    _validate_tree(tree, source)
    content = _load_content(decoded, source)
    if not _is_supported_version(content.get(KEY_VERSION), source):
        return NluData()
    return _NluReader(source, tree).read(content.get(KEY_NLU))


def _is_supported_version(value: Any, source: str) -> bool:
    """Rasa's ``validate_training_data_format_version``: newer files are skipped."""
    if not value:
        logger.info(
            "%s has no 'version' key; reading it as version %s", source, LATEST_FORMAT_VERSION
        )
        return True
    try:
        version = Version(str(value).strip("\"'"))
    except InvalidVersion:
        _warn(f"{source}: 'version' must be a version string such as '{LATEST_FORMAT_VERSION}'")
        return True
    latest = Version(LATEST_FORMAT_VERSION)
    if version < latest:
        _warn(f"{source} has format version {value} < {LATEST_FORMAT_VERSION}; read as {latest}")
    if version <= latest:
        return True
    _warn(f"{source} has format version {value} > {LATEST_FORMAT_VERSION}; file skipped")
    return False


@dataclass(frozen=True)
class _RawExample:
    text: str
    line: int | None
    metadata: Any = None


class _NluReader:
    """Reads the items under one document's ``nlu:`` key (Rasa's ``RasaYAMLReader``)."""

    def __init__(self, source: str, tree: Any) -> None:
        self.source = source
        self.tree = tree
        self.examples: list[TrainingExample] = []
        self.synonyms: dict[str, str] = {}
        self.regexes: list[dict[str, str]] = []
        self.lookups: list[dict[str, Any]] = []

    def read(self, items: Any) -> NluData:
        for index, item in enumerate(items or []):
            self._read_item((KEY_NLU, index), item)
        return NluData(
            examples=_drop_duplicates(self.examples),
            entity_synonyms=self.synonyms,
            regex_features=_sorted_regexes(self.regexes),
            lookup_tables=self.lookups,
        )

    def _fail(self, message: str, line: int | None) -> NoReturn:
        raise DataFormatError(self.source, message, line=line)

    def _read_item(self, path: YamlPath, item: Any) -> None:
        kind = _item_kind(item) if isinstance(item, dict) else None
        if kind == KEY_INTENT:
            self._read_intent(path, item)
        elif kind == KEY_SYNONYM:
            self._read_synonym(path, item)
        elif kind == KEY_REGEX:
            self._read_regex(path, item)
        elif kind == KEY_LOOKUP:
            self._read_lookup(path, item)
        else:
            self._fail(
                f"an nlu item needs one of the keys {', '.join(ITEM_KINDS)}", self._line(path)
            )

    # -- intents

    def _read_intent(self, path: YamlPath, item: dict[str, Any]) -> None:
        name = self._item_name(path, item, KEY_INTENT)
        intent, response_key = self._split_intent(path, name)
        raw_examples = self._intent_examples(path, name, item.get(KEY_EXAMPLES))
        for raw in raw_examples:
            self.examples.append(self._example(raw, intent, response_key, item.get(KEY_METADATA)))

    def _split_intent(self, path: YamlPath, name: str) -> tuple[str, str | None]:
        """Rasa's ``Message.separate_intent_response_key`` plus ``sanitize_examples``."""
        parts = name.split(RESPONSE_KEY_DELIMITER)
        if len(parts) > 2:
            self._fail(f"intent name '{name}' has more than one '/'", self._line(path, KEY_INTENT))
        intent = parts[0].strip()
        if not intent:
            self._fail(
                f"intent name '{name}' has nothing before the '/'", self._line(path, KEY_INTENT)
            )
        return intent, name if len(parts) == 2 and parts[1] else None

    def _intent_examples(self, path: YamlPath, name: str, examples: Any) -> list[_RawExample]:
        if isinstance(examples, list):
            raw = self._listed_examples((*path, KEY_EXAMPLES), examples)
        elif isinstance(examples, str):
            lines = self._block_lines((*path, KEY_EXAMPLES), name, examples)
            raw = [_RawExample(text, line) for text, line in lines]
        else:
            raw = []
        if not raw:
            self._fail(f"intent '{name}' has no examples", self._line(path, KEY_INTENT))
        return raw

    def _listed_examples(self, path: YamlPath, examples: list[Any]) -> list[_RawExample]:
        raw = []
        for index, entry in enumerate(examples):
            if not entry:  # Rasa skips empty entries
                continue
            text = entry.get(KEY_TEXT) if isinstance(entry, dict) else None
            if not isinstance(text, str):
                self._fail("an example entry needs a 'text' string", self._line((*path, index)))
            line = self._line((*path, index), KEY_TEXT)
            raw.append(_RawExample(text.strip(STRIP_SYMBOLS), line, entry.get(KEY_METADATA)))
        return raw

    def _example(
        self, raw: _RawExample, intent: str, response_key: str | None, intent_metadata: Any
    ) -> TrainingExample:
        if not raw.text:
            self._fail("empty example", raw.line)
        try:
            entities = find_entities(raw.text)
            check_annotations_closed(raw.text)
        except ValueError as error:
            self._fail(str(error), raw.line)
        plain_text = replace_entities(raw.text)
        self._add_synonyms_from_entities(plain_text, entities)
        metadata = _message_metadata(intent_metadata, raw.metadata)
        return TrainingExample(plain_text, intent, response_key, tuple(entities), metadata)

    def _add_synonyms_from_entities(self, plain_text: str, entities: list[ExampleEntity]) -> None:
        for entity in entities:
            entity_text = plain_text[entity.start : entity.end]
            if entity_text != entity.value:
                _add_synonym(self.synonyms, entity_text, entity.value, "reading markdown")

    # -- synonyms, regexes, lookup tables

    def _read_synonym(self, path: YamlPath, item: dict[str, Any]) -> None:
        name, entries = self._named_block(path, item, KEY_SYNONYM)
        for text in entries:
            _add_synonym(self.synonyms, text, name, "reading markdown")

    def _read_regex(self, path: YamlPath, item: dict[str, Any]) -> None:
        name, entries = self._named_block(path, item, KEY_REGEX)
        self.regexes.extend({"name": name, "pattern": pattern} for pattern in entries)

    def _read_lookup(self, path: YamlPath, item: dict[str, Any]) -> None:
        name, entries = self._named_block(path, item, KEY_LOOKUP)
        table = next((table for table in self.lookups if table["name"] == name), None)
        if table is None:
            self.lookups.append({"name": name, "elements": entries})
        else:
            table["elements"].extend(entries)

    def _named_block(
        self, path: YamlPath, item: dict[str, Any], kind: str
    ) -> tuple[str, list[str]]:
        name = self._item_name(path, item, kind)
        examples = item.get(KEY_EXAMPLES)
        if not isinstance(examples, str) or not examples:
            self._fail(f"{kind} '{name}' has no examples", self._line(path, kind))
        entries = []
        for text, line in self._block_lines((*path, KEY_EXAMPLES), name, examples):
            if not text:
                self._fail(f"empty entry in {kind} '{name}'", line)
            entries.append(text)
        if not entries:
            self._fail(f"{kind} '{name}' has no examples", self._line(path, kind))
        return name, entries

    # -- shared

    def _item_name(self, path: YamlPath, item: dict[str, Any], kind: str) -> str:
        name = item.get(kind)
        if not isinstance(name, str) or not name:
            self._fail(f"the {kind} has an empty name", self._line(path, kind))
        return name

    def _block_lines(
        self, path: YamlPath, item_name: str, block: str
    ) -> Iterator[tuple[str, int | None]]:
        """Rasa's ``_parse_multiline_example``: ``- `` lines, others skipped with a warning."""
        for line_number, line in zip(
            self._block_line_numbers(path), block.splitlines(), strict=False
        ):
            if not line.startswith(EXAMPLE_PREFIX):
                _warn(
                    f"Issue found while processing '{self.source}' (line {line_number}): "
                    f"The item '{item_name}' contains an example that doesn't start with a "
                    f"'{EXAMPLE_PREFIX}' symbol: {line}\nThis training example will be skipped."
                )
                continue
            yield line[1:].strip(STRIP_SYMBOLS), line_number

    def _block_line_numbers(self, path: YamlPath) -> Iterator[int | None]:
        """Source line of each line of a block: exact for ``|`` blocks, else the block's start."""
        start = self._line(path)
        literal = isinstance(_node_at(self.tree, path), LiteralScalarString)
        offset = 1 if literal else 0
        while True:
            yield start + offset if start is not None else None
            offset += 1 if literal else 0

    def _line(self, path: YamlPath, key: str | None = None) -> int | None:
        if key is not None:
            return _key_line(self.tree, path, key)
        return _value_line(self.tree, path)


def _item_kind(item: dict[Any, Any]) -> str | None:
    """The first of intent/synonym/regex/lookup present, in Rasa's order."""
    return next((kind for kind in ITEM_KINDS if kind in item), None)


def _message_metadata(intent_metadata: Any, example_metadata: Any) -> dict[str, Any] | None:
    """Rasa's ``Message.build``: ``{"intent": ...}`` and/or ``{"example": ...}``."""
    metadata: dict[str, Any] = {}
    if intent_metadata is not None:
        metadata["intent"] = intent_metadata
    if example_metadata is not None:
        metadata["example"] = example_metadata
    return metadata or None


def _add_synonym(synonyms: dict[str, str], text: str, synonym: str, context: str) -> None:
    """Rasa's ``add_synonym``: a conflicting mapping overwrites the old one, with a warning."""
    if text in synonyms and synonyms[text] != synonym:
        _warn(
            f"Found inconsistent entity synonyms while {context}, overwriting "
            f"{text}->{synonyms[text]} with {text}->{synonym} during merge."
        )
    synonyms[text] = synonym


def _sorted_regexes(regexes: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rasa's ``TrainingData.sort_regex_features``."""
    return sorted(regexes, key=lambda regex: f"{regex['name']}+{regex['pattern']}")


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


# --------------------------------------------------------------------------- entities


def find_entities(example: str) -> list[ExampleEntity]:
    """Entities annotated in ``example`` (Rasa's ``find_entities_in_training_example``).

    Raises ``ValueError`` for a malformed ``{...}`` annotation.
    """
    entities: list[ExampleEntity] = []
    offset = 0
    for match in ENTITY_REGEX.finditer(example):
        text = match["entity_text"]
        start = match.start() - offset
        offset += len(match[0]) - len(text)
        entities.extend(_match_entities(match, text, start, start + len(text)))
    return entities


def replace_entities(example: str) -> str:
    """The example with its annotation markup removed."""
    return ENTITY_REGEX.sub(lambda match: match["entity_text"], example)


def check_annotations_closed(example: str) -> None:
    """Raise ``ValueError`` for a ``[text](`` or ``[text]{`` that never closes.

    Rasa itself would keep such markup as literal text.
    """
    masked = ENTITY_REGEX.sub(lambda match: _MASK * len(match[0]), example)
    found = _UNCLOSED_ANNOTATION.search(masked)
    if found:
        raise ValueError(f"unclosed entity annotation '{example[found.start() :]}'")


def _match_entities(match: re.Match[str], text: str, start: int, end: int) -> list[ExampleEntity]:
    if match["entity_dict"]:
        return [_entity_from_dict(match["entity_dict"], text, start, end)]
    if match["entity"]:
        return [ExampleEntity(start, end, match["value"] or text, match["entity"])]
    return [
        _entity_from_dict(inner["entity_dict"], text, start, end)
        for inner in SINGLE_ENTITY_DICT.finditer(match["list_entity_dicts"])
    ]


def _entity_from_dict(json_str: str, text: str, start: int, end: int) -> ExampleEntity:
    """Rasa's ``get_validated_dict`` (JSON + its entity schema) and attributes."""
    try:
        data = json.loads(f"{{{json_str}}}")
    except json.JSONDecodeError as error:
        raise ValueError(f"incorrect entity annotation '{{{json_str}}}': {error.msg}") from error
    entity = data.get("entity")
    if not isinstance(entity, str):
        raise ValueError(f"entity annotation '{{{json_str}}}' needs an \"entity\" string")
    for key in ("role", "group", "value"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"\"{key}\" in entity annotation '{{{json_str}}}' must be a string")
    return ExampleEntity(
        start,
        end,
        data.get("value", text),
        entity,
        data.get("role") or None,
        data.get("group") or None,
    )


# --------------------------------------------------------------------------- duplicates


def _drop_duplicates(examples: list[TrainingExample]) -> list[TrainingExample]:
    """Rasa's ``sanitize_examples``: equal messages (by fingerprint) keep the first."""
    unique: dict[str, TrainingExample] = {}
    for example in examples:
        unique.setdefault(_fingerprint(_message_data(example)), example)
    return list(unique.values())


def _message_data(example: TrainingExample) -> dict[str, Any]:
    """The ``Message.data`` Rasa fingerprints."""
    data: dict[str, Any] = {"text": example.text, "intent": example.intent}
    if example.intent_response_key:
        data["intent_response_key"] = example.intent_response_key
    if example.entities:
        data["entities"] = [entity.to_dict() for entity in example.entities]
    if example.metadata is not None:
        data["metadata"] = example.metadata
    return data


def _fingerprint(value: Any) -> str:
    """Rasa's ``deep_container_fingerprint``: scalars compare by ``str()``."""
    if isinstance(value, dict):
        items = {_fingerprint(key): _fingerprint(item) for key, item in value.items()}
        payload = json.dumps(items, sort_keys=True)
    elif isinstance(value, list):
        payload = json.dumps([_fingerprint(item) for item in value])
    else:
        payload = str(value)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def _example_to_golden(example: TrainingExample) -> dict[str, Any]:
    return {
        "entities": [entity.to_dict() for entity in example.entities],
        "intent": example.intent,
        "intent_response_key": example.intent_response_key,
        "metadata": copy.deepcopy(example.metadata),
        "text": example.text,
    }
