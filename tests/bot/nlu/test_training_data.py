"""The training data the database's examples make (bot.nlu.training).

``write_training_dir`` puts ``data/nlu`` together with the FAQ examples and the examples
added from the missed queue; ``training_data_hash`` hashes those two files by their
examples, so the shipped data and the same examples written back give the same model
(no retrain on a first start), a changed set of examples gives another, and their order
does not matter. ``examples_document`` writes a Rasa NLU file that reads back the same.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from bot.nlu.rasa_yaml import NluData, read_nlu_dir, read_nlu_text
from bot.nlu.training import (
    ADDED_EXAMPLES_FILE,
    FAQ_EXAMPLES_FILE,
    example_lines,
    examples_document,
    training_data_hash,
    write_training_dir,
)

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "data" / "nlu"


@pytest.fixture(scope="module")
def nlu_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of data/nlu: nothing here may touch the shipped files."""
    copy = tmp_path_factory.mktemp("shipped") / "nlu"
    shutil.copytree(SHIPPED, copy)
    return copy


@pytest.fixture(scope="module")
def shipped_faq_examples(nlu_copy: Path) -> dict[str, list[str]]:
    """Topic key -> examples, as the database holds them after seeding."""
    examples: dict[str, list[str]] = {}
    for intent, text in example_lines(nlu_copy / FAQ_EXAMPLES_FILE):
        examples.setdefault(intent.removeprefix("faq/"), []).append(text)
    return examples


