"""The services directory: its files, its checks and what it shows people.

Checks that the shipped directory is clean and loads; that each kind of broken file (on
a temporary copy of the package's YAML files) is reported against the right file; that
unverified records are never shown; that every unit and former province name resolves
however it is typed; that every unit lists local services starting with the UBND xã and
no unverified number; which numbers the directory knows; and that the directory's copy
of the province list matches the shared one.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

import services_directory
from services_directory import Directory, DirectoryError, check_directory, load_directory

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "services_directory"
SHARED_PROVINCES = REPO.parent / "shared" / "domain" / "provinces.yml"

Raw = dict[str, Any]

UNITS: list[Raw] = yaml.safe_load((PACKAGE / "provinces.yml").read_text(encoding="utf-8"))["units"]
UNIT_NAMES = [str(u["name"]) for u in UNITS]
FORMER_TO_UNIT = {str(f): str(u["name"]) for u in UNITS for f in u["former"]}


def strip(text: str) -> str:
    """The text without Vietnamese diacritics (đ -> d), case kept."""
    bare = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in bare if not unicodedata.combining(c)))


def slug(name: str) -> str:
    return strip(name).lower().replace(" ", "-")


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(PACKAGE)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the directory's files to break."""
    copy = tmp_path / "directory"
    copy.mkdir()
    for name in ("national.yml", "provinces.yml", "schema.yml"):
        shutil.copy(PACKAGE / name, copy / name)
    shutil.copytree(PACKAGE / "provinces", copy / "provinces")
    return copy


def edit(path: Path, change: Callable[[Raw], object]) -> None:
    tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(tree)
    path.write_text(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False), encoding="utf-8")


def first_service(change: Callable[[Raw], object]) -> Callable[[Raw], object]:
    return lambda tree: change(tree["services"][0])


def set_key(key: str, value: object) -> Callable[[Raw], object]:
    return lambda raw: raw.__setitem__(key, value)


def drop_key(key: str) -> Callable[[Raw], object]:
    return lambda raw: raw.pop(key)


# -- the shipped directory -------------------------------------------------------------------


def test_shipped_directory_is_clean() -> None:
    assert check_directory(PACKAGE) == []
    assert check_directory() == []


def test_shipped_directory_loads(directory: Directory) -> None:
    assert len(directory.units) == 34
    assert set(directory.units) == set(UNIT_NAMES)
    ids = [s.id for s in directory.services]
    assert len(ids) == len(set(ids))
    assert "hotline-111" in ids
    assert services_directory.default_directory().services == directory.services


def test_an_untouched_copy_is_clean(root: Path) -> None:
    # the control for every broken copy below
    assert check_directory(root) == []
    assert len(load_directory(root).services) == len(load_directory(PACKAGE).services)


# -- broken copies ---------------------------------------------------------------------------


