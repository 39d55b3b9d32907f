"""Literal anchors of a regular expression: strings one of which every match contains.

Running a costly pattern only on texts that contain one of its anchors skips most
searches without changing a single result. The analysis walks the parsed pattern
(Python's own ``re`` parser); when it cannot be sure, it returns ``None`` and the
pattern is always searched.
"""

from __future__ import annotations

from typing import Any

try:  # Python 3.11+: the parser behind ``re``
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older layouts
    _p = None
    _c = None

_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def required_literals(pattern: str) -> frozenset[str] | None:
    """A set of literals such that every match of ``pattern`` contains one of them."""
    if _p is None:
        return None
    try:
        found = _sequence(list(_p.parse(pattern)))
    except Exception:  # an analysis failure must never cost a match
        return None
    return frozenset(found) if found else None


def _best(options: list[set[str]]) -> set[str] | None:
    usable = [option for option in options if option]
    if not usable:
        return None
    return max(usable, key=lambda s: (min(len(x) for x in s), -len(s)))


def _sequence(items: list[tuple[Any, Any]]) -> set[str] | None:
    """Required literal sets of a sequence: runs of literal characters, and the
    required sets of groups, alternations and repeats that must occur at least once."""
    options: list[set[str]] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            options.append({"".join(run)})
            run.clear()

    for op, value in items:
        if op is _c.LITERAL:
            run.append(chr(value))
            continue
        end_run()
        name = str(op)
        if name == "SUBPATTERN":
            options.append(_sequence(list(value[-1])) or set())
        elif name == "BRANCH":
            branches = [_sequence(list(branch)) for branch in value[1]]
            if all(branches):
                options.append(set().union(*(b for b in branches if b)))
        elif name in _REPEATS and value[0] >= 1:
            options.append(_sequence(list(value[2])) or set())
        # anchors (\b), classes, any-char, lookarounds: nothing that must be present
    end_run()
    return _best(options)
