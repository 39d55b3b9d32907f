"""The curated directory of support services a person can be pointed to.

- ``national.yml``: services for the whole country (111, 113, 115, 114, the consular
  citizen-protection line, the licensed-enterprise list...).
- ``provinces/<slug>.yml``: local services of one of the 34 provincial units in force
  since 1/7/2025 (UBND xã/phường as the first point of contact, Sở Y tế, Công an tỉnh...).
- ``provinces.yml``: the 34 units and the 63 former provinces each absorbed, so someone
  who names "Bà Rịa - Vũng Tàu" gets Hồ Chí Minh, with a line about the merger.
- ``schema.yml``: the shape every file is validated against (pykwalify).

Rules the code enforces: a record without ``verified_at`` is never shown to users; a
number is listed only where a source states it (never invented), so most local records
carry what the body does and no number. This package imports nothing from ``bot``:
rasa-sdk actions use it, possibly inside a separate action server.
"""

from __future__ import annotations

import copy
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
NATIONWIDE = "all"
KIND_ORDER = (
    "hotline",
    "social_support",
    "health",
    "police",
    "shelter",
    "legal_aid",
    "labour",
    "consular",
    "ngo",
)


class DirectoryError(Exception):
    """A directory file that cannot be used, with the file it concerns."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    kind: str
    provinces: tuple[str, ...]
    helps_with: str
    source: str
    phone: str | None = None
    website: str | None = None
    address: str | None = None
    hours: str | None = None
    free: bool | None = None
    languages: tuple[str, ...] = ()
    verified_at: date | None = None
    needs_reverification: bool = False
    admin_note: str | None = None
    rank: int = 100  # lower comes first in lists (111 before everything)

    @property
    def shown(self) -> bool:
        """Only verified records reach users."""
        return self.verified_at is not None

    @property
    def nationwide(self) -> bool:
        return NATIONWIDE in self.provinces


@dataclass(frozen=True)
class Unit:
    name: str
    kind: str  # "city" (thành phố trực thuộc trung ương) or "province"
    former: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{'Thành phố' if self.kind == 'city' else 'tỉnh'} {self.name}"


@dataclass(frozen=True)
class Place:
    """Where a person said they are: the unit in force, and the former province they
    named when it is not the unit's own name."""

    unit: Unit
    former: str | None