BROKEN_CASES = [
    pytest.param(
        "national.yml",
        first_service(set_key("kind", "charity")),
        "schema: Enum 'charity' does not exist. Path: '/services/0/kind'",
        id="wrong-kind",
    ),
    pytest.param(
        "provinces/hue.yml",
        first_service(drop_key("name")),
        "schema: Cannot find required key 'name'",
        id="no-name",
    ),
    pytest.param(
        "provinces/hue.yml",
        first_service(drop_key("helps_with")),
        "schema: Cannot find required key 'helps_with'",
        id="no-helps-with",
    ),
    pytest.param(
        "national.yml",
        first_service(drop_key("source")),
        "schema: Cannot find required key 'source'",
        id="no-source",
    ),
    pytest.param(
        "national.yml",
        first_service(set_key("id", "Hotline_111")),
        "schema: Value 'Hotline_111' does not match pattern",
        id="bad-id",
    ),
    pytest.param(
        "national.yml",
        first_service(set_key("phone", 111)),
        "schema: Value '111' is not of type 'str'",
        id="phone-not-a-string",
    ),
    pytest.param(
        "national.yml",
        first_service(set_key("verified_at", "hôm qua")),
        "schema: Not a valid date",
        id="verified-at-not-a-date",
    ),
    pytest.param(
        "provinces/hue.yml",
        set_key("unit", "Thừa Thiên Huế"),
        "'unit: Thừa Thiên Huế' is not one of the 34 units in force",
        id="unit-is-a-former-province",
    ),
    pytest.param(
        "provinces/hue.yml",
        lambda tree: tree["services"][1].__setitem__("id", "hotline-111"),
        "service 'hotline-111': id also used in national.yml",
        id="duplicate-id",
    ),
    pytest.param(
        "provinces/hue.yml",
        lambda tree: tree["services"][1].__setitem__("id", "hue-ubnd-xa"),
        "service 'hue-ubnd-xa': id also used in hue.yml",
        id="duplicate-id-in-one-file",
    ),
    pytest.param(
        "national.yml",
        first_service(set_key("provinces", ["Hà Nội"])),
        "service 'hotline-111': national services have provinces: [all]",
        id="national-not-all",
    ),
    pytest.param(
        "national.yml",
        first_service(set_key("provinces", ["all", "Hà Nội"])),
        "service 'hotline-111': national services have provinces: [all]",
        id="national-all-and-more",
    ),
    pytest.param(
        "provinces/hue.yml",
        first_service(set_key("provinces", ["Hà Nội"])),
        "service 'hue-ubnd-xa': provinces must be [Huế]",
        id="local-for-another-unit",
    ),
    pytest.param(
        "national.yml",
        first_service(set_key("verified_at", date.today() + timedelta(days=1))),
        "service 'hotline-111': verified_at is in the future",
        id="verified-tomorrow",
    ),
    pytest.param(
        "national.yml",
        first_service(set_key("phone", "gọi ngay")),
        "service 'hotline-111': phone 'gọi ngay' is not a phone number",
        id="phone-is-words",
    ),
    pytest.param(
        "provinces/hue.yml",
        first_service(set_key("phone", "1900-1234")),
        "service 'hue-ubnd-xa': phone '1900-1234' is not a phone number",
        id="phone-with-dash",
    ),
    pytest.param(
        "provinces/hue.yml",
        first_service(set_key("website", "https://hue.gov.vn")),
        "schema: Value 'https://hue.gov.vn' does not match pattern",
        id="website-with-scheme",
    ),
    pytest.param(
        "national.yml",
        drop_key("version"),
        "schema: Cannot find required key 'version'",
        id="no-version",
    ),
]


@pytest.mark.parametrize(("relative", "change", "expected"), BROKEN_CASES)
def test_a_broken_file_is_reported_by_name(
    root: Path, relative: str, change: Callable[[Raw], object], expected: str
) -> None:
    path = root / relative
    edit(path, change)
    problems = check_directory(root)
    assert any(p == path and expected in message for p, message in problems), problems


def test_load_directory_refuses_a_broken_directory_naming_the_first_problem(root: Path) -> None:
    edit(root / "provinces" / "hue.yml", first_service(set_key("phone", "gọi ngay")))
    edit(root / "national.yml", first_service(set_key("kind", "charity")))
    with pytest.raises(DirectoryError) as raised:
        load_directory(root)
    assert raised.value.path == root / "national.yml"
    assert raised.value.message.startswith("schema: Enum 'charity'")
    assert str(raised.value).startswith(f"{root / 'national.yml'}: ")


def test_a_missing_province_file_is_reported(root: Path) -> None:
    (root / "provinces" / "hue.yml").unlink()
    assert check_directory(root) == [(root / "provinces", "no file for Huế")]


def test_a_misnamed_province_file_is_reported(root: Path) -> None:
    misnamed = root / "provinces" / "thua-thien-hue.yml"
    (root / "provinces" / "hue.yml").rename(misnamed)
    assert check_directory(root) == [(misnamed, "file should be named hue.yml")]


