"""Entities from lookup tables, regexes and synonyms: values, and offsets that always
slice the original text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.nlu.entities import EntityExtractor, fold, fold_with_offsets
from bot.nlu.rasa_yaml import read_nlu_dir
from bot.nlu.training import entity_data, entity_extractor

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return entity_extractor({"entities": entity_data(read_nlu_dir(REPO / "data" / "nlu"))})


def found(extractor: EntityExtractor, text: str) -> list[tuple[str, str, str]]:
    return [(e.entity, e.value, text[e.start : e.end]) for e in extractor.extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("em 15 tuổi", ("age", "15", "15")),
        ("con toi 16t roi", ("age", "16", "16")),
        ("sdt cua toi 0912 345 678", ("phone_number", "0912 345 678", "0912 345 678")),
        ("gọi +84912345678 nhé", ("phone_number", "+84912345678", "+84912345678")),
        ("môi giới đòi 5000 đô", ("amount", "5000 đô", "5000 đô")),
        ("phí 30 triệu có đúng không", ("amount", "30 triệu", "30 triệu")),
    ],
)
def test_regex_entities(
    extractor: EntityExtractor, text: str, expected: tuple[str, str, str]
) -> None:
    assert expected in found(extractor, text)


def test_hotlines_are_not_personal_phone_numbers(extractor: EntityExtractor) -> None:
    assert not [e for e in extractor.extract("gọi 111 hoặc 113") if e.entity == "phone_number"]


def test_lookup_is_case_and_diacritic_insensitive_and_takes_synonyms() -> None:
    extractor = EntityExtractor(
        {"province": ["Quảng Ninh", "Bà Rịa - Vũng Tàu", "Vũng Tàu"], "country": ["Cam"]},
        [],
        {"Vũng Tàu": "Hồ Chí Minh", "Bà Rịa - Vũng Tàu": "Hồ Chí Minh", "cam": "Campuchia"},
    )
    assert found(extractor, "toi o QUANG NINH") == [("province", "Quảng Ninh", "QUANG NINH")]
    assert found(extractor, "ở vung tau") == [("province", "Hồ Chí Minh", "vung tau")]
    assert found(extractor, "Bà Rịa-Vũng Tàu") == [("province", "Hồ Chí Minh", "Bà Rịa-Vũng Tàu")]
    assert found(extractor, "sang cam rồi") == [("country", "Campuchia", "cam")]
    assert found(extractor, "camera hỏng") == []  # whole words only


def test_offsets_survive_decomposed_input() -> None:
    extractor = EntityExtractor({"province": ["Hà Nội"]}, [], {})
    decomposed = "ở Ha\u0300 Nô\u0323\u0302i nhé"  # combining marks, not NFC
    (entity,) = extractor.extract(decomposed)
    assert decomposed[entity.start : entity.end] == "Ha\u0300 Nô\u0323\u0302i"
    assert entity.value == "Hà Nội"


def test_fold_with_offsets_maps_every_character_back() -> None:
    folded, origin = fold_with_offsets("Đà Nẵng")
    assert folded == "da nang"
    assert origin == [0, 1, 2, 3, 4, 5, 6]


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_offsets_always_slice_the_original_text(text: str) -> None:
    extractor = EntityExtractor(
        {"province": ["Hà Nội", "Vũng Tàu"], "country": ["Campuchia"]},
        [("age", r"(?<!\d)(?P<value>\d{1,2}) ?(?:tuoi|t)(?!\w)"), ("amount", r"\d+ ?trieu")],
        {"Vũng Tàu": "Hồ Chí Minh"},
    )
    for entity in extractor.extract(text + " ha noi 15 tuoi"):
        piece = (text + " ha noi 15 tuoi")[entity.start : entity.end]
        assert piece and piece == piece.strip(" ")
        assert 0 <= entity.start < entity.end <= len(text) + len(" ha noi 15 tuoi")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("toi o vung tau", ("province", "Hồ Chí Minh")),
        ("em ở Vĩnh Cửu", ("province", "Đồng Nai")),
        ("nhà ở Hà Giang", ("province", "Tuyên Quang")),
        ("tôi ở quảng ninh", ("province", "Quảng Ninh")),
        ("em bi lua sang lao", ("country", "Lào")),
        ("chồng em làm bên đài", ("country", "Đài Loan")),
        ("bị đưa sang Campuchia", ("country", "Campuchia")),
    ],
)
def test_places_map_to_what_is_in_force(
    extractor: EntityExtractor, text: str, expected: tuple[str, str]
) -> None:
    assert expected in [(e.entity, e.value) for e in extractor.extract(text)]


@pytest.mark.parametrize(
    "text",
    [
        "tôi đi xuất khẩu lao động",
        "cảm ơn bạn",
        "ở đại sứ quán",
        "đi cắm trại",
        "tôi tự cảm thấy buồn",
    ],
)
def test_everyday_words_are_not_places(extractor: EntityExtractor, text: str) -> None:
    assert [e for e in extractor.extract(text) if e.entity in {"country", "province"}] == []


def test_every_province_and_former_province_resolves(extractor: EntityExtractor) -> None:
    import yaml

    shared = REPO.parent / "shared" / "domain" / "provinces.yml"
    if not shared.exists():
        pytest.skip(f"the shared province list is not at {shared}")
    units = yaml.safe_load(shared.read_text(encoding="utf-8"))["units"]
    for unit in units:
        for name in [unit["name"], *unit["former"]]:
            for text in (f"tôi ở {name}", f"toi o {fold(name)}"):
                values = [e.value for e in extractor.extract(text) if e.entity == "province"]
                assert values == [unit["name"]], (text, values)
