"""How much of an address may be printed: read from the start, each part kept only when it is recognised as
safe (a division, a road and its number, a named place, a marked building); at the first part that is not,
the rest is hidden. An address form nobody foresaw is therefore hidden, never printed (GB/T 41833-2022:
a waybill hides the unit, household and room; TripGuard hides the floor too).

Chinese: 北京市朝阳区建国路88号SOHO现代城5号楼2门501 → 北京市朝阳区建国路88号SOHO现代城5号楼****.
Other scripts, part by comma-separated part: Flat 3, 12 Baker St, London NW1 6XE → ****, 12 Baker St, London NW1 6XE.
"""

from __future__ import annotations

import re
import unicodedata

HIDDEN = "****"
_CJK = "\u3400-\u9fff"
_HAS_CJK = re.compile(f"[{_CJK}]")
_NUMERALS = "零〇一二三四五六七八九十百千两"


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))  # the longest first: 新区 before 区


# A division, a road, a named place: each is a name closed by one of these.
_DIVISIONS = ("特别行政区", "自治区", "自治州", "自治县", "地区", "新区", "开发区", "街道", "省", "市", "州", "盟",
              "区", "县", "旗", "镇", "乡")
_ROADS = ("大街", "大道", "胡同", "街", "路", "道", "巷", "弄", "里", "条")
_PLACES = ("小区", "花园", "家园", "公寓", "大厦", "大楼", "广场", "中心", "新村", "社区", "公馆", "山庄",
           "国际", "天地", "商城", "市场", "苑", "园", "城", "府", "邸", "庭", "居", "村", "坊", "湾", "庄", "院", "期")
# Latin words that name or introduce what is inside a building (an apartment, a floor, a room) or a
# building's number: never kept as a name.
UNIT_WORDS = frozenset({
    "apt", "apts", "apartment", "ap", "apto", "unit", "flat", "room", "rm", "suite", "ste", "floor", "fl", "flr",
    "level", "lvl", "storey", "story", "no", "nr", "num", "number", "door", "tower", "block", "blk", "bldg",
    "building", "piso", "andar", "esq", "dto", "dpto", "depto", "etage", "wohnung", "house", "lot", "box", "po",
    "penthouse", "ph", "basement", "bsmt", "ground", "gf", "mezzanine", "attic", "loft",
})

_SEPARATOR = re.compile(r"[\s,，、;；()（）\[\]【】]+")
_NAME = rf"[{_CJK}A-Za-z·]"
_SUFFIX = re.compile(_alternation(_DIVISIONS + _ROADS + _PLACES))
_SUFFIXED = re.compile(rf"{_NAME}+?(?P<suffix>{_SUFFIX.pattern})")
_LATIN_ENDED = re.compile(rf"{_NAME}*?(?P<word>[A-Za-z]{{3,}})(?![A-Za-z])")
# A number next to one of these inside a name is a unit, a floor or a room, written in characters (二单元, 十二层).
_INSIDE_MARK = re.compile(rf"[{_NUMERALS}A-Za-z#](?:单元|层|楼|室|户|房|门|栋|幢|座|塔|号|间|梯|#)|单元")
_NUMBER_WORD = re.compile(rf"[{_NUMERALS}]{{3,}}")  # 一二零一: a room number spelt out
_ROMAN_FLOOR = re.compile(r"[IVXLCDM]+[A-Z]?")  # XIIA, XIIF (Ⅻ after NFKC): a floor and a flat, not a name
# The number on the road: only right after a road (88号, 88-1号, 甲8号, 1088弄, 3号院).
_ROAD_NUMBER = re.compile(r"[甲乙丙丁]?\d{1,5}(?:-\d{1,4})?(?:号院|号|弄)(?!楼|馆)")
_COMPOUND = re.compile(r"\d{1,4}号院")  # a numbered courtyard of a community (望京西园3号院)
# A building, only when marked as one (5号楼, 3栋, B座, B塔, A1幢, 五号楼, 5#楼); the last part kept.
_BUILDING = re.compile(rf"(?:\d{{1,3}}[A-Z]?|[A-Z]\d{{0,2}}|[{_NUMERALS}]{{1,3}})\s?(?:号楼|号馆|栋|幢|座|塔|#楼)")


