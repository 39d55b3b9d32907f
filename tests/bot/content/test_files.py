"""Content as YAML files, both ways (bot.content.files), on SQLite.

The shipped content is seeded once for the module (``seed_shipped_content``); each test
gets its own copy of that database file. The export is what ``donghanh content check``
accepts (with the rest of data/nlu and the directory's provinces.yml and schema.yml
next to it) and reads back as the shipped content; ``import_faq`` publishes only the
topics whose content differs from what is in force.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import make_settings, sqlite_only

import services_directory
from bot.config import Settings
from bot.content.check import check_content, format_problems
from bot.content.editing import FAQ, SERVICE
from bot.content.faq import read_faq_dir, to_entry
from bot.content.files import IMPORT_NOTE, export_content, faq_files_data, import_faq
from bot.content.live import seed_shipped_content
from bot.nlu.training import ADDED_EXAMPLES_FILE, FAQ_EXAMPLES_FILE, example_lines
from bot.storage.content import ContentStore
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import AddedExample

REPO = Path(__file__).resolve().parents[3]
DATABASE_FILE = "test.sqlite3"


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    database_file: Path
    written: tuple[int, int]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A database with the shipped content, seeded once; no model is needed here."""
    with sqlite_only(tmp_path_factory) as url:
        no_model = tmp_path_factory.mktemp("no-model")
        settings = make_settings(tmp_path_factory.mktemp("instance"), url, no_model)

        async def seed() -> tuple[int, int]:
            engine = create_engine(url)
            try:
                store = ContentStore(session_factory(engine), Vault(settings.encryption_keys))
                return await seed_shipped_content(settings, store)
            finally:
                await engine.dispose()

        written = asyncio.run(seed())
        yield Seeded(settings, Path(url.removeprefix("sqlite+aiosqlite:///")), written)


@pytest.fixture
async def store(seeded: Seeded, tmp_path: Path) -> AsyncIterator[ContentStore]:
    """A copy of the seeded database, for this test alone."""
    copy = tmp_path / DATABASE_FILE
    shutil.copyfile(seeded.database_file, copy)
    engine = create_engine(f"sqlite+aiosqlite:///{copy}")
    yield ContentStore(session_factory(engine), Vault(seeded.settings.encryption_keys))
    await engine.dispose()


def checkable(out: Path) -> tuple[Path, Path, Path]:
    """The export with what it leaves out copied next to it: the rest of data/nlu, and
    the directory's units and schema."""
    nlu = out / "nlu"
    shutil.copytree(
        REPO / "data" / "nlu",
        nlu,
        dirs_exist_ok=True,
        ignore=lambda folder, names: [
            n for n in names if Path(folder) == REPO / "data" / "nlu" and (nlu / n).exists()
        ],
    )
    directory = out / "services_directory"
    for name in ("provinces.yml", "schema.yml"):
        shutil.copy(services_directory.HERE / name, directory / name)
    return out / "faq", nlu, directory


def shipped_topics() -> dict[str, object]:
    return {faq.key: to_entry(faq) for faq in read_faq_dir(REPO / "data" / "faq")}


def test_the_shipped_content_is_seeded(seeded: Seeded) -> None:
    faq_count, service_count = seeded.written
    assert faq_count == len(shipped_topics()) > 0
    assert service_count == len(services_directory.shipped_directory().services) > 0


