"""FAQ answers as files (``data/faq/<key>.yml``) and as the responses the bot sends.

A file holds one topic: ``key`` (the ``faq/<key>`` intent), ``title``, ``answer`` (the
first message, short enough for a small phone screen), optional ``more`` (sent on "Xem
thêm"), ``sources``, ``reviewed`` (the date a person last checked it) and optional
``buttons``. Reading is lenient (``read_faq_dir`` keeps whatever is there, so the linter
can report every problem at once); ``to_entry`` turns a checked file into a ``FaqEntry``.

Every answer is sent with its source and review date under it, so a reader can see
what it rests on and how fresh it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.datafiles import load_yaml
from bot.domain import Button, FaqEntry, Reply
from bot.errors import DataFormatError

ANSWER_MAX_CHARS = 600
MORE_MAX_CHARS = 900
MAX_BUTTONS = 3
MORE_TITLE = "Xem thêm"
MORE_DETAIL = "more"
FAQ_RESPONSE_PREFIX = "utter_faq/"
FAQ_MORE_RESPONSE_PREFIX = "utter_faq_more/"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class FaqFile:
    """One ``data/faq`` file as written, before any check."""

    path: Path
    raw: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.raw.get("key") or self.path.stem)


def read_faq_dir(directory: Path) -> list[FaqFile]:
    """Every ``*.yml`` in the folder, sorted; invalid YAML names its file and line."""
    files = []
    for path in sorted(directory.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        try:
            raw = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise DataFormatError(
                path, f"invalid YAML: {exc}", mark.line + 1 if mark else None
            ) from exc
        except ValueError:  # a value YAML cannot build (2026-02-30): keep it as text,
            raw = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 (strings only)
        files.append(FaqFile(path, raw if isinstance(raw, dict) else {}))
    return files


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def to_entry(faq: FaqFile) -> FaqEntry:
    """The entry of a file that passed the linter."""
    raw = faq.raw
    reviewed = raw["reviewed"]
    return FaqEntry(
        key=faq.key,
        title=_text(raw["title"]),
        answer=_text(raw["answer"]),
        more=_text(raw.get("more")) or None,
        sources=tuple(_text(s) for s in raw["sources"]),
        reviewed=reviewed if isinstance(reviewed, date) else date.fromisoformat(str(reviewed)),
        buttons=tuple(
            Button(title=_text(b["title"]), payload=_text(b["payload"]))
            for b in raw.get("buttons") or []
        ),
    )


def entry_to_file_data(entry: FaqEntry) -> dict[str, Any]:
    """The ``data/faq`` form of an entry (export, and the round-trip test)."""
    data: dict[str, Any] = {"key": entry.key, "title": entry.title, "answer": entry.answer}
    if entry.more:
        data["more"] = entry.more
    data["sources"] = list(entry.sources)
    data["reviewed"] = entry.reviewed
    if entry.buttons:
        data["buttons"] = [{"title": b.title, "payload": b.payload} for b in entry.buttons]
    return data


def footer(entry: FaqEntry) -> str:
    return f"Nguồn: {'; '.join(entry.sources)}. Rà soát ngày {entry.reviewed:%d/%m/%Y}."


def more_button(key: str) -> Button:
    return Button(title=MORE_TITLE, payload=f'/faq/{key}{{"detail": "{MORE_DETAIL}"}}')


def answer_reply(entry: FaqEntry) -> Reply:
    """The first message: the answer, its source and review date, and the buttons."""
    buttons = ((more_button(entry.key),) if entry.more else ()) + entry.buttons
    return Reply(text=f"{entry.answer}\n\n{footer(entry)}", buttons=buttons)


def more_reply(entry: FaqEntry) -> Reply:
    return Reply(text=entry.more or entry.answer, buttons=entry.buttons)


def faq_responses(entries: list[FaqEntry]) -> dict[str, list[Reply]]:
    responses: dict[str, list[Reply]] = {}
    for entry in entries:
        responses[f"{FAQ_RESPONSE_PREFIX}{entry.key}"] = [answer_reply(entry)]
        responses[f"{FAQ_MORE_RESPONSE_PREFIX}{entry.key}"] = [more_reply(entry)]
    return responses


def faq_metadata(entries: list[FaqEntry]) -> dict[str, dict[str, Any]]:
    """Response metadata actions read from the domain: each topic's title, sources and
    review date."""
    return {
        f"{FAQ_RESPONSE_PREFIX}{entry.key}": {
            "title": entry.title,
            "sources": list(entry.sources),
            "reviewed": entry.reviewed.isoformat(),
        }
        for entry in entries
    }
