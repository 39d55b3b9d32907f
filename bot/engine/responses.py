"""The catalogue of what the bot says: fixed messages from Rasa-domain-style
``responses.yml``, plus the FAQ answers admins keep (``utter_faq/<key>``).

Responses may hold ``{placeholders}`` that an action fills (``{place}``); each response
can carry metadata (an FAQ topic's title) that actions read from the domain.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.datafiles import read_yaml
from bot.domain import Button, Reply
from bot.errors import DataFormatError


def _parse_button(path: Path, name: str, raw: Any) -> Button:
    if not isinstance(raw, dict) or not raw.get("title") or not raw.get("payload"):
        raise DataFormatError(path, f"{name}: each button needs a title and a payload")
    return Button(title=str(raw["title"]), payload=str(raw["payload"]))


def _parse_variant(path: Path, name: str, raw: Any) -> Reply:
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str) or not raw["text"].strip():
        raise DataFormatError(path, f"{name}: each variant needs a non-empty text")
    buttons = tuple(_parse_button(path, name, b) for b in raw.get("buttons") or [])
    return Reply(text=raw["text"].strip(), buttons=buttons)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(text: str, values: dict[str, Any]) -> str:
    """Replace ``{name}`` with ``values[name]``; unknown placeholders stay as written."""
    return _PLACEHOLDER.sub(
        lambda m: str(values[m.group(1)]) if values.get(m.group(1)) is not None else m.group(0),
        text,
    )


class ResponseCatalog:
    def __init__(
        self,
        responses: dict[str, list[Reply]],
        metadata: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self._responses = responses
        self._metadata = metadata or {}

    def with_extra(
        self, responses: dict[str, list[Reply]], metadata: dict[str, dict[str, Any]]
    ) -> ResponseCatalog:
        """A catalogue with more responses (FAQ answers) added to these."""
        return ResponseCatalog({**self._responses, **responses}, {**self._metadata, **metadata})

    @classmethod
    def from_file(cls, path: Path) -> ResponseCatalog:
        loaded = read_yaml(path) or {}
        raw = loaded.get("responses") if isinstance(loaded, dict) else None
        if not isinstance(raw, dict):
            raise DataFormatError(path, "expected a top-level 'responses:' mapping")
        responses: dict[str, list[Reply]] = {}
        for name, variants in raw.items():
            if not isinstance(variants, list) or not variants:
                raise DataFormatError(path, f"{name}: expected a list of variants")
            responses[str(name)] = [_parse_variant(path, str(name), v) for v in variants]
        return cls(responses)

    def __contains__(self, name: object) -> bool:
        return name in self._responses

    @property
    def names(self) -> list[str]:
        return sorted(self._responses)

    def get(self, name: str) -> Reply:
        """The first variant of a response (variants are kept for Rasa export)."""
        return self._responses[name][0]

    def as_rasa_domain(self) -> dict[str, Any]:
        return {
            name: [
                {
                    "text": r.text,
                    **(
                        {"buttons": [{"title": b.title, "payload": b.payload} for b in r.buttons]}
                        if r.buttons
                        else {}
                    ),
                    **({"metadata": self._metadata[name]} if name in self._metadata else {}),
                }
                for r in variants
            ]
            for name, variants in self._responses.items()
        }
