"""The import rules of ../shared/design/architecture.md, checked on the source (AST).

A failure names the file and the forbidden import, so the fix is obvious.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BOT = REPO / "bot"

# package -> bot subpackages (or third-party roots) it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "bot/domain.py": ("bot", "sanic", "sqlalchemy"),
    "bot/errors.py": ("bot.", "sanic", "sqlalchemy"),
    "bot/config.py": ("bot.nlu", "bot.engine", "bot.storage", "bot.channels", "bot.web", "sanic"),
    "bot/nlu": ("bot.engine", "bot.storage", "bot.channels", "bot.web", "sanic", "sqlalchemy"),
    "bot/storage": ("bot.engine", "bot.channels", "bot.web", "bot.nlu", "sanic"),
    "bot/engine": ("sanic", "bot.channels", "bot.web"),
    "bot/channels": ("bot.web", "bot.app"),
    "bot/web": ("bot.channels", "bot.app"),
    # the content people read: files, linter, editing rules, the live copy a worker answers
    # with; it stores through bot.storage's repositories and trains through bot.nlu
    "bot/content": (
        "bot.engine",
        "bot.channels",
        "bot.web",
        "bot.app",
        "sanic",
        "sqlalchemy",
    ),
    # benchmarks drive a real server from outside, as a load generator would
    "bot/benchmarks": ("bot.app", "bot.channels", "bot.web", "bot.engine", "sanic"),
    "bot/bench.py": ("bot.app", "bot.channels", "bot.web", "bot.engine", "sanic"),
    # used by actions, possibly inside a separate action server: stands alone
    "services_directory": ("bot", "sanic", "sqlalchemy", "rasa_sdk", "actions"),
    "actions": (
        "bot.nlu",
        "bot.engine",
        "bot.storage",
        "bot.channels",
        "bot.web",
        "bot.app",
        "sanic",
    ),
}
ALLOWED_BOT_IMPORTS_IN_ACTIONS = ("bot.domain",)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def is_forbidden(module: str, prefixes: tuple[str, ...]) -> bool:
    for prefix in prefixes:
        if prefix.endswith("."):
            if module.startswith(prefix):
                return True
        elif module == prefix or module.startswith(prefix + "."):
            return True
    return False


def files_of(rule_path: str) -> list[Path]:
    target = REPO / rule_path
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("rule_path", sorted(FORBIDDEN))
def test_imports_point_the_way_the_architecture_says(rule_path: str) -> None:
    files = files_of(rule_path)
    assert files, f"{rule_path} has no Python files: the layout changed"
    violations = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(path)
        if is_forbidden(module, FORBIDDEN[rule_path])
    ]
    assert not violations, "\n".join(violations)


def test_actions_import_only_bot_domain_from_bot() -> None:
    violations = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in files_of("actions")
        for line, module in imported_modules(path)
        if module.startswith("bot") and module not in ALLOWED_BOT_IMPORTS_IN_ACTIONS
    ]
    assert not violations, "\n".join(violations)


def test_only_app_wires_channels_and_web() -> None:
    importers = sorted(
        str(path.relative_to(REPO))
        for path in BOT.rglob("*.py")
        for _line, module in imported_modules(path)
        if (module.startswith("bot.channels") or module.startswith("bot.web"))
        and not str(path.relative_to(REPO)).startswith(("bot/channels", "bot/web"))
    )
    assert set(importers) <= {"bot/app.py"}, importers


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from sanic import Sanic\nimport bot.web.pages\n", encoding="utf-8")
    modules = [m for _, m in imported_modules(bad)]
    assert is_forbidden(modules[0], FORBIDDEN["bot/engine"])
    assert is_forbidden(modules[1], FORBIDDEN["bot/engine"])
    assert not is_forbidden("bot.domain", FORBIDDEN["bot/engine"])


@pytest.mark.parametrize(
    "package",
    [
        "bot/nlu",
        "bot/engine",
        "bot/channels/rest",
        "bot/channels/webchat",
        "bot/storage",
        "bot/web",
    ],
)
def test_layout_has_the_architecture_packages(package: str) -> None:
    assert (REPO / package / "__init__.py").is_file()


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(path.relative_to(REPO))
        for root in ("bot", "actions", "services_directory")
        for path in (REPO / root).rglob("*.py")
        if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert not missing, missing
