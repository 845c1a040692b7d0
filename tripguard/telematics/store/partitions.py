"""Positions in monthly partitions on PostgreSQL, so retention drops a month instead of deleting rows.

`telematics_track_chunks` is partitioned by `created_at` (the month a chunk was written). A trip's
chunks are merged into one when it ends, written then, so an ended trip's positions all sit in the
month it ended: a month whose last day is past the trip-data cutoff holds only trips that ended
before it. Retention moves the chunks of trips still kept (a legal hold; any trip not yet expired)
out of such a month (their `created_at` becomes the time of the move, which puts them in the current
month) and then drops it. Months are made three ahead; a DEFAULT partition takes a row no month
covers, and `ensure` moves such rows into their month when it makes it. SQLite keeps one table.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, select, text, update

from tripguard.telematics.models import TrackChunk, Trip

TABLE = TrackChunk.__tablename__
DEFAULT = f"{TABLE}_default"
MONTHS_AHEAD = 3


def month_start(moment: datetime, months: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{TABLE}_p{start:%Y%m}"


def is_partition(name: str) -> bool:
    """A partition's own table (the migrations' comparison with the models leaves them out)."""
    return name == DEFAULT or (name.startswith(f"{TABLE}_p") and name[len(TABLE) + 2:].isdigit())


def compared_by_migrations(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name`: partitions are the database's business, not the models'."""
    return not (type_ == "table" and name is not None and is_partition(name))


def partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    return bool(connection.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = :table)"), {"table": TABLE}).scalar())


def months(connection: Connection) -> list[datetime]:
    """The months that have a partition, oldest first."""
    names = connection.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table"), {"table": TABLE}).scalars()
    return sorted(datetime.strptime(name[-6:], "%Y%m").replace(tzinfo=UTC) for name in names if name != DEFAULT)


def ensure(connection: Connection, now: datetime) -> list[str]:
    """This month's partition and the next three exist; rows the DEFAULT partition took for a month
    made here move into it. Returns the partitions made."""
    if not partitioned(connection):
        return []
    have = set(months(connection))
    made = []
    for ahead in range(MONTHS_AHEAD + 1):
        start = month_start(now, ahead)
        if start not in have:
            make_month(connection, start)
            made.append(partition_name(start))
    return made


def make_month(connection: Connection, start: datetime) -> None:
    end = month_start(start, 1)
    bounds = {"start": start, "end": end}
    strays = connection.execute(text(f"SELECT count(*) FROM {DEFAULT} "  # noqa: S608 - our table names
                                     "WHERE created_at >= :start AND created_at < :end"), bounds).scalar()
    if strays:  # a month cannot be attached while DEFAULT holds its rows: take them out, then back in
        connection.execute(text(f"ALTER TABLE {TABLE} DETACH PARTITION {DEFAULT}"))
    connection.execute(text(f"CREATE TABLE {partition_name(start)} PARTITION OF {TABLE} "
                            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"))
    if strays:
        connection.execute(text(f"INSERT INTO {TABLE} SELECT * FROM {DEFAULT} WHERE created_at >= :start "  # noqa: S608 - our table names
                                "AND created_at < :end"), bounds)
        connection.execute(text(f"DELETE FROM {DEFAULT} WHERE created_at >= :start AND created_at < :end"), bounds)  # noqa: S608 - our table names
        connection.execute(text(f"ALTER TABLE {TABLE} ATTACH PARTITION {DEFAULT} DEFAULT"))


def drop_expired(connection: Connection, *, cutoff: datetime, now: datetime, kept: ColumnElement[bool],
                 dry_run: bool) -> list[str]:
    """Drop every month that ended before `cutoff`, after moving out the chunks of trips `kept` (held,
    or not expired) says to keep. Returns the months dropped (or, dry run, that would be)."""
    if not partitioned(connection):
        return []
    dropped = []
    for start in months(connection):
        end = month_start(start, 1)
        if end > cutoff:
            break
        dropped.append(partition_name(start))
        if dry_run:
            continue
        keep = select(Trip.id).where(kept)
        connection.execute(update(TrackChunk).where(TrackChunk.created_at >= start, TrackChunk.created_at < end,
                                                    TrackChunk.trip_id.in_(keep)).values(created_at=now))
        connection.execute(text(f"ALTER TABLE {TABLE} DETACH PARTITION {partition_name(start)}"))
        connection.execute(text(f"DROP TABLE {partition_name(start)}"))
    return dropped
