"""The demo's fictional people: names, 138-0000-xxxx style phone numbers and test resident ID numbers.

Everything here is made up and deterministic (the same person gets the same name on every run). The ID
numbers are valid in form (region, date of birth, ISO 7064 check character) and choose the simulated
screening agency's answer by their sequence digits (`screening.providers.SCENARIOS`: 001 clear).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
         "秀英", "霞", "平", "刚", "桂英", "建华", "文", "晨", "子涵", "浩然", "雨欣", "思远", "嘉怡", "宇航", "欣怡"]
REGION = "440306"  # a real GB/T 2260 district code; the people are not


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    phone: str


def name_of(n: int) -> str:
    """The n-th fictional name (surname by n, given name by n's place among the surnames' rounds)."""
    return SURNAMES[n % len(SURNAMES)] + GIVEN[(n // len(SURNAMES) + n) % len(GIVEN)]


def phone_of(block: int, n: int) -> str:
    """A 138-0000-xxxx style number: `block` (1-9) names the kind of person, n the person (0-999)."""
    if not (1 <= block <= 9 and 0 <= n < 1000):
        raise ValueError("block 1-9, n 0-999")
    return f"1380000{block}{n:03d}"


def check_character(seventeen: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643 computes it."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(seventeen))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def id_number(n: int, scenario: str = "001") -> str:
    """A valid test ID number, born 1975-2000 (by n), whose sequence digits pick the agency's scenario."""
    born = date(1975, 1, 1) + timedelta(days=(n * 97) % (25 * 365))
    seventeen = f"{REGION}{born:%Y%m%d}{scenario}"
    return seventeen + check_character(seventeen)
