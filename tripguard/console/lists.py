"""The console's one way of doing a list: filters, search, sorting, pagination and CSV export, over a
SQLAlchemy query. A page declares a `ListSpec`; `read_query` takes the request's parameters (anything
unknown or malformed falls back to the default, never an error); `fetch` runs the page's rows and the
total; `csv_response` streams the whole filtered list (audited: an export is a bulk read). The
template side is `console/templates/list.html` (controls, sortable headers, pager). An export reads as the page
does: headers and states in the reader's language, times in the operator's zone with their offset (`Cells`)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tripguard.audit import service as audit
from tripguard.console import readable
from tripguard.console.rendering import request_locale
from tripguard.core import i18n
from tripguard.core.deps import settings_of
from tripguard.security.principal import Principal

PAGE_SIZES = (25, 50, 100)
MAX_SEARCH = 64
EXPORT_LIMIT = 50_000
Expression = ColumnElement[Any] | InstrumentedAttribute[Any]  # a column, or an expression over columns


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # msgid, translated in the template
    sort: Expression | None = None  # sortable when set


@dataclass(frozen=True)
class Filter:
    key: str
    label: str  # msgid
    options: Sequence[tuple[str, str]]  # (value, msgid label); "" means any
    apply: Callable[[Select[Any], str], Select[Any]]
    default: str = ""


@dataclass(frozen=True)
class ListSpec:
    name: str
    model: type[Any]  # the table listed: a page lists its rows unless its domain's service gives a narrower query
    columns: Sequence[Column]
    default_sort: str
    default_descending: bool = True
    filters: Sequence[Filter] = ()
    search: Sequence[Expression] = ()  # matched with a case-insensitive "contains"
    tiebreak: Expression | None = None  # a unique column, so pages never overlap


@dataclass(frozen=True)
class ListQuery:
    sort: str
    descending: bool
    filters: dict[str, str]
    search: str
    page: int
    size: int
    export: bool = False  # ?format=csv: the whole filtered list as CSV, not a page

    def link(self, **changes: object) -> str:
        """The query string of this list with some parameters changed (page back to 1 unless given)."""
        values: dict[str, object] = {"sort": self.sort, "dir": "desc" if self.descending else "asc",
                                     "q": self.search, "page": 1, "size": self.size, **self.filters}
        values.update(changes)
        return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


@dataclass(frozen=True)
class ListPage:
    spec: ListSpec
    query: ListQuery
    rows: list[Any]
    total: int
    csv_url: str = ""
    filter_values: dict[str, str] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.size))


def _text(value: str | None, limit: int) -> str:
    value = (value or "").strip()[:limit]
    return value if value.isprintable() else ""


def read_query(request: Request, spec: ListSpec) -> ListQuery:
    params = request.query_params
    sortable = {c.key for c in spec.columns if c.sort is not None}
    sort = params.get("sort", "")
    direction = params.get("dir", "")
    filters = {}
    for item in spec.filters:
        value = params.get(item.key, item.default)
        filters[item.key] = value if value in {v for v, _ in item.options} else item.default
    page = params.get("page", "1")
    size = params.get("size", "")
    return ListQuery(
        sort=sort if sort in sortable else spec.default_sort,
        descending=(direction == "desc") if direction in ("asc", "desc") and sort in sortable
        else spec.default_descending,
        filters=filters, search=_text(params.get("q"), MAX_SEARCH),
        page=int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 7 and int(page) > 0 else 1,
        size=int(size) if size.isascii() and size.isdigit() and len(size) < 4 and int(size) in PAGE_SIZES
        else PAGE_SIZES[0], export=params.get("format") == "csv")


def filtered(statement: Select[Any], spec: ListSpec, query: ListQuery) -> Select[Any]:
    for item in spec.filters:
        if query.filters.get(item.key):
            statement = item.apply(statement, query.filters[item.key])
    if query.search and spec.search:
        pattern = f"%{escape_like(query.search.lower())}%"
        statement = statement.where(or_(*(func.lower(column).like(pattern, escape="\\")
                                          for column in spec.search)))
    return statement


def _ordered(statement: Select[Any], spec: ListSpec, query: ListQuery) -> Select[Any]:
    column = next(c.sort for c in spec.columns if c.key == query.sort)
    assert column is not None
    order = [column.desc() if query.descending else column.asc()]
    if spec.tiebreak is not None:
        order.append(spec.tiebreak.desc() if query.descending else spec.tiebreak.asc())
    return statement.order_by(*order)


def _source(spec: ListSpec, statement: Select[Any] | None) -> Select[Any]:
    return select(spec.model) if statement is None else statement


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fetch(session: Session, *, spec: ListSpec, query: ListQuery, statement: Select[Any] | None = None,
          scalars: bool = True) -> ListPage:
    """A page of the list (`statement`: a narrower query than all of `spec.model`'s rows, from the domain's
    service), with the total."""
    where = filtered(_source(spec, statement), spec, query)
    total = session.scalar(select(func.count()).select_from(where.order_by(None).subquery())) or 0
    last_page = max(1, -(-total // query.size))
    shown = ListQuery(query.sort, query.descending, query.filters, query.search, min(query.page, last_page), query.size)
    paged = _ordered(where, spec, shown).limit(shown.size).offset((shown.page - 1) * shown.size)
    rows = _rows(session, paged, scalars)
    return ListPage(spec, shown, rows, total, csv_url=shown.link(page=None, size=None, format="csv"))


@dataclass(frozen=True)
class Cells:
    """A CSV cell as its reader reads it: words in the reader's language (the page's), times in the operator's
    zone with their offset (2026-03-01T16:00:00+08:00), staff by name, yes and no. Ids stay as they are."""

    zone: ZoneInfo
    people: readable.People

    def word(self, key: str | None, labels: Mapping[str, str] | None = None) -> str:
        """A state, a kind, a role: by its label (`labels`: key -> msgid), a vocabulary, or the catalogs."""
        if key is None or key == "":
            return ""
        if labels is not None and key in labels:
            return i18n.gettext(labels[key])
        return readable.term(key) or i18n.gettext(key)

    def staff(self, staff_id: str | None) -> str:
        return (self.people.staff(staff_id) or staff_id) if staff_id else ""

    def actor(self, kind: str, actor_id: str) -> str:
        """A staff member's or an API key's name; empty for others (their id is in a column of its own)."""
        if kind == "staff":
            return self.people.staff(actor_id) or ""
        return (self.people.api_key(actor_id) or "") if kind == "api_key" else ""

    def text(self, value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return readable.yes_no(value)
        if isinstance(value, datetime):
            return value.astimezone(self.zone).isoformat(timespec="seconds")
        return str(value)


@contextmanager
def reader_cells(request: Request, session: Session) -> Iterator[Cells]:
    """Cells for the request's reader, with their language in force while the rows are written."""
    token = i18n.current_locale.set(request_locale(request))
    try:
        yield Cells(zone=ZoneInfo(settings_of(request.app).timezone), people=readable.People(session=session))
    finally:
        i18n.current_locale.reset(token)


