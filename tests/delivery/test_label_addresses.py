"""No unit, floor or room number on a label, whatever the address's form: a fixed corpus of real shapes
(`data/label_addresses.json`, with the three of issue #26) and a property over addresses generated from
their parts (divisions, road and number, community, building, unit, floor, room; Chinese with and without
markers, numerals, full-width digits, dashes, towers, English forms, both mixed). Read back from the
rendered label too."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tripguard.delivery import labels
from tripguard.delivery.models import Order
from tripguard.vault import masking

pytestmark = pytest.mark.no_database
CORPUS = json.loads((Path(__file__).parent / "data" / "label_addresses.json").read_text(encoding="utf-8"))
NUMERALS = "零〇一二三四五六七八九十百千两"


def _digit_runs(text: str) -> set[str]:
    return set(re.findall(r"\d+", unicodedata.normalize("NFKC", text)))


def _numeral_runs(text: str) -> set[str]:
    return set(re.findall(f"[{NUMERALS}]+", text))


def leaked(token: str, text: str) -> bool:
    """Whether `token` (a number, in digits or Chinese numerals, or a word such as 2门, 5B, Apt) is in `text`
    as itself: 12 is in "12号" and "Floor 12", not in "1201"."""
    token, text = unicodedata.normalize("NFKC", token), unicodedata.normalize("NFKC", text)
    if token.isdigit():
        return token in _digit_runs(text)
    if all(c in NUMERALS for c in token):
        return token in _numeral_runs(text)
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(token)}(?![0-9A-Za-z])", text) is not None


def _number_tokens(text: str) -> set[str]:
    return _digit_runs(text) | _numeral_runs(text)


@pytest.mark.parametrize("case", CORPUS, ids=[c["address"] for c in CORPUS])
def test_the_corpus_label_shows_the_street_and_never_the_unit(case: dict[str, object]) -> None:
    shown = labels.label_address(str(case["address"]))
    for token in case["hidden"]:  # type: ignore[attr-defined]
        assert not leaked(token, shown), (token, shown)
    for part in case["shown"]:  # type: ignore[attr-defined]
        assert part in shown, (part, shown)  # the label still leads the courier to the door
    masked = masking.mask_address(str(case["address"]))
    assert not any(leaked(token, masked) for token in case["hidden"]), masked  # type: ignore[attr-defined]


# Building blocks. Names carry no numerals, so a number found on the label can only be a road number or a
# building (kept on purpose) or a leak.
PROVINCES = ["", "广东省", "浙江省", "江苏省", "湖北省"]
CITIES = ["", "北京市", "上海市", "深圳市", "杭州市", "南京市", "成都市"]
DISTRICTS = ["朝阳区", "海淀区", "浦东新区", "南山区", "西湖区", "鼓楼区", "房山区", "东城区", "余杭区", "武侯区"]
SUBDISTRICTS = ["", "望京街道", "良乡镇", "张江镇"]
ROADS = ["建国路", "长安街", "光华路", "世纪大道", "文星路", "中关村大街", "东直门外大街", "长城路", "祖冲之路",
         "科华北路"]
COMMUNITIES = ["", "SOHO现代城", "金桂园", "望京西园", "万科城市花园", "国贸大厦", "阳光花园", "建外SOHO", "幸福家园"]
SEPARATORS = ["", "", " ", ",", "，"]
STREETS = ["Baker", "Main", "Jianguo", "Market", "King George", "Santa Catarina"]
STREET_TYPES = ["St", "Street", "Rd", "Road", "Ave", "Avenue", "Lane"]
PLACES = ["London NW1 6XE", "Beijing 100020", "Chaoyang District", "San Francisco, CA 94103", "Shenzhen", "Porto"]


def chinese_numeral(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    if n < 20:
        return "十" + (digits[n % 10] if n % 10 else "")
    return digits[n // 10] + "十" + (digits[n % 10] if n % 10 else "")


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


@dataclass
class Shape:
    address: str
    secrets: list[str]  # the unit, floor and room numbers: never on the label
    kept: list[str]  # what the label keeps: it must still be there
    numbers: set[str] = field(default_factory=set)  # numbers the label may show (road, building)


@st.composite
def inside(draw: st.DrawFn) -> tuple[str, list[str]]:
    """What is inside the building, in one of many notations, with its numbers."""
    unit, floor = draw(st.integers(1, 9)), draw(st.integers(2, 40))
    room = floor * 100 + draw(st.integers(1, 20))
    letter = draw(st.sampled_from("ABCDE"))
    forms = [
        (f"{unit}单元{room}室", [str(unit), str(room)]), (f"{unit}单元{room}", [str(unit), str(room)]),
        (f"{unit}门{room}", [str(unit), str(room)]), (f"{room}", [str(room)]), (f"{room}室", [str(room)]),
        (f"{room}户", [str(room)]), (f"{room}房", [str(room)]), (f"{room}号", [str(room)]),
        (f"{floor}层{room}", [str(floor), str(room)]), (f"{floor}楼{room}", [str(floor), str(room)]),
        (f"{chinese_numeral(floor)}楼", [chinese_numeral(floor)]),
        (f"{chinese_numeral(floor)}层{room}室", [chinese_numeral(floor), str(room)]),
        (f"{chinese_numeral(unit)}单元{room}", [chinese_numeral(unit), str(room)]),
        (f"{unit}-{room}", [str(unit), str(room)]), (f"{unit}-{floor}-{room}", [str(unit), str(floor), str(room)]),
        (f"{floor}F", [str(floor)]), (f"{floor}/F {room}", [str(floor), str(room)]),
        (f"Apt {room}", [str(room)]), (f"Apt {floor}{letter}", [f"{floor}{letter}", str(floor)]),
        (f"Unit {unit}", [str(unit)]), (f"Flat {unit}", [str(unit)]), (f"Room {room}", [str(room)]),
        (f"Rm {room}", [str(room)]), (f"Rm.{room}", [str(room)]), (f"#{room}", [str(room)]),
        (f"Suite {room}", [str(room)]), (f"Floor {floor}", [str(floor)]), (f"Level {floor} Unit {room}",
                                                                            [str(floor), str(room)]),
    ]
    chinese = [  # written in characters, and run into a wing's name that ends like a district or a place
        (f"{chinese_numeral(floor)}层", [chinese_numeral(floor)]), (spelt(room), [spelt(room)]),
        (f"{chinese_numeral(unit)}单元{spelt(room)}", [chinese_numeral(unit), spelt(room)]),
    ]
    form, secrets = draw(st.sampled_from(forms + chinese))
    if (form, secrets) in chinese:
        form += draw(st.sampled_from(["", "东区", "北院", "花园"]))
    return form, secrets


def spelt(number: int) -> str:
    """1201 → 一二零一, as a room number is read out."""
    return "".join("零一二三四五六七八九"[int(d)] for d in str(number))


@st.composite
def buildings(draw: st.DrawFn) -> tuple[str, set[str]]:
    number, letter = draw(st.integers(1, 30)), draw(st.sampled_from("ABCDEFG"))
    forms = [("", set()), (f"{number}号楼", {str(number)}), (f"{number}栋", {str(number)}),
             (f"{number}幢", {str(number)}), (f"{number}座", {str(number)}), (f"{number}#楼", {str(number)}),
             (f"{letter}座", set()), (f"{letter}塔", set()), (f"{letter}栋", set()),
             (f"{chinese_numeral(number)}号楼", {chinese_numeral(number)})]
    return draw(st.sampled_from(forms))


@st.composite
def chinese_addresses(draw: st.DrawFn) -> Shape:
    sep = st.sampled_from(SEPARATORS)
    district, road, community = (draw(st.sampled_from(DISTRICTS)), draw(st.sampled_from(ROADS)),
                                 draw(st.sampled_from(COMMUNITIES)))
    number = str(draw(st.integers(1, 999)))
    road_number = draw(st.sampled_from([f"{number}号", f"{number}号院", f"{number}-{draw(st.integers(1, 9))}号"]))
    building, building_numbers = draw(buildings())
    unit, secrets = draw(inside())
    heads = [draw(st.sampled_from(PROVINCES)), draw(st.sampled_from(CITIES)), district,
             draw(st.sampled_from(SUBDISTRICTS))]
    road_line = road + draw(st.sampled_from(["", " "])) + road_number
    text = "".join(heads) + road_line
    for part in (community, building):
        if part:
            # 建外SOHO A座, as written: run together, SOHOA would be one word
            text += (" " if text[-1].isascii() and part[0].isascii() else draw(sep)) + part
    text += draw(sep) + unit
    if draw(st.booleans()):
        text = full_width(text)
    kept = [district, road_line, community] + ([building] if building else [])
    return Shape(text, secrets, [k for k in kept if k], _number_tokens(road_number) | building_numbers)


@st.composite
def english_addresses(draw: st.DrawFn) -> Shape:
    number = str(draw(st.integers(1, 999)))
    street = f"{number} {draw(st.sampled_from(STREETS))} {draw(st.sampled_from(STREET_TYPES))}"
    unit, secrets = draw(inside().filter(lambda form: not re.search(r"[\u3400-\u9fff]", form[0])))
    place = draw(st.sampled_from(PLACES))
    order = draw(st.sampled_from(["unit, street, place", "street, unit, place", "street unit, place",
                                  "unit street, place", "street, place, unit"]))
    text = order.replace("unit", unit).replace("street", street).replace("place", place)
    if draw(st.booleans()):
        text = full_width(text)
    kept = [street] if order.startswith(("street", "unit,")) else []
    return Shape(text, secrets, kept, {number} | _number_tokens(place))


@settings(max_examples=400, deadline=None)
@given(st.one_of(chinese_addresses(), english_addresses()))
def test_no_generated_address_puts_its_unit_floor_or_room_on_the_label(shape: Shape) -> None:
    assume(not any(unicodedata.normalize("NFKC", secret) in shape.numbers for secret in shape.secrets))
    shown = labels.label_address(shape.address)
    for secret in shape.secrets:
        assert not leaked(secret, shown), (secret, shape.address, shown)
    normalized = unicodedata.normalize("NFKC", shown)
    for part in shape.kept:
        assert unicodedata.normalize("NFKC", part) in normalized, (part, shape.address, shown)
    masked = masking.mask_address(shape.address)
    assert not any(leaked(secret, masked) for secret in shape.secrets), (shape.address, masked)


def _address_on(pdf: bytes) -> str:
    """The label's address lines, read back from the PDF and joined (they wrap at 22 characters)."""
    document = pdfium.PdfDocument(pdf)
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    after = text.split("地址 Address", 1)[1]
    return "".join(after.split("内件 Items", 1)[0].split())


def test_no_corpus_address_puts_its_unit_on_the_rendered_label() -> None:
    order = Order(id="O1", pickup_code="0000")
    for case in CORPUS:
        pdf = labels.render(order, "王**", "1234", labels.label_address(case["address"]), items=["米饭 × 1"],
                            fmt="pdf")
        printed = _address_on(pdf)
        for token in case["hidden"]:
            assert not leaked("".join(token.split()), printed), (token, printed)
        for part in case["shown"]:
            assert "".join(part.split()) in printed, (part, printed)