def _safe_name(name: str) -> bool:
    return not (_INSIDE_MARK.search(name) or _NUMBER_WORD.search(name))  # names hold no digits (_NAME)


def _name_at(text: str, position: int) -> re.Match[str] | None:
    for pattern in (_SUFFIXED, _LATIN_ENDED):
        match = pattern.match(text, position)
        if match is None or not _safe_name(match.group()):
            continue
        if pattern is _LATIN_ENDED and (match.group("word").lower() in UNIT_WORDS
                                        or _ROMAN_FLOOR.fullmatch(match.group("word"))):
            continue
        return match
    return None


def _kind(suffix: str | None) -> str:
    return "road" if suffix in _ROADS else "division" if suffix in _DIVISIONS else "name"


def _extended(text: str, name: re.Match[str]) -> tuple[int, str]:
    """A name read up to its first suffix goes on through the suffixes right after it, and is of the kind of
    the last: 东城|区 is a district, 长城|路 a road, 万科城|市|花园 a place."""
    end, suffix = name.end(), name.groupdict().get("suffix")
    while (more := _SUFFIX.match(text, end)) and _safe_name(text[name.start():more.end()]):
        end, suffix = more.end(), more.group()
    return end, _kind(suffix)


def _next_part(text: str, position: int, *, after_road: bool) -> tuple[int, str] | None:
    """Where the safe part starting at `position` ends and what it is (road, number, building, name)."""
    if after_road and (number := _ROAD_NUMBER.match(text, position)):
        return number.end(), "number"
    if building := _BUILDING.match(text, position):
        return building.end(), "building"
    if compound := _COMPOUND.match(text, position):
        return compound.end(), "number"
    name = _name_at(text, position)
    return None if name is None else _extended(text, name)


def _parts(text: str) -> list[tuple[int, str]]:
    """The safe parts from the start of the address, each as (its end, its kind); a building is the last."""
    parts: list[tuple[int, str]] = []
    position = 0
    while position < len(text):
        if separator := _SEPARATOR.match(text, position):
            position = separator.end()
            continue
        part = _next_part(text, position, after_road=bool(parts) and parts[-1][1] == "road")
        if part is None:
            break
        parts.append(part)
        position = part[0]
        if part[1] == "building":
            break  # nothing inside a building is printed
    return parts


def _printed(text: str, kept: int) -> str:
    shown = text[:kept].rstrip(" ,，、;；(（[【")
    rest = text[kept:]
    if not rest or _SEPARATOR.fullmatch(rest):
        return shown or HIDDEN
    return shown + HIDDEN


# Other scripts: a street line (12 Baker St; Rua de Santa Catarina 100; No. 88 Jianguo Rd), a place, a postcode.
_STREET_TYPES = ("Street", "St", "Road", "Rd", "Avenue", "Ave", "Av", "Boulevard", "Blvd", "Lane", "Ln", "Drive",
                 "Dr", "Way", "Place", "Pl", "Court", "Ct", "Terrace", "Tce", "Close", "Crescent", "Cres", "Highway",
                 "Hwy", "Square", "Sq", "Parkway", "Pkwy", "Alley", "Row", "Gardens", "Grove", "Walk", "Hutong")
