"""All published content as the project's own YAML files, both ways, so content can be
reviewed in git: ``faq/<key>.yml`` (as ``data/faq``), ``nlu/faq.yml`` and
``nlu/added.yml`` (the examples, Rasa's NLU format, as ``data/nlu``) and
``services_directory/national.yml`` + ``provinces/<slug>.yml``.

``export_content`` writes what is in force; ``import_faq`` publishes each topic of a
``data/faq``-shaped folder whose content differs from what is in force (after the
whole folder passed the linter: ``donghanh content check``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

import services_directory
from bot.content.editing import FAQ, SERVICE, entry_from_data, faq_data_from_entry
from bot.content.faq import entry_to_file_data, read_faq_dir, to_entry
from bot.nlu.training import (
    ADDED_EXAMPLES_FILE,
    FAQ_EXAMPLES_FILE,
    example_lines,
    examples_document,
)
from bot.storage.content import ContentStore

IMPORT_NOTE = "nhập từ tệp"


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=88)


async def export_content(store: ContentStore, out_dir: Path) -> list[Path]:
    """Write the content in force (retired topics left out); returns the files."""
    written: list[Path] = []
    faq = [v for v in await store.get_published(FAQ) if not v.retired]
    (out_dir / "faq").mkdir(parents=True, exist_ok=True)
    for version in faq:
        path = out_dir / "faq" / f"{version.key}.yml"
        entry = entry_from_data(version.key, version.data)
        path.write_text(_dump(entry_to_file_data(entry)), encoding="utf-8")
        written.append(path)
    (out_dir / "nlu").mkdir(parents=True, exist_ok=True)
    examples = {f"{FAQ}/{v.key}": list(v.data.get("examples") or []) for v in faq}
    written.append(_write(out_dir / "nlu" / FAQ_EXAMPLES_FILE, examples_document(examples)))
    added = await store.get_added_examples()
    if added:
        written.append(_write(out_dir / "nlu" / ADDED_EXAMPLES_FILE, examples_document(added)))
    written += _export_services(
        [v.data for v in await store.get_published(SERVICE) if not v.retired],
        out_dir / "services_directory",
    )
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _export_services(records: list[dict[str, Any]], root: Path) -> list[Path]:
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        provinces = record.get("provinces") or []
        unit = "" if services_directory.NATIONWIDE in provinces else str(provinces[0])
        by_unit.setdefault(unit, []).append(record)
    (root / "provinces").mkdir(parents=True, exist_ok=True)
    written = []
    for unit, services in sorted(by_unit.items()):
        document: dict[str, Any] = {"version": 1}
        if unit:
            document["unit"] = unit
        document["services"] = sorted(services, key=lambda r: (r.get("rank", 100), r["id"]))
        name = f"provinces/{services_directory.unit_slug(unit)}.yml" if unit else "national.yml"
        written.append(_write(root / name, _dump(_yaml_dates(document))))
    return written


def _yaml_dates(document: dict[str, Any]) -> dict[str, Any]:
    """verified_at as a YAML date (unquoted), as the directory's schema wants."""
    from datetime import date

    services = []
    for record in document["services"]:
        verified = record.get("verified_at")
        services.append(
            {**record, "verified_at": date.fromisoformat(verified)}
            if isinstance(verified, str)
            else record
        )
    return {**document, "services": services}


def faq_files_data(faq_dir: Path, examples_file: Path) -> dict[str, dict[str, Any]]:
    """Topic key -> stored form, from a ``data/faq`` folder and its examples file."""
    examples: dict[str, list[str]] = {}
    if examples_file.exists():
        for intent, text in example_lines(examples_file):
            examples.setdefault(intent.removeprefix(f"{FAQ}/"), []).append(text)
    entries = [to_entry(faq) for faq in read_faq_dir(faq_dir)]
    return {e.key: faq_data_from_entry(e, examples.get(e.key, [])) for e in entries}


async def import_faq(
    store: ContentStore, topics: Mapping[str, dict[str, Any]], staff_id: int | None = None
) -> int:
    """Publish each topic whose content differs from the version in force; returns
    how many were published."""
    published = {v.key: v for v in await store.get_published(FAQ)}
    changed = 0
    for key, data in sorted(topics.items()):
        current = published.get(key)
        if current is not None and current.data == data:
            continue
        await store.do_publish_data(FAQ, key, data, staff_id, IMPORT_NOTE)
        changed += 1
    return changed
