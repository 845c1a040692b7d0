"""Masking for display: one function per kind of personal data (DESIGN.md §5, GB/T 35273).

Names hide at least one character (张*、王先生); phones hide at least six digits and show the last
four at most; ID numbers and bank cards show their last characters only; addresses stop at the
district, never the building, unit or room; free text has the phone, ID, card numbers and e-mail
addresses inside it masked, and every other number, and the value after a word like 门禁码 or PIN, hidden.
"""

from __future__ import annotations

import re
import unicodedata

from tripguard.vault import addresses

STAR = "*"
_CJK = re.compile(r"[\u3400-\u9fff]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# Two-character surnames common enough that hiding the second character would reveal too much.
_COMPOUND_SURNAMES = frozenset({"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
                                "夏侯", "轩辕", "令狐", "宇文", "司徒", "端木"})


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧阳**, John Smith → J*** S****."""
    name = name.strip()
    if not name:
        return ""
    if _CJK.search(name):
        keep = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
        return name[:keep] + STAR * max(1, len(name) - keep)
    return " ".join(part[0] + STAR * max(1, len(part) - 1) for part in name.split())


def courtesy_name(name: str, title: str = "先生") -> str:
    """The surname and a courtesy title, as couriers say it: 王芳 → 王女士 (title chosen by the caller)."""
    name = name.strip()
    if _CJK.search(name):
        keep = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
        return name[:keep] + title
    parts = name.split()
    return f"{title} {parts[-1]}" if parts else title


def mask_phone(phone: str) -> str:
    """Hide at least six digits, show the last four at most: 13800001234 → *******1234."""
    digits = re.sub(r"\D", "", phone)
    if not digits:
        return ""
    shown = max(0, min(4, len(digits) - 6))
    prefix = "+" if phone.strip().startswith("+") else ""
    return prefix + STAR * (len(digits) - shown) + digits[len(digits) - shown:]


def id_number_valid(value: str) -> bool:
    """A PRC resident ID number (GB 11643): 17 digits and a check character."""
    value = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def mask_id_number(value: str) -> str:
    """Keep the first and last character only: 11010519491231002X → 1****************X."""
    value = value.strip()
    if len(value) <= 2:
        return STAR * len(value)
    return value[0] + STAR * (len(value) - 2) + value[-1]


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2 == 1:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def mask_bank_card(value: str) -> str:
    """Show the last four digits: 6222 0212 3456 7890 → **** **** **** 7890."""
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return STAR * len(digits)
    hidden = STAR * (len(digits) - 4) + digits[-4:]
    return " ".join(hidden[i:i + 4] for i in range(0, len(hidden), 4))




def mask_address(address: str) -> str:
    """Down to the district, no street, building, unit or room.

    北京市朝阳区建国路88号5号楼1201室 → 北京市朝阳区****; 12 Baker St, Flat 3, London NW1 → ****, London NW1.
    What is kept must read as a division (or, outside China, a place or postcode): an address in another
    order (1201室，北京市朝阳区; 12 Baker St, Apt 5B) shows nothing rather than its unit.
    """
    address = address.strip()
    if not address:
        return ""
    if _CJK.search(address):
        return addresses.divisions_only(address)
    parts = [p.strip() for p in address.split(",") if p.strip()]
    shown = parts[-1] if len(parts) > 1 and addresses.is_place(parts[-1]) else ""
    return STAR * 4 + (", " + shown if shown else "")


def mask_location(value: str) -> str:
    """Positions ("lon,lat" pairs, one a line) down to about a kilometre: -8.610472,41.140321 → -8.61,41.14."""
    masked = []
    for line in value.strip().splitlines():
        try:
            lon, lat = (float(part) for part in line.split(","))
        except ValueError:
            masked.append(STAR * 4)
            continue
        masked.append(f"{lon:.2f},{lat:.2f}")
    return "\n".join(masked)


def mask_email(email: str) -> str:
    """zhangsan@example.com → z***@example.com."""
    local, at, domain = email.strip().partition("@")
    if not at:
        return STAR * 4
    return (local[:1] or "") + STAR * 3 + "@" + domain


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_PHONE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?!\d)|(?<!\d)\+\d[\d -]{7,16}\d(?!\d)")


# Words after which a note gives a secret (a door code, a password, a contact handle): the value after them is
# hidden. Longer words first: the first that matches is the one taken. An English word stands alone (`pin`,
# not the pin of "spinach"); a Chinese one may be glued to its value (门禁abcd, 加我微信zhang_san).
_EN_WORDS = ("door code", "gate code", "entry code", "access code", "lock code", "passcode", "password", "wechat",
             "pin", "code", "QQ", "VX", "WX")
_CN_WORDS = ("门禁密码", "门禁码", "门禁", "开门密码", "开门码", "门锁密码", "密码", "口令", "暗号", "取件码", "验证码",
             "微信号", "微信", "QQ号")
_PHRASE_WORDS = ("口令", "暗号")  # their value is words (a pass phrase): hidden whatever it is
# A Chinese word followed by plain Chinese words announces no secret (门禁坏了, 密码锁坏了), nor does an English
# one followed by one of these.
_NOT_A_VALUE = frozenset({"needed", "required", "not", "none", "no", "unnecessary", "n/a"})
# Digits written otherwise: spelled out in English, Chinese numerals (spoken forms 幺 洞 拐 两 and the financial
# forms 壹 贰 叁 included), and circled or parenthesised digits (\d already takes full-width ones such as １２３).  # noqa: RUF003
_NUMBER_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_SPELLED = rf"{_NUMBER_WORDS}(?:[\s,-]+{_NUMBER_WORDS})*"
_CN_DIGITS = "零〇一二三四五六七八九十两幺洞拐壹贰貳叁參肆伍陆陸柒捌玖拾佰"
_SYMBOL_DIGITS = "⓪①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽❶❷❸❹❺❻❼❽❾➀➁➂➃➄➅➆➇➈"
_EN_SECRET = "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in _EN_WORDS)
_CN_SECRET = "|".join(re.escape(word) for word in _CN_WORDS)
_FREE_TEXT = re.compile(
    rf"(?P<email>{_EMAIL.pattern})"
    rf"|(?P<word>(?:(?<![A-Za-z])(?:{_EN_SECRET})(?![A-Za-z])|(?:{_CN_SECRET}))\s*(?:(?:[:：=]|是|为|is)\s*)?)"
    rf"(?P<secret>(?<![A-Za-z]){_SPELLED}(?![A-Za-z])"
    r"|[^\s，,。;；!！?？、()（）]+(?:(?-i:[ ]+[A-Z\d#*]{1,4})(?![A-Za-z\d]))*)"  # a code in parts: AB CD, 12 34
    rf"|(?P<id>{_ID.pattern})|(?P<card>{_CARD.pattern})|(?P<phone>{_PHONE.pattern})"
    rf"|(?P<other>[A-Za-z\d#*]*[\d{_SYMBOL_DIGITS}][A-Za-z\d#*{_SYMBOL_DIGITS}-]*"
    rf"|[{_CN_DIGITS}]{{3,}}|(?<![A-Za-z]){_NUMBER_WORDS}(?:[\s,-]+{_NUMBER_WORDS}){{2,}}(?![A-Za-z]))",
    re.IGNORECASE)
_PLAIN_CHINESE = re.compile(r"[\u4e00-\u9fff]+")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
HIDDEN = STAR * 4


def _announces_nothing(word: str, value: str) -> bool:
    """A secret word whose value reads as words, not a code: 门禁坏了, no code needed."""
    word = word.strip().rstrip(":：=是为").strip()
    if word in _PHRASE_WORDS:
        return False
    if _PLAIN_CHINESE.fullmatch(value) and not any(ch in _CN_DIGITS for ch in value):
        return True
    return value.lower().strip(".!?") in _NOT_A_VALUE


def _mask_free_text_part(match: re.Match[str]) -> str:
    value = match.group()
    if match.group("email"):
        return mask_email(value)
    if match.group("secret"):
        if _announces_nothing(match.group("word"), match.group("secret")):
            return value
        return match.group("word") + HIDDEN
    if match.group("id") and id_number_valid(value):
        return mask_id_number(value)
    if match.group("card") and luhn_valid(re.sub(r"\D", "", value)):
        return mask_bank_card(value)
    if match.group("phone"):
        return mask_phone(value)
    return HIDDEN  # digits it cannot tell the meaning of (a door code, a room, a code word's value)


def mask_free_text(text: str) -> str:
    """Mask what a note may carry: e-mails, ID numbers, card numbers and phone numbers are masked as such;
    the value after a word that announces a secret (门禁, 密码, door code, PIN, 微信号...) and every other run
    of digits, which it cannot classify (a door code, a room number), are hidden whole, digits written as
    words, Chinese numerals or circled digits included. Text without any of
    these comes back unchanged: the access gate then says it was shown whole, never "masked"."""
    masked = _FREE_TEXT.sub(_mask_free_text_part, text)
    # Read once more as the eye reads it (full-width letters as letters, ① as 1, no zero-width characters): when
    # that reading hides more, the note is shown in that reading.
    normal = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    if normal != text:
        masked_normal = _FREE_TEXT.sub(_mask_free_text_part, normal)
        if masked_normal.count(STAR) - normal.count(STAR) > masked.count(STAR) - text.count(STAR):
            return masked_normal
    return masked


WITHHELD = "[withheld]"


def mask_withheld(_: str) -> str:
    """Nothing of it shows: what a background check found has no harmless part."""
    return WITHHELD