_STREET_FIRST = ("Rua", "Avenida", "Av", "Travessa", "Largo", "Praça", "Rue", "Calle", "Via", "Viale", "Piazza")
_WORDS = r"[^\W\d_]+\.?(?:[ '’-][^\W\d_]+\.?)*"
# A house number may carry a letter (12A), never F: 12F is a floor.
_HOUSE = r"\d{1,5}(?:[A-EG-Za-eg-z](?![A-Za-z]))?(?:-\d{1,5})?"
_STREET = re.compile(
    rf"(?:No\.?\s?)?{_HOUSE}\s+(?P<name>{_WORDS})\s+(?:{_alternation(_STREET_TYPES)})\b\.?"
    rf"|(?:{_alternation(_STREET_FIRST)})\.?\s+(?P<name2>{_WORDS})\s+{_HOUSE}(?![\w#-])", re.IGNORECASE)
_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|\d{6}|\d{5}(?:-\d{4})?|\d{4}-\d{3}"
_PLACE = re.compile(rf"(?P<name>{_WORDS})(?:\s+(?:{_POSTCODE}|[A-Z]{{1,2}}\d[A-Z\d]?))?|(?:{_POSTCODE})")


def _unit_word_in(words: str) -> bool:
    return any(word.strip(".").lower() in UNIT_WORDS for word in re.split(r"[ '’-]", words))


def is_place(part: str) -> bool:
    """A place's name, a postcode, or both (London NW1 6XE, Beijing 100020, CA 94103): nothing of a building."""
    match = _PLACE.fullmatch(unicodedata.normalize("NFKC", part).strip())
    if match is None or match.group("name") is None:
        return match is not None
    words = match.group("name").split()
    # Tower B, Flat A: a one-letter last word names a building or a flat, not a place.
    return not _unit_word_in(match.group("name")) and not (len(words) > 1 and len(words[-1].strip(".")) == 1)


# 1201-88 Queen St, 5-12 Baker St: a unit before the house number; Rua X 100-2: a floor after it.
_UNIT_BEFORE = re.compile(r"^((?:No\.?\s?)?)\d{1,5}[A-Za-z]?-(?=\d)")
_UNIT_AFTER = re.compile(r"(\d{1,5}[A-Za-z]?)-\d{1,5}$")


def _street(part: str) -> tuple[str, bool] | None:
    """The street line at the start of `part` (a unit or floor joined to its number left out), and whether
    anything follows it."""
    match = _STREET.match(part)
    if match is None:
        return None
    line = _UNIT_AFTER.sub(r"\1", _UNIT_BEFORE.sub(r"\1", match.group()))
    return line, bool(part[match.end():].strip(" ,."))


def _other(text: str) -> str:
    parts = [p.strip() for p in re.split(r"[,;\n]", text) if p.strip()]
    streets = [_street(part) for part in parts]
    first_street = next((i for i, street in enumerate(streets) if street is not None), None)
    kept: list[str] = []
    for index, (part, street) in enumerate(zip(parts, streets, strict=True)):
        if street is not None:
            kept.append(street[0] + (" " + HIDDEN if street[1] else ""))
        # A place comes after the street line (a city, a postcode); before it, or in an address without
        # one but for the last part, a part is a name, a company or a flat: never printed.
        elif is_place(part) and (index > first_street if first_street is not None else index == len(parts) - 1):
            kept.append(part)
        elif not kept or kept[-1] != HIDDEN:
            kept.append(HIDDEN)
    return ", ".join(kept) or HIDDEN


def street_level(address: str) -> str:
    """The address down to its street, road number, named place and marked building; no unit, floor or room."""
    text = unicodedata.normalize("NFKC", address).strip()  # full-width digits and letters read as ASCII
    if not text:
        return ""
    if not _HAS_CJK.search(text):
        return _other(text)
    parts = _parts(text)
    return _printed(text, parts[-1][0] if parts else 0)


def divisions_only(address: str) -> str:
    """A Chinese address down to its district: the divisions it starts with, nothing after."""
    text = unicodedata.normalize("NFKC", address).strip()
    kept = 0
    for end, kind in _parts(text):
        if kind != "division":
            break
        kept = end
    return text[:kept].rstrip(" ,，、") + HIDDEN