def test_invalid_yaml_is_reported_with_its_line(root: Path) -> None:
    path = root / "provinces" / "hue.yml"
    path.write_text("version: 1\nunit: [Huế\nservices: []\n", encoding="utf-8")
    problems = check_directory(root)
    assert [p for p, _ in problems if p == path] == [path]
    message = next(m for p, m in problems if p == path)
    assert message.startswith("invalid YAML (line 3)")


def test_an_unreadable_province_list_is_reported(root: Path) -> None:
    (root / "provinces.yml").write_text("version: 1\nunits: [{name: Huế}]\n", encoding="utf-8")
    [(path, message)] = check_directory(root)
    assert path == root / "provinces.yml"
    assert message.startswith("expected units with name, kind, former")


def test_a_quoted_future_verified_at_is_reported(root: Path) -> None:
    edit(root / "national.yml", first_service(set_key("verified_at", "2099-01-01")))
    assert any("verified_at" in message for _, message in check_directory(root))


def test_an_impossible_verified_at_is_a_problem_not_a_crash(root: Path) -> None:
    path = root / "national.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        re.sub(r"verified_at: .*", "verified_at: 2026-02-30", text, count=1), encoding="utf-8"
    )
    assert any(p == path for p, _ in check_directory(root))


# -- what people are shown -------------------------------------------------------------------


UNVERIFIED_IDS = ["ngo-blue-dragon", "ngo-pacific-links", "ngo-hagar", "ha-noi-tro-giup-phap-ly"]


def test_unverified_records_exist_but_are_never_shown(directory: Directory) -> None:
    hidden = [s for s in directory.services if s.verified_at is None]
    assert {s.id for s in hidden} >= set(UNVERIFIED_IDS)
    assert {s.kind for s in hidden} == {"ngo", "legal_aid"}
    assert all(not s.shown for s in hidden)
    shown_ids = {s.id for s in directory.national()} | {
        s.id for unit in directory.units for s in directory.local(unit)
    }
    assert shown_ids.isdisjoint(s.id for s in hidden)
    assert all(s.verified_at is not None for s in directory.national())
    assert "ngo" not in {s.kind for s in directory.national()}


def test_removing_verified_at_hides_a_record(root: Path) -> None:
    edit(root / "national.yml", first_service(drop_key("verified_at")))
    edit(root / "provinces" / "hue.yml", first_service(drop_key("verified_at")))
    changed = load_directory(root)
    assert "hotline-111" not in [s.id for s in changed.national()]
    assert "hue-ubnd-xa" not in [s.id for s in changed.local("Huế")]
    assert "hotline-111" in [s.id for s in changed.services]
    # its number is still known to the linter (phones() covers hidden records)
    assert "111" in changed.phones()


def test_national_lists_111_first(directory: Directory) -> None:
    everything = directory.national()
    assert everything[0].id == "hotline-111"
    assert everything[0].phone == "111"
    assert [s.phone for s in directory.national(("hotline", "police", "health"))][:4] == [
        "111",
        "113",
        "115",
        "114",
    ]
    assert all(s.nationwide and s.shown for s in everything)


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_every_unit_has_local_services_starting_with_the_ubnd(
    directory: Directory, unit: str
) -> None:
    local = directory.local(unit)
    assert local, unit
    first = local[0]
    assert first.id == f"{slug(unit)}-ubnd-xa"
    assert first.name.startswith("UBND xã")
    assert first.kind == "social_support"
    assert all(s.provinces == (unit,) and s.shown for s in local)
    assert [s.phone for s in local if s.phone] == []  # no local number is verified


def test_phones_holds_the_national_numbers_as_digits(directory: Directory) -> None:
    phones = directory.phones()
    assert {"111", "113", "114", "115", "0981848484"} <= phones
    assert all(p.isdigit() for p in phones)
    assert "18001567" not in phones


