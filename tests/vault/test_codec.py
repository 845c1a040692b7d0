"""The backup's column codec: every generic SQLAlchemy type, including those no table uses yet, comes back
from the database, through the backup's JSON and into the database again equal in type and value; a type
or value it cannot carry is refused, naming the table and column."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    PickleType,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    Uuid,
    insert,
    select,
)
from sqlalchemy.types import TypeDecorator

from tests.vault.metadata_rows import ROWS, typed_value
from tripguard.core.db import UTCDateTime
from tripguard.vault.codec import CodecError, RowCodec


class Colour(enum.Enum):
    red = "r"
    green = "g"
    blue = "b"


def every_type(metadata: MetaData, name: str) -> Table:
    return Table(
        name, metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("day", Date), Column("at", DateTime(timezone=True)), Column("naive", DateTime()),
        Column("utc", UTCDateTime), Column("money", Numeric(38, 10)), Column("ratio", Float),
        Column("flag", Boolean), Column("doc", JSON), Column("label", Enum("low", "mid", "high", name=f"{name}_l")),
        Column("colour", Enum(Colour, name=f"{name}_c")), Column("span", Interval), Column("big", BigInteger),
        Column("small", SmallInteger), Column("body", Text), Column("code", String(12)), Column("blob", LargeBinary),
        Column("clock", Time), Column("uid", Uuid),
    )


def test_every_generic_type_round_trips_through_the_database(connection: Any) -> None:
    metadata = MetaData()
    source, target = every_type(metadata, "tg_codec_a"), every_type(metadata, "tg_codec_b")
    metadata.create_all(connection)  # inside the test's transaction: rolled back with it
    rows = [{c.name: typed_value(c, n) for c in source.columns} | {"id": n} for n in range(ROWS)]
    connection.execute(insert(source), rows)

    codec = RowCodec(source)
    lines = [json.dumps(codec.encode(row), ensure_ascii=False) for row in connection.execute(codec.select())]
    connection.execute(insert(target), [RowCodec(target).decode(json.loads(line)) for line in lines])

    def read(table: Table) -> list[tuple[Any, ...]]:
        nulls = [table.c.doc.is_(None)]
        return [tuple((type(v), v) for v in row)
                for row in connection.execute(select(table, *nulls).order_by(table.c.id))]

    assert read(target) == read(source)
    assert read(source)[1][-1] == (bool, True) and read(source)[2][-1] == (bool, False)  # SQL NULL, JSON null


class Opaque(TypeDecorator[object]):
    """A custom type that yields objects the backup knows nothing of."""

    impl = String
    cache_ok = True

    @property
    def python_type(self) -> type:
        return object


@pytest.mark.no_database
@pytest.mark.parametrize("column_type", [ARRAY(Integer), Opaque()])
def test_a_type_without_a_codec_is_refused_by_table_and_column(column_type: Any) -> None:
    table = Table("tg_unknown", MetaData(), Column("id", Integer, primary_key=True), Column("odd", column_type))
    with pytest.raises(CodecError, match="table tg_unknown, column odd: a backup cannot carry its type"):
        RowCodec(table)


class Row:
    def __init__(self, values: dict[Any, Any]) -> None:
        self._mapping = values


@pytest.mark.no_database
def test_a_value_of_the_wrong_type_is_refused_not_written() -> None:
    table = Table("tg_kinds", MetaData(), Column("id", Integer, primary_key=True), Column("day", Date))
    codec = RowCodec(table)
    with pytest.raises(CodecError, match="table tg_kinds, column id: the database gave a str"):
        codec.encode(Row({table.c.id: "7", table.c.day: None}))  # SQLite keeps any value in any column
    with pytest.raises(CodecError, match="table tg_kinds, column day: the backup holds a value that is not a date"):
        codec.decode({"id": 1, "day": "not a date"})
    with pytest.raises(CodecError, match="column id: the backup holds a value that is not a integer"):
        codec.decode({"id": 1.5, "day": None})
    with pytest.raises(CodecError, match="has no column 'extra'"):
        codec.decode({"id": 1, "day": None, "extra": 1})


@pytest.mark.no_database
def test_a_decorator_naming_no_type_is_held_to_its_impls() -> None:
    table = Table("tg_pickles", MetaData(), Column("id", Integer, primary_key=True), Column("obj", PickleType()))
    codec = RowCodec(table)  # a PickleType yields objects, but says nothing: each value is checked
    with pytest.raises(CodecError, match="table tg_pickles, column obj: the database gave a dict"):
        codec.encode(Row({table.c.id: 1, table.c.obj: {"a": 1}}))