async def test_the_export_passes_the_content_check(
    store: ContentStore, seeded: Seeded, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    written = await export_content(store, out)
    assert all(path.is_relative_to(out) and path.exists() for path in written)
    faq_dir, nlu_dir, directory = checkable(out)
    problems = check_content(faq_dir, nlu_dir, seeded.settings.responses_file, directory)
    assert problems == [], format_problems(problems)


async def test_the_export_reads_back_as_the_shipped_content(
    store: ContentStore, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await export_content(store, out)
    exported = {faq.key: to_entry(faq) for faq in read_faq_dir(out / "faq")}
    assert exported == shipped_topics()
    shipped_examples = example_lines(REPO / "data" / "nlu" / FAQ_EXAMPLES_FILE)
    assert sorted(example_lines(out / "nlu" / FAQ_EXAMPLES_FILE)) == sorted(shipped_examples)
    assert not (out / "nlu" / ADDED_EXAMPLES_FILE).exists()
    exported_directory = services_directory.load_directory(checkable(out)[2])
    shipped = services_directory.shipped_directory()
    assert sorted(exported_directory.services, key=lambda s: s.id) == sorted(
        shipped.services, key=lambda s: s.id
    )


async def test_the_export_leaves_retired_topics_out_and_writes_added_examples(
    store: ContentStore, tmp_path: Path
) -> None:
    retired_key = sorted(shipped_topics())[0]
    published = {v.key: v for v in await store.get_published(FAQ)}
    await store.do_publish_data(
        FAQ, retired_key, {**published[retired_key].data, "retired": True}, None, "ngừng dùng"
    )
    service = (await store.get_published(SERVICE))[0]
    await store.do_publish_data(SERVICE, service.key, {**service.data, "retired": True}, None, "")
    async with store.sessions() as session:
        session.add(AddedExample(intent="greet", text="chào [tên] nha"))
        session.add(AddedExample(intent="faq/deposit", text="cọc [số] triệu có đúng không"))
        await session.commit()
    out = tmp_path / "export"
    await export_content(store, out)
    assert not (out / "faq" / f"{retired_key}.yml").exists()
    assert len(list((out / "faq").glob("*.yml"))) == len(shipped_topics()) - 1
    intents = {intent for intent, _ in example_lines(out / "nlu" / FAQ_EXAMPLES_FILE)}
    assert f"faq/{retired_key}" not in intents
    assert sorted(example_lines(out / "nlu" / ADDED_EXAMPLES_FILE)) == [
        ("faq/deposit", "cọc [số] triệu có đúng không"),
        ("greet", "chào [tên] nha"),
    ]
    exported_ids = {
        record["id"]
        for path in (out / "services_directory").rglob("*.yml")
        for record in yaml.safe_load(path.read_text(encoding="utf-8"))["services"]
    }
    assert service.key not in exported_ids


async def test_importing_the_export_changes_nothing(store: ContentStore, tmp_path: Path) -> None:
    out = tmp_path / "export"
    await export_content(store, out)
    revision = await store.get_revision()
    topics = faq_files_data(out / "faq", out / "nlu" / FAQ_EXAMPLES_FILE)
    assert len(topics) == len(shipped_topics())
    assert await import_faq(store, topics) == 0
    assert await store.get_revision() == revision


async def test_importing_publishes_only_the_changed_topics(
    store: ContentStore, tmp_path: Path
) -> None:
    faq_dir = tmp_path / "faq"
    shutil.copytree(REPO / "data" / "faq", faq_dir)
    examples_file = tmp_path / FAQ_EXAMPLES_FILE
    shutil.copy(REPO / "data" / "nlu" / FAQ_EXAMPLES_FILE, examples_file)
    answered, taught = sorted(shipped_topics())[:2]
    edited = faq_dir / f"{answered}.yml"
    raw = yaml.safe_load(edited.read_text(encoding="utf-8"))
    raw["answer"] = raw["answer"] + " Gọi 111 nếu cần."
    edited.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    examples_file.write_text(
        examples_file.read_text(encoding="utf-8").replace(
            f"- intent: faq/{taught}\n  examples: |\n",
            f"- intent: faq/{taught}\n  examples: |\n    - một câu hỏi mới thêm vào\n",
        ),
        encoding="utf-8",
    )
    topics = faq_files_data(faq_dir, examples_file)
    assert "một câu hỏi mới thêm vào" in topics[taught]["examples"]
    assert await import_faq(store, topics, staff_id=None) == 2
    in_force = {v.key: v for v in await store.get_published(FAQ)}
    assert in_force[answered].number == 2 and in_force[answered].note == IMPORT_NOTE
    assert in_force[answered].data["answer"].endswith("Gọi 111 nếu cần.")
    assert in_force[taught].number == 2
    unchanged = [v for key, v in in_force.items() if key not in (answered, taught)]
    assert unchanged and all(v.number == 1 and v.note == "seed" for v in unchanged)
    assert await import_faq(store, topics) == 0  # the same files again: nothing new


async def test_importing_a_new_topic_publishes_it(store: ContentStore, tmp_path: Path) -> None:
    faq_dir = tmp_path / "faq"
    faq_dir.mkdir()
    (faq_dir / "brand_new.yml").write_text(
        "key: brand_new\ntitle: Chủ đề mới\nanswer: Câu trả lời ngắn.\n"
        "sources: [Luật 53/2024/QH15]\nreviewed: 2026-01-02\n",
        encoding="utf-8",
    )
    examples_file = tmp_path / FAQ_EXAMPLES_FILE
    examples_file.write_text(
        'version: "3.1"\nnlu:\n- intent: faq/brand_new\n  examples: |\n'
        "    - câu một\n    - câu hai\n    - câu ba\n",
        encoding="utf-8",
    )
    topics = faq_files_data(faq_dir, examples_file)
    assert topics == {
        "brand_new": {
            "title": "Chủ đề mới",
            "answer": "Câu trả lời ngắn.",
            "sources": ["Luật 53/2024/QH15"],
            "reviewed": "2026-01-02",
            "buttons": [],
            "examples": ["câu một", "câu hai", "câu ba"],
        }
    }
    assert await import_faq(store, topics, staff_id=None) == 1
    version = await store.get_version(FAQ, "brand_new", 1)
    assert version is not None and version.state == "published"
    assert version.data == topics["brand_new"] and version.note == IMPORT_NOTE