def fold(text: str) -> str:
    """Lower case, no diacritics, words separated by single spaces ("Bà Rịa-Vũng Tàu" ->
    "ba ria vung tau")."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(re.findall(r"\w+", bare.lower()))


def unit_slug(name: str) -> str:
    return fold(name).replace(" ", "-")


def phone_digits(phone: str) -> str:
    """A phone number as comparable digits: '+84 981 84 84 84' -> '0981848484'."""
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("+84") or (digits.startswith("84") and len(digits) >= 11):
        return "0" + digits[2:]
    return digits


class Directory:
    def __init__(self, services: list[Service], units: list[Unit]) -> None:
        self.services = tuple(services)
        self.units = {unit.name: unit for unit in units}
        self._by_folded: dict[str, tuple[Unit, str | None]] = {}
        for unit in units:
            for former in unit.former:
                if fold(former) != fold(unit.name):
                    self._by_folded[fold(former)] = (unit, former)
        for unit in units:  # a unit's own name wins over a former name spelt the same
            self._by_folded[fold(unit.name)] = (unit, None)

    def resolve(self, name: str) -> Place | None:
        """The unit in force for a unit or former province name, however it is typed."""
        found = self._by_folded.get(fold(name))
        if found is None:
            bare = re.sub(r"(?i)^(tỉnh|tinh|thành phố|thanh pho|tp\.?)\s*", "", name.strip())
            found = self._by_folded.get(fold(bare))
        return None if found is None else Place(found[0], found[1])

    def national(self, kinds: tuple[str, ...] = KIND_ORDER) -> list[Service]:
        return _ordered(s for s in self.services if s.shown and s.nationwide and s.kind in kinds)

    def local(self, unit_name: str) -> list[Service]:
        return _ordered(
            s for s in self.services if s.shown and not s.nationwide and unit_name in s.provinces
        )

    def phones(self) -> set[str]:
        """Every number the directory lists (shown or not), as comparable digits."""
        return {phone_digits(s.phone) for s in self.services if s.phone}


def _ordered(services: Any) -> list[Service]:
    return sorted(services, key=lambda s: (s.rank, KIND_ORDER.index(s.kind), s.id))


# -- reading and checking -------------------------------------------------------------


# libyaml's safe loader builds the same values as PyYAML's, about ten times faster
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise DirectoryError(path, f"invalid YAML{where}: {exc}") from exc
    except ValueError as exc:  # a value YAML cannot build, such as 2026-02-30
        raise DirectoryError(path, f"invalid value: {exc}") from exc
    except OSError as exc:
        raise DirectoryError(path, f"cannot read: {exc}") from exc


@cache
def _schema(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506
    return loaded


def schema_problems(tree: Any, schema: Path = HERE / "schema.yml") -> list[str]:
    from pykwalify.core import Core
    from pykwalify.errors import SchemaError

    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    core = Core(source_data=tree, schema_data=copy.deepcopy(_schema(schema)))
    try:
        core.validate(raise_exception=True)
    except SchemaError:
        return [str(error) for error in core.errors]
    return []


def read_units(root: Path = HERE) -> list[Unit]:
    path = root / "provinces.yml"
    tree = _read_yaml(path)
    try:
        return [
            Unit(str(u["name"]), str(u["kind"]), tuple(str(f) for f in u["former"]))
            for u in tree["units"]
        ]
    except (KeyError, TypeError) as exc:
        raise DirectoryError(path, f"expected units with name, kind, former: {exc}") from exc


def directory_files(root: Path = HERE) -> list[Path]:
    return [root / "national.yml", *sorted((root / "provinces").glob("*.yml"))]


def service_from_record(raw: dict[str, Any]) -> Service:
    """A service from one checked record (a file's entry, or a published version)."""
    return _service(raw)


def record_problems(raw: dict[str, Any], units: set[str]) -> list[str]:
    """Every problem of one record on its own (the admin pages' check on save): the
    schema, the provinces (``[all]`` or one unit in force), the dates and the phone."""
    problems = schema_problems({"version": 1, "services": [raw]})
    if problems:
        return problems
    provinces = set(raw["provinces"])
    if provinces != {NATIONWIDE} and (len(provinces) != 1 or not provinces <= units):
        problems.append("provinces must be [all] or one of the 34 units in force")
    verified = raw.get("verified_at")
    if isinstance(verified, date) and verified > date.today():
        problems.append("verified_at is in the future")
    if raw.get("phone") and not re.fullmatch(r"\+?[0-9][0-9 ]{1,18}[0-9]", raw["phone"]):
        problems.append(f"phone {raw['phone']!r} is not a phone number")
    return problems


def _service(raw: dict[str, Any]) -> Service:
    return Service(
        id=raw["id"],
        name=raw["name"],
        kind=raw["kind"],
        provinces=tuple(raw["provinces"]),
        helps_with=raw["helps_with"].strip(),
        source=raw["source"],
        phone=raw.get("phone"),
        website=raw.get("website"),
        address=raw.get("address"),
        hours=raw.get("hours"),
        free=raw.get("free"),
        languages=tuple(raw.get("languages") or ()),
        verified_at=raw.get("verified_at"),
        needs_reverification=bool(raw.get("needs_reverification", False)),
        admin_note=raw.get("admin_note"),
        rank=int(raw.get("rank", 100)),
    )


def check_directory(root: Path = HERE) -> list[tuple[Path, str]]:
    """Every problem in the directory's files, without loading anything."""
    problems: list[tuple[Path, str]] = []
    try:
        units = {unit.name for unit in read_units(root)}
    except DirectoryError as exc:
        return [(exc.path, exc.message)]
    seen_ids: dict[str, Path] = {}
    covered: set[str] = set()
    for path in directory_files(root):
        if not path.exists():
            problems.append((path, "missing file"))
            continue
        try:
            tree = _read_yaml(path)
        except DirectoryError as exc:
            problems.append((path, exc.message))
            continue
        schema = root / "schema.yml"
        errors = schema_problems(tree, schema if schema.exists() else HERE / "schema.yml")
        problems += [(path, f"schema: {error}") for error in errors]
        if errors:
            continue
        problems += _file_problems(path, tree, units, seen_ids)
        if tree.get("unit") in units:
            covered.add(tree["unit"])
    for missing in sorted(units - covered):
        problems.append((root / "provinces", f"no file for {missing}"))
    return problems


def _file_problems(
    path: Path, tree: dict[str, Any], units: set[str], seen_ids: dict[str, Path]
) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    national = path.name == "national.yml"
    unit = tree.get("unit")
    if not national and unit not in units:
        problems.append((path, f"'unit: {unit}' is not one of the 34 units in force"))
    if not national and path.stem != unit_slug(str(unit)):
        problems.append((path, f"file should be named {unit_slug(str(unit))}.yml"))
    for raw in tree["services"]:
        where = f"service {raw['id']!r}"
        if raw["id"] in seen_ids:
            problems.append((path, f"{where}: id also used in {seen_ids[raw['id']].name}"))
        seen_ids[raw["id"]] = path
        provinces = set(raw["provinces"])
        if national and provinces != {NATIONWIDE}:
            problems.append((path, f"{where}: national services have provinces: [all]"))
        if not national and provinces != {unit}:
            problems.append((path, f"{where}: provinces must be [{unit}]"))
        verified = raw.get("verified_at")
        if verified is not None and (
            not isinstance(verified, date) or isinstance(verified, datetime)
        ):
            problems.append((path, f"{where}: verified_at must be a date (YYYY-MM-DD, unquoted)"))
        elif isinstance(verified, date) and verified > date.today():
            problems.append((path, f"{where}: verified_at is in the future"))
        if raw.get("phone") and not re.fullmatch(r"\+?[0-9][0-9 ]{1,18}[0-9]", raw["phone"]):
            problems.append((path, f"{where}: phone {raw['phone']!r} is not a phone number"))
    return problems


def load_directory(root: Path = HERE) -> Directory:
    """The directory, after checking it; the first problem is raised."""
    problems = check_directory(root)
    if problems:
        path, message = problems[0]
        raise DirectoryError(path, message)
    services = [
        _service(raw) for path in directory_files(root) for raw in _read_yaml(path)["services"]
    ]
    return Directory(services, read_units(root))


_in_use: list[Directory] = []


def use_directory(directory: Directory) -> None:
    """Make ``directory`` the one actions see (the service's published directory,
    edited in the admin pages); replaced whole, so a reader never sees half of it."""
    _in_use[:] = [directory]


@cache
def shipped_directory() -> Directory:
    """The directory shipped with the project, loaded once per process."""
    return load_directory(HERE)


def default_directory() -> Directory:
    """The directory in use: the published one when the service set it, else the
    shipped files (a standalone action server)."""
    return _in_use[0] if _in_use else shipped_directory()
