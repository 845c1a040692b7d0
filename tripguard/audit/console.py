"""The audit domain's console pages: the audit explorer (filters, paging) and log verification."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tripguard.audit import repository as audit_repository
from tripguard.audit import service as audit_service
from tripguard.audit.verify import verify_log
from tripguard.core.admission import Bulk, BulkWhenDownloaded
from tripguard.core.db import DbSession
from tripguard.security.auth import AuditReader
from tripguard.web.lists import EXPORT_LIMIT, csv_stream
from tripguard.web.rendering import render
from tripguard.web.shell import page

router = APIRouter(prefix="/console", include_in_schema=False)


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
    entries = audit_repository.search_entries(session, filters)
    next_before = entries[-1].id if len(entries) == filters.limit else None
    query = {k: v for k, v in request.query_params.items() if k != "before_id" and v}
    if next_before is not None:
        query["before_id"] = str(next_before)
    return {"entries": entries, "filters": filters, "next_before_id": next_before,
            "next_query": urlencode(query)}


EXPORT_COLUMNS = ["seq", "ts", "actor_type", "actor_id", "action", "target_type", "target_id", "purpose", "outcome",
                  "details"]


@router.get("/audit", dependencies=[BulkWhenDownloaded])
def audit_page(request: Request, principal: AuditReader, session: DbSession) -> Response:
    if request.query_params.get("format") == "csv":  # the filtered entries, newest first (an audited export)
        filters = dataclasses.replace(_audit_filter(request), before_id=None, limit=EXPORT_LIMIT)
        entries = audit_repository.search_entries(session, filters)
        audit_service.record(session, actor=principal.actor, action="console.export", target_type="list",
                             target_id="audit", details={"rows": len(entries)})
        session.commit()
        return csv_stream("audit", EXPORT_COLUMNS, ([e.seq, e.ts.isoformat(), e.actor_type, e.actor_id, e.action,
                                                     e.target_type, e.target_id, e.purpose, e.outcome, e.details]
                                                    for e in entries))
    return page(request, "audit/log.html", principal, "/console/audit",
                tree_size=audit_service.tree_size(session), head=audit_service.latest_head(session),
                **_rows_context(request, session))


@router.get("/audit/rows")
def audit_rows(request: Request, _: AuditReader, session: DbSession) -> HTMLResponse:
    return render(request, "audit/rows.html", **_rows_context(request, session))


@router.get("/audit/verify", dependencies=[Bulk])
def audit_verify(request: Request, _: AuditReader, session: DbSession) -> HTMLResponse:
    report = verify_log(session, request.app.state.audit_key.public_key())
    return render(request, "audit/verify.html", report=report)