@pytest.mark.parametrize(
    "path",
    sorted(PACKAGE.rglob("*.yml")),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_the_retired_number_is_in_no_directory_file(path: Path) -> None:
    squeezed = re.sub(r"[\s.\-()]", "", path.read_text(encoding="utf-8"))
    assert "18001567" not in squeezed


# -- resolve ---------------------------------------------------------------------------------


SPELLINGS: dict[str, Callable[[str], str]] = {
    "as-written": lambda name: name,
    "no-diacritics": strip,
    "no-diacritics-lower": lambda name: strip(name).lower(),
    "upper": str.upper,
    "decomposed": lambda name: unicodedata.normalize("NFD", name),
    "tinh-prefix": lambda name: f"tỉnh {name}",
    "thanh-pho-prefix": lambda name: f"thành phố {name}",
    "Thanh-Pho-prefix": lambda name: f"Thành phố {name}",
    "bare-prefix": lambda name: f"tinh {strip(name)}",
    "spaced": lambda name: f"  {name.replace(' ', '   ')}  ",
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("name", UNIT_NAMES)
def test_unit_names_resolve_to_themselves(directory: Directory, name: str, spelling: str) -> None:
    place = directory.resolve(SPELLINGS[spelling](name))
    assert place is not None
    assert place.unit.name == name
    assert place.former is None


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("former", sorted(FORMER_TO_UNIT))
def test_former_province_names_resolve_to_their_unit(
    directory: Directory, former: str, spelling: str
) -> None:
    unit = FORMER_TO_UNIT[former]
    place = directory.resolve(SPELLINGS[spelling](former))
    assert place is not None
    assert place.unit.name == unit
    expected_former = None if strip(former).lower() == strip(unit).lower() else former
    assert place.former == expected_former


def test_the_province_list_has_34_units_and_63_former_provinces() -> None:
    assert len(UNIT_NAMES) == len(set(UNIT_NAMES)) == 34
    assert len(FORMER_TO_UNIT) == 63
    # every unit but Huế keeps its own name among the former ones: 30 names changed
    renamed = {former for former, unit in FORMER_TO_UNIT.items() if former != unit}
    assert len(renamed) == 30
    assert "Thừa Thiên Huế" in renamed


@pytest.mark.parametrize(
    ("typed", "unit", "former"),
    [
        ("Bà Rịa - Vũng Tàu", "Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("ba ria vung tau", "Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("Bà Rịa–Vũng Tàu", "Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("Thừa Thiên - Huế", "Huế", "Thừa Thiên Huế"),
        ("Hoà Bình", "Phú Thọ", "Hòa Bình"),  # the other tone-mark placement
        ("Thanh Hoá", "Thanh Hóa", None),
        ("TP Hồ Chí Minh", "Hồ Chí Minh", None),
        ("Dak Lak", "Đắk Lắk", None),
        ("DAK NONG", "Lâm Đồng", "Đắk Nông"),
    ],
)
def test_resolve_common_spellings(
    directory: Directory, typed: str, unit: str, former: str | None
) -> None:
    place = directory.resolve(typed)
    assert place is not None
    assert (place.unit.name, place.former) == (unit, former)


@pytest.mark.parametrize("typed", ["Bangkok", "Hà Tây", "Đài Loan", "tỉnh", "", "   ", "Hà"])
def test_unknown_names_resolve_to_none(directory: Directory, typed: str) -> None:
    assert directory.resolve(typed) is None


# -- the shared province list -----------------------------------------------------------------


def test_units_equal_the_shared_province_list() -> None:
    if not SHARED_PROVINCES.exists():
        pytest.skip(f"{SHARED_PROVINCES} is not present (the directory stands alone)")
    shared = yaml.safe_load(SHARED_PROVINCES.read_text(encoding="utf-8"))
    assert shared["units"] == UNITS
