"""Rows built from a table's metadata alone, for the backup round trips: three rows a table, from each
column's type, length, nullability and foreign keys, so that a table or column added later is covered
without anyone remembering it.

- row 0, the largest: the longest text, the largest integers and floats, dates and times at the end of
  their range, 64 KiB of binary, a big nested JSON document;
- row 1, the emptiest: NULL where the column allows it (SQL NULL in JSON columns), else the smallest;
- row 2, the odd: quotes, control characters and astral-plane text, an integer past a double's
  precision, a datetime given in +08:00, a subnormal float, a JSON `null` (not SQL NULL).

A foreign key takes the referred row's value (the same row number; NULL in row 1 when nullable; a table
referring to itself, its own row's). A type without a generator here fails the test, naming it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Numeric, SmallInteger, String, Table, null
from sqlalchemy.types import TypeDecorator, TypeEngine

ROWS = 3
TEXT_CHARS = 100_000
ODD_TEXT = 'C"\'\\\n\t\r\x01\u2028 界 😀 </script>'
CST = timezone(timedelta(hours=8))


def big_json() -> dict[str, Any]:
    return {
        "ints": [2**63 - 1, -(2**63), 2**80, 0], "floats": [0.1, 1e-7, 1.5e300], "text": "界" * 5_000 + ODD_TEXT,
        "null": None, "true": True, "nested": [{"level": n, "items": list(range(50))} for n in range(400)],
        **{f"k{n}": {"v": n, "s": f"値{n}"} for n in range(2_000)},
    }


def _python_type(type_: TypeEngine[Any]) -> Any:
    try:
        found = type_.python_type
    except NotImplementedError:
        found = object
    if found is object and isinstance(type_, TypeDecorator):
        return _python_type(type_.impl_instance)
    return found


def _is_json(type_: TypeEngine[Any]) -> bool:
    return isinstance(type_.impl_instance if isinstance(type_, TypeDecorator) else type_, JSON)


def _text(column: Column[Any], row: int) -> str:
    length = column.type.length if isinstance(column.type, String) else None
    if row == 0:
        return ("A" + "界" * ((length or TEXT_CHARS) - 1))
    value = "B" if row == 1 else ODD_TEXT
    return value[:length] if length else value


def _numeric(type_: Numeric[Any], row: int) -> Decimal:
    precision, scale = type_.precision or 30, type_.scale or 0
    largest = Decimal("9" * (precision - scale) + ("." + "9" * scale if scale else ""))
    return [largest, -largest, Decimal("0." + "0" * (scale - 1) + "1") if scale else Decimal(1)][row]


def typed_value(column: Column[Any], row: int) -> Any:
    """The value of `column` in row `row` (0, 1, 2), from its type alone (no foreign keys)."""
    type_ = column.type
    if row == 1 and column.nullable and not column.primary_key:
        return null() if _is_json(type_) else None
    if _is_json(type_):
        return [big_json(), {}, JSON.NULL][row]
    kind = _python_type(type_)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        members = list(kind)
        return [members[-1], members[0], members[len(members) // 2]][row]
    if kind is str:
        enums = getattr(type_, "enums", None)
        return [enums[-1], enums[0], enums[len(enums) // 2]][row] if enums else _text(column, row)
    if kind is bool:
        return [True, False, True][row]
    if kind is int:
        inner = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
        bits = 63 if isinstance(inner, BigInteger) else 15 if isinstance(inner, SmallInteger) else 31
        return [2**bits - 1, -(2**bits), 2**53 + 1 if bits == 63 else 12_345][row]
    if kind is float:
        return [1.7976931348623157e308, -1.7976931348623157e308, 5e-324][row]
    if kind is Decimal:
        assert isinstance(type_, Numeric)
        return _numeric(type_, row)
    if kind is bytes:
        return [bytes(range(256)) * 256, b"", b"\x00\xff\x00"][row]
    if kind is datetime:
        timezone_aware = getattr(type_.impl_instance if isinstance(type_, TypeDecorator) else type_, "timezone", False)
        values = [datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
                  datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=CST)]
        return values[row] if timezone_aware else values[row].replace(tzinfo=None)
    if kind is date:
        return [date.max, date.min, date(2024, 2, 29)][row]
    if kind is time:
        return [time(23, 59, 59, 999999), time(0, 0), time(12, 30, 0, 1)][row]
    if kind is timedelta:
        return [timedelta(days=2_000_000, seconds=86_399, microseconds=999_999), -timedelta(days=2_000_000),
                timedelta(microseconds=1)][row]
    if kind is uuid.UUID:
        return [uuid.UUID(int=2**128 - 1), uuid.UUID(int=0), uuid.UUID("12345678-1234-5678-1234-567812345678")][row]
    raise AssertionError(f"{column.table.name}.{column.name}: no test value for type {type_!r}; add one to "
                         "tests/vault/metadata_rows.py (and a codec to tripguard/vault/codec.py)")


def rows_for(table: Table, made: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """ROWS rows of `table`; `made` holds the rows of the tables made before (sorted_tables order)."""
    rows = [{c.name: typed_value(c, n) for c in table.columns} for n in range(ROWS)]
    for n, row in enumerate(rows):
        for constraint in table.foreign_key_constraints:
            referred = constraint.referred_table
            source = row if referred is table else made[referred.name][n]
            nullable = all(c.nullable for c in constraint.columns)
            for element in constraint.elements:
                row[element.parent.name] = None if n == 1 and nullable else source[element.column.name]
    return rows
