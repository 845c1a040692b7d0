"""The audit log's console pages: the audit explorer (filters, paging) and log verification (here, in the
console kit's package, since the kit sits above the platform).

Built by `router(gate)` with security's checks (`audit.deps.Gate`), as the audit log's API is (audit sits
below security and never imports it). Each page names the check it needs (`Reader`). No `from __future__
import annotations` here: the pages' annotations name that check, local to `router`, so they are read where
they are written.
"""

import dataclasses
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tripguard.audit import repository as audit_repository
from tripguard.audit import service as audit_service
from tripguard.audit.deps import AuditKey, Gate
from tripguard.audit.models import AuditEntry
from tripguard.audit.verify import verify_log
from tripguard.console import readable
from tripguard.console.labels import kind_label
from tripguard.console.lists import EXPORT_LIMIT, Cells, csv_stream, reader_cells
from tripguard.console.rendering import render
from tripguard.console.shell import page
from tripguard.core import i18n
from tripguard.core.admission import Bulk, BulkWhenDownloaded
from tripguard.core.db import DbSession
from tripguard.core.i18n import N_

# ---- audit explorer --------------------------------------------------------------------------


def _audit_filter(request: Request) -> audit_repository.AuditFilter:
    params = request.query_params

    def text(name: str, limit: int) -> str | None:
        value = (params.get(name) or "").strip()[:limit]
        return value if value and value.isprintable() else None

    before = params.get("before_id", "")
    outcome = text("outcome", 16)
    return audit_repository.AuditFilter(
        actor_id=text("actor_id", 64), action=text("action", 64), target_type=text("target_type", 32),
        target_id=text("target_id", 64), outcome=outcome if outcome in audit_service.OUTCOMES else None,
        before_id=int(before) if before.isdigit() and len(before) < 19 else None, limit=50,
    )


def _rows_context(request: Request, session: DbSession) -> dict[str, Any]:
    filters = _audit_filter(request)
    entries = audit_repository.search_entries(session, query=filters)
    next_before = entries[-1].id if len(entries) == filters.limit else None
    query = {k: v for k, v in request.query_params.items() if k != "before_id" and v}
    if next_before is not None:
        query["before_id"] = str(next_before)
    return {"entries": entries, "filters": filters, "next_before_id": next_before,
            "next_query": urlencode(query)}


# The export's columns (msgids, in the reader's language): the entry named as the page names it, with its
# codes beside (the action's key, the ids) for whoever filters the file by machine.
EXPORT_COLUMNS = [N_("Leaf index"), N_("Time"), N_("Actor kind"), N_("Actor"), N_("Actor id"), N_("Action"),
                  N_("Action code"), N_("Target type"), N_("Target id"), N_("Purpose"), N_("Outcome"), N_("Details")]


def _export_row(entry: AuditEntry, cells: Cells) -> list[object]:
    return [entry.seq, entry.ts, kind_label(entry.actor_type), cells.actor(entry.actor_type, entry.actor_id),
            entry.actor_id, readable.action_name(entry.action), entry.action, kind_label(entry.target_type),
            entry.target_id, readable.purpose_name(entry.purpose) if entry.purpose else "",
            i18n.gettext(entry.outcome), entry.details]


def router(gate: Gate) -> APIRouter:
    """The audit log's pages, each behind the check of `gate` it names."""
    routes = APIRouter(prefix="/console", include_in_schema=False)
    # The principal security let in (its `Principal`: the shell's page takes it whole).
    Reader = Annotated[Any, gate.read]

    @routes.get("/audit", dependencies=[BulkWhenDownloaded])
    def audit_page(request: Request, principal: Reader, session: DbSession) -> Response:
        if request.query_params.get("format") == "csv":  # the filtered entries, newest first (an audited export)
            filters = dataclasses.replace(_audit_filter(request), before_id=None, limit=EXPORT_LIMIT)
            entries = audit_repository.search_entries(session, query=filters)
            audit_service.record(session, actor=principal.actor, action="console.export", target_type="list",
                                 target_id="audit", details={"rows": len(entries)})
            with reader_cells(request, session) as cells:
                header = [i18n.gettext(column) for column in EXPORT_COLUMNS]
                body: list[list[object]] = [[cells.text(v) for v in _export_row(e, cells)] for e in entries]
            return csv_stream("audit", header, body)
        return page(request, "audit/log.html", principal, "/console/audit",
                    tree_size=audit_service.tree_size(session), head=audit_service.latest_head(session),
                    **_rows_context(request, session))

    @routes.get("/audit/rows")
    def audit_rows(request: Request, _: Reader, session: DbSession) -> HTMLResponse:
        return render(request, "audit/rows.html", **_rows_context(request, session))

    @routes.get("/audit/verify", dependencies=[Bulk])
    def audit_verify(request: Request, _: Reader, session: DbSession, audit_key: AuditKey
                     ) -> HTMLResponse:
        report = verify_log(session, public_key=audit_key.public_key())
        return render(request, "audit/verify.html", report=report)

    return routes
