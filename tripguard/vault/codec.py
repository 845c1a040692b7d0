"""How a backup writes each column's value as JSON and reads it back, chosen by the column's type.

One codec per Python type a column yields (`python_type`; a TypeDecorator yields its own, usually its
impl's): the value comes back equal and of the same type, SQL NULL included. A type with no codec here
(an ARRAY, a PickleType, a dialect-specific type) fails the backup at once, naming the table and the
column: a backup is never silently lossy. A value of the wrong type for its column (SQLite keeps any
value in any column) fails the same way.

JSON columns distinguish SQL NULL (`null`) from a stored JSON `null` (`[null]`): every JSON value is
written wrapped in a one-element list.
"""

from __future__ import annotations

import base64
import enum
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Table, null, select
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeDecorator, TypeEngine

from tripguard.core.db import UTCDateTime
from tripguard.vault.service import BLIND_INDEX_INFO

# Format 1 (before codecs): LargeBinary base64, datetimes ISO 8601, every other value as the driver gave it.
LEGACY_FORMAT = 1
FORMAT = 2
_NULL_FLAG = "tg_sql_null_{}"


class CodecError(ValueError):
    """A column whose type or value a backup cannot carry without loss; the message names it."""


@dataclass(frozen=True)
class Codec:
    name: str
    accepts: Callable[[Any], bool]
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _exactly(kind: type) -> Callable[[Any], bool]:
    return lambda value: type(value) is kind


def _timedelta_parts(value: timedelta) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def _timedelta(parts: list[int]) -> timedelta:
    days, seconds, microseconds = parts
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _same(value: Any) -> Any:
    return value


def _json_typed(kind: type, then: Callable[[Any], Any] = _same) -> Callable[[Any], Any]:
    """A decoder that takes only `kind` from the backup's JSON (an int where a float was written is damage)."""
    def decode(value: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"{type(value).__name__} is not {kind.__name__}")
        return then(value)
    return decode


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


_BY_PYTHON_TYPE: dict[type, Codec] = {
    bool: Codec("boolean", _exactly(bool), _same, _json_typed(bool)),
    int: Codec("integer", _exactly(int), _same, _json_typed(int)),
    # repr-exact in JSON; Python's json also carries inf and -inf (a float column may hold them).
    float: Codec("float", _exactly(float), _same, _json_typed(float)),
    Decimal: Codec("decimal", lambda v: isinstance(v, Decimal), str, _json_typed(str, Decimal)),
    str: Codec("text", lambda v: isinstance(v, str), _same, _json_typed(str)),
    bytes: Codec("binary", lambda v: isinstance(v, bytes), lambda v: base64.b64encode(v).decode(),
                 _json_typed(str, _b64)),
    datetime: Codec("datetime", lambda v: isinstance(v, datetime), datetime.isoformat,
                    _json_typed(str, datetime.fromisoformat)),
    date: Codec("date", _exactly(date), date.isoformat, _json_typed(str, date.fromisoformat)),
    time: Codec("time", lambda v: isinstance(v, time), time.isoformat, _json_typed(str, time.fromisoformat)),
    timedelta: Codec("interval", lambda v: isinstance(v, timedelta), _timedelta_parts, _json_typed(list, _timedelta)),
    uuid.UUID: Codec("uuid", lambda v: isinstance(v, uuid.UUID), str, _json_typed(str, uuid.UUID)),
}

# SQL NULL is written as null; any stored JSON value v (JSON null included) as [v].
def _json_value(wrapped: Any) -> Any:
    if type(wrapped) is not list or len(wrapped) != 1:
        raise TypeError("a JSON value is written as a one-element list")
    return JSON.NULL if wrapped[0] is None else wrapped[0]


_JSON = Codec("json", lambda v: True, lambda v: [v], _json_value)


def _enum_codec(kind: type[enum.Enum]) -> Codec:
    return Codec(f"enum {kind.__name__}", lambda v: isinstance(v, kind), lambda v: v.name,
                 _json_typed(str, lambda v: kind[v]))


def _is_json(type_: TypeEngine[Any]) -> bool:
    if isinstance(type_, TypeDecorator):
        return isinstance(type_.impl_instance, JSON) and not _names_its_type(type_)
    return isinstance(type_, JSON)


def _python_type(type_: TypeEngine[Any]) -> Any:
    try:
        return type_.python_type
    except NotImplementedError:
        return object