def written(
    source: Path,
    out: Path,
    faq: Mapping[str, Sequence[str]],
    added: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    return write_training_dir(source, out, faq, added or {})


def example_set(data: NluData) -> list[tuple[str, str, tuple[tuple[int, int, str, str], ...]]]:
    return sorted(
        (
            e.full_intent,
            e.text,
            tuple((x.start, x.end, x.value, x.entity) for x in e.entities),
        )
        for e in data.examples
    )


def test_the_shipped_examples_written_back_hash_the_same(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    out = written(nlu_copy, tmp_path / "data", shipped_faq_examples)
    assert training_data_hash(out) == training_data_hash(nlu_copy)
    assert training_data_hash(nlu_copy) == training_data_hash(SHIPPED)
    assert not (out / ADDED_EXAMPLES_FILE).exists()  # no added examples, no file


def test_the_written_folder_reads_as_the_same_examples(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    out = written(nlu_copy, tmp_path / "data", shipped_faq_examples)
    rewritten, shipped = read_nlu_dir(out), read_nlu_dir(nlu_copy)
    assert example_set(rewritten) == example_set(shipped)
    assert rewritten.full_intents == shipped.full_intents
    assert rewritten.lookup_tables == shipped.lookup_tables
    assert rewritten.entity_synonyms == shipped.entity_synonyms
    # the folders besides the example files are copied as they are (test data too)
    for path in nlu_copy.rglob("*.yml"):
        if path.name != FAQ_EXAMPLES_FILE:
            relative = path.relative_to(nlu_copy)
            assert (out / relative).read_bytes() == path.read_bytes(), relative


def test_adding_or_removing_an_example_changes_the_hash(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    before = training_data_hash(nlu_copy)
    key, texts = next(iter(shipped_faq_examples.items()))
    more = {**shipped_faq_examples, key: [*texts, "một câu hỏi mới hoàn toàn"]}
    fewer = {**shipped_faq_examples, key: texts[1:]}
    added = {"greet": ["chào ad nhé"]}
    hashes = {
        training_data_hash(written(nlu_copy, tmp_path / "more", more)),
        training_data_hash(written(nlu_copy, tmp_path / "fewer", fewer)),
        training_data_hash(written(nlu_copy, tmp_path / "added", shipped_faq_examples, added)),
    }
    assert before not in hashes and len(hashes) == 3


def test_moving_an_example_to_another_topic_changes_the_hash(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    (first, first_texts), (second, second_texts) = list(shipped_faq_examples.items())[:2]
    moved = {
        **shipped_faq_examples,
        first: first_texts[1:],
        second: [*second_texts, first_texts[0]],
    }
    out = written(nlu_copy, tmp_path / "data", moved)
    assert training_data_hash(out) != training_data_hash(nlu_copy)


def test_the_order_of_examples_and_topics_does_not_change_the_hash(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    reordered = {key: texts[::-1] for key, texts in reversed(shipped_faq_examples.items())}
    out = written(nlu_copy, tmp_path / "data", reordered)
    assert training_data_hash(out) == training_data_hash(nlu_copy)
    added_one = written(nlu_copy, tmp_path / "a1", reordered, {"greet": ["a", "b"], "bye": ["c"]})
    added_two = written(nlu_copy, tmp_path / "a2", reordered, {"bye": ["c"], "greet": ["b", "a"]})
    assert training_data_hash(added_one) == training_data_hash(added_two)


def test_the_same_examples_typed_from_the_database_or_a_file_hash_the_same(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    """An example added from the queue, or kept in data/nlu/added.yml: the same data."""
    added = {"greet": ["chào ad ơi", "alo có ai không"]}
    from_database = written(nlu_copy, tmp_path / "db", shipped_faq_examples, added)
    by_hand = tmp_path / "hand"
    shutil.copytree(nlu_copy, by_hand)
    (by_hand / ADDED_EXAMPLES_FILE).write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n'
        "    - alo có ai không\n    - chào ad ơi\n",
        encoding="utf-8",
    )
    assert training_data_hash(from_database) == training_data_hash(by_hand)


def test_other_training_files_are_hashed_by_their_bytes(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    out = written(nlu_copy, tmp_path / "data", shipped_faq_examples)
    core = out / "core.yml"
    core.write_text(core.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    assert training_data_hash(out) != training_data_hash(nlu_copy)


def test_added_examples_appear_as_their_intent(
    nlu_copy: Path, shipped_faq_examples: dict[str, list[str]], tmp_path: Path
) -> None:
    key = next(iter(shipped_faq_examples))
    added = {"greet": ["chào [tên] nha"], f"faq/{key}": ["hỏi chút về chuyện này với [số]"]}
    out = written(nlu_copy, tmp_path / "data", shipped_faq_examples, added)
    examples = {(e.full_intent, e.text) for e in read_nlu_dir(out).examples}
    assert ("greet", "chào [tên] nha") in examples
    assert (f"faq/{key}", "hỏi chút về chuyện này với [số]") in examples
    assert example_lines(out / ADDED_EXAMPLES_FILE) == [
        (f"faq/{key}", "hỏi chút về chuyện này với [số]"),
        ("greet", "chào [tên] nha"),
    ]


TRICKY = [
    'công ty nói "miễn phí" có thật không',
    "phí: 50 triệu, có đúng luật?",
    "hợp đồng ghi [Điều 5] là gì",
    "người tự xưng cán bộ đưa đi [Đài Loan](country) có tin được không",
    "đi [Nhật Bản](country) mất [150 triệu](amount) có đúng không",
    "# không phải chú thích",
    "- bắt đầu bằng gạch",
    "câu có   nhiều\tkhoảng trắng",
    "it's 'single' quotes & ampersand {ngoặc nhọn} | gạch đứng",
    "vâng ạ: còn ...?",
]


def test_examples_document_round_trips_tricky_texts() -> None:
    document = examples_document({"faq/deposit": TRICKY, "greet": [], "bye": ["tạm biệt"]})
    data = read_nlu_text(document)
    texts = [e.text for e in data.examples if e.full_intent == "faq/deposit"]
    assert len(texts) == len(TRICKY)
    assert texts[0] == 'công ty nói "miễn phí" có thật không'
    assert texts[1] == "phí: 50 triệu, có đúng luật?"
    assert texts[2] == "hợp đồng ghi [Điều 5] là gì"  # brackets without (entity) stay text
    assert texts[3] == "người tự xưng cán bộ đưa đi Đài Loan có tin được không"
    assert texts[5] == "# không phải chú thích"
    assert texts[6] == "- bắt đầu bằng gạch"
    assert texts[7] == "câu có nhiều khoảng trắng"  # whitespace folded, nothing lost
    assert texts[8:] == TRICKY[8:]
    annotated = {e.text: e.entities for e in data.examples}
    taiwan = annotated[texts[3]]
    assert [(x.value, x.entity) for x in taiwan] == [("Đài Loan", "country")]
    assert texts[3][taiwan[0].start : taiwan[0].end] == "Đài Loan"
    japan = annotated[texts[4]]
    assert [(x.value, x.entity) for x in japan] == [
        ("Nhật Bản", "country"),
        ("150 triệu", "amount"),
    ]
    assert "greet" not in {e.intent for e in data.examples}  # no examples, no entry
    assert [e.text for e in data.examples if e.intent == "bye"] == ["tạm biệt"]


def test_example_lines_give_back_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "faq.yml"
    path.write_text(examples_document({"faq/deposit": TRICKY}), encoding="utf-8")
    expected = [("faq/deposit", " ".join(text.split())) for text in TRICKY]
    assert example_lines(path) == expected


def test_examples_with_control_characters_still_make_a_readable_file(tmp_path: Path) -> None:
    texts = ["chào\x1bad", "cứu\x07 tôi", "alo\x7f alo"]
    path = tmp_path / ADDED_EXAMPLES_FILE
    path.write_text(examples_document({"greet": texts}), encoding="utf-8")
    read = [re.sub(r"\s", "", text) for _, text in example_lines(path)]
    assert read == ["chàoad", "cứutôi", "aloalo"]
    assert len(read_nlu_text(path.read_text(encoding="utf-8")).examples) == 3