def csv_response(request: Request, session: Session, principal: Principal, spec: ListSpec, query: ListQuery, *,
                 header: list[str], row: Callable[[Any, Cells], list[object]], statement: Select[Any] | None = None,
                 scalars: bool = True) -> StreamingResponse:
    """The whole filtered list (up to EXPORT_LIMIT rows) as CSV, in its sort order, in the reader's language
    (`header`: msgids; `row` makes a row's cells through `Cells`) and the operator's zone. Audited: a bulk
    export."""
    where = _ordered(filtered(_source(spec, statement), spec, query), spec, query).limit(EXPORT_LIMIT)
    rows = _rows(session, where, scalars)
    with reader_cells(request, session) as cells:
        head = [i18n.gettext(h) for h in header]
        body: list[list[object]] = [[cells.text(v) for v in row(r, cells)] for r in rows]
    audit.record(session, actor=principal.actor, action="console.export", target_type="list", target_id=spec.name,
                 details={"rows": len(rows), "filters": ",".join(f"{k}={v}" for k, v in query.filters.items() if v),
                          "search": bool(query.search)})
    return csv_stream(spec.name, head, body)


def csv_stream(name: str, header: list[str], rows: Iterable[list[object]]) -> StreamingResponse:
    """Rows as a CSV download (UTF-8 with a BOM, so spreadsheets read Chinese), formula-safe."""
    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        for values in itertools.chain([list[object](header)], rows):
            writer.writerow([_cell(v) for v in values])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"', "Cache-Control": "no-store"})


def _rows(session: Session, statement: Select[Any], scalars: bool) -> list[Any]:
    """Model objects (one entity selected), or row tuples (several columns)."""
    if scalars:
        return list(session.scalars(statement))
    result: list[Any] = [tuple(row) for row in session.execute(statement)]
    return result


def _cell(value: object) -> str:
    """A spreadsheet never runs a cell as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