def _names_its_type(type_: TypeDecorator[Any]) -> bool:
    for cls in type(type_).__mro__:
        if cls is TypeDecorator:
            return False
        if "python_type" in cls.__dict__:
            return True
    return False


def codec_for(table: Table, column: Column[Any]) -> Codec:
    """The column's codec; CodecError when its type has none."""
    type_ = column.type
    if _is_json(type_):
        return _JSON
    python_type = _python_type(type_)
    if isinstance(type_, TypeDecorator) and not _names_its_type(type_):
        # A decorator that names no type of its own is taken at its impl's word, and held to it value by
        # value in `encode` (a PickleType's dict is refused there, not written as something else).
        python_type = _python_type(type_.impl_instance)
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return _enum_codec(python_type)
    codec = _BY_PYTHON_TYPE.get(python_type)
    if codec is None:
        raise CodecError(f"table {table.name}, column {column.name}: a backup cannot carry its type "
                         f"{type_!r} (Python type {getattr(python_type, '__name__', python_type)}); "
                         "add a codec for it in tripguard/vault/codec.py")
    return codec


class RowCodec:
    """Every column of one table: the statement that reads it, and each row to JSON and back."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.codecs = {column.name: codec_for(table, column) for column in table.columns}
        self.json_columns = [c for c in table.columns if self.codecs[c.name] is _JSON]

    def select(self) -> Select[Any]:
        # A JSON column's SQL NULL and a stored JSON null read back alike: ask the database which it is.
        flags = [c.is_(None).label(_NULL_FLAG.format(i)) for i, c in enumerate(self.json_columns)]
        return select(self.table, *flags)

    def encode(self, row: Any) -> dict[str, Any]:
        mapping = row._mapping
        sql_null = {c.name for i, c in enumerate(self.json_columns) if mapping[_NULL_FLAG.format(i)]}
        out: dict[str, Any] = {}
        for column in self.table.columns:
            if BLIND_INDEX_INFO in column.info:
                # Keyed by the long-lived keyring, it would confirm an erased person's guessed value for
                # ever: left out; the restore rebuilds it from the sealed values that still open.
                out[column.name] = None
                continue
            value = mapping[column]
            if value is None and (column.name in sql_null or self.codecs[column.name] is not _JSON):
                out[column.name] = None
                continue
            codec = self.codecs[column.name]
            if not codec.accepts(value):
                raise CodecError(f"table {self.table.name}, column {column.name}: the database gave a "
                                 f"{type(value).__name__} where the column's type ({codec.name}) was expected")
            out[column.name] = codec.encode(value)
        return out

    def dumps(self, row: Any) -> bytes:
        """One row as a line of JSON."""
        encoded = self.encode(row)
        try:
            return json.dumps(encoded, ensure_ascii=False).encode()
        except (TypeError, ValueError):
            for name, value in encoded.items():  # which column: say so
                try:
                    json.dumps(value, ensure_ascii=False).encode()
                except (TypeError, ValueError) as exc:
                    raise CodecError(f"table {self.table.name}, column {name}: a value the backup cannot write "
                                     f"as JSON ({type(exc).__name__})") from exc
            raise

    def decode(self, values: dict[str, Any], *, format: int = FORMAT) -> dict[str, Any]:
        unknown = set(values) - set(self.codecs)
        if unknown:
            raise CodecError(f"table {self.table.name} has no column {min(unknown)!r}: the backup does not "
                             "belong to this schema")
        if format == LEGACY_FORMAT:
            return _decode_legacy(self.table, values)
        out: dict[str, Any] = {}
        for column in self.table.columns:
            value = values.get(column.name)
            codec = self.codecs[column.name]
            try:
                out[column.name] = (null() if codec is _JSON else None) if value is None else codec.decode(value)
            except (TypeError, ValueError, KeyError, IndexError, ArithmeticError) as exc:
                raise CodecError(f"table {self.table.name}, column {column.name}: the backup holds a value that "
                                 f"is not a {codec.name}") from exc
        return out


def _decode_legacy(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """A format-1 backup: only binary and UTC datetime columns were encoded."""
    out: dict[str, Any] = {}
    for column in table.columns:
        value = values.get(column.name)
        if value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64decode(value)
        elif value is not None and isinstance(column.type, UTCDateTime):
            value = datetime.fromisoformat(value)
        out[column.name] = value
    return out
