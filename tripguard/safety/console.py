"""The safety centre's SOS queue (live, with sound) and the incident page (where, who, timeline, actions)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Select, case

from tripguard.console.lists import (
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    read_query,
)
from tripguard.console.shell import error_text, page
from tripguard.console.streams import stream_response
from tripguard.core.admission import BulkWhenDownloaded
from tripguard.core.clock import utcnow
from tripguard.core.db import DbSession
from tripguard.core.deps import Sessions
from tripguard.core.errors import DomainError
from tripguard.core.i18n import N_
from tripguard.core.types import CleanStr, Identifier
from tripguard.privacy import access
from tripguard.safety import recordings, response, service
from tripguard.safety.deps import AppTelephony
from tripguard.safety.models import Incident
from tripguard.safety.telephony import Telephony
from tripguard.security.auth import IncidentHandler
from tripguard.security.permissions import Permission, Purpose, purposes_for
from tripguard.security.principal import Principal
from tripguard.telematics.deps import Feed
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/console/incidents", include_in_schema=False)
CASE_ITEMS = frozenset({"incident"})
STATES = {"open": N_("Waiting for an agent"), "acknowledged": N_("Acknowledged"), "in_progress": N_("In progress"),
          "resolved": N_("Resolved"), "closed": N_("Closed")}
CALL_RESULTS = ("recorded", "ringing", "failed")


def _case_list(principal: Principal, handlers: list[tuple[str, str]]) -> ListSpec:
    """The triage queue: live cases by default; by state, source and assignee; search by case, trip or order."""
    def by_state(statement: Select[Any], value: str) -> Select[Any]:
        if value == "live":
            return statement.where(Incident.status.in_(service.LIVE_STATES))
        return statement if value == "all" else statement.where(Incident.status == value)

    def by_assignee(statement: Select[Any], value: str) -> Select[Any]:
        if value == "none":
            return statement.where(Incident.assigned_to.is_(None))
        return statement.where(Incident.assigned_to == (principal.id if value == "me" else value))

    severity_rank = case({"critical": 3, "high": 2, "medium": 1}, value=Incident.severity, else_=0)
    return ListSpec(
        name="cases", model=Incident, default_sort="raised", tiebreak=Incident.id,
        columns=[Column("raised", N_("Raised"), Incident.created_at), Column("case", N_("Case")),
                 Column("source", N_("Source"), Incident.source), Column("severity", N_("Severity"), severity_rank),
                 Column("state", N_("State"), Incident.status), Column("subject", N_("Trip or order")),
                 Column("assignee", N_("Assigned to")), Column("due", N_("Acknowledge by"), Incident.ack_due_at)],
        filters=[
            Filter("state", N_("State"), [
                ("live", N_("Not yet resolved")), ("open", N_("Waiting for an agent")),
                ("acknowledged", N_("Acknowledged")), ("in_progress", N_("In progress")), ("resolved", N_("Resolved")),
                ("closed", N_("Closed")), ("all", N_("All"))], by_state, default="live"),
            Filter("source", N_("Source"), [("", N_("All")), ("sos", N_("sos")), ("alert", N_("alert")),
                                            ("check_in", N_("check_in")), ("identity", N_("identity")),
                                            ("complaint", N_("complaint"))],
                   lambda statement, value: statement.where(Incident.source == value)),
            Filter("assignee", N_("Assigned to"), [("", N_("Anyone")), ("me", N_("Me")), ("none", N_("Nobody")),
                                                   *handlers], by_assignee)],
        search=[Incident.id, Incident.trip_id, Incident.order_id, Incident.claimed_trip_id, Incident.claimed_order_id])


@router.get("", dependencies=[BulkWhenDownloaded])
def queue_page(request: Request, principal: IncidentHandler, session: DbSession) -> Response:
    handlers = response.handlers(session)
    spec = _case_list(principal, handlers)
    query = read_query(request, spec)
    if query.export:
        return csv_response(request, session, principal, spec, query,
                            header=[N_("Case"), N_("Source"), N_("Severity"), N_("State"), N_("Trip"), N_("Order"),
                                    N_("Trip named, unverified"), N_("Order named, unverified"), N_("Assigned to"),
                                    N_("Raised"), N_("Acknowledge by"), N_("Acknowledged"), N_("Escalated"),
                                    N_("Resolved"), N_("Outcome")],
                            row=lambda i, cells: [
                                i.id, cells.word(i.source), cells.word(i.severity), cells.word(i.status, STATES),
                                i.trip_id, i.order_id, i.claimed_trip_id, i.claimed_order_id,
                                cells.staff(i.assigned_to),
                                i.created_at, i.ack_due_at, i.acknowledged_at, i.escalated_at, i.resolved_at,
                                cells.word(i.outcome)])
    listing = fetch(session, spec=spec, query=query)
    return page(request, "safety/incidents.html", principal, "/console/incidents", list=listing,
                names=dict(handlers), now=utcnow(), live_view=query.page == 1 and not query.search
                and query.filters.get("state") in ("live", "open", "all"),
                filters=query.filters)



def _incident_page(request: Request, principal: Principal, session: DbSession, vault: Vault,
                   telephony: Telephony, incident_id: str, status_code: int = 200,
                   error: str | None = None, called: str | None = None) -> HTMLResponse:
    incident = service.get(session, incident_id=incident_id)
    position = access.read_fields(vault, session, principal, incident, ["position"],
                                  purpose=Purpose.EMERGENCY)["position"].value if incident.position else None
    clips = recordings.of_trip(session, trip_id=incident.trip_id) if incident.trip_id else []
    timeline = service.timeline(session, vault=vault, principal=principal, incident_id=incident.id)
    alerts, check_ins = response.triggers(session, timeline=timeline)
    live = incident.status in service.LIVE_STATES
    return page(request, "safety/incident.html", principal, "/console/incidents", status_code=status_code,
                incident=incident, position=position, error=error, called=called, recordings=clips,
                caller=response.caller(session, vault=vault, principal=principal, incident=incident),
                contacts=response.contacts(session, vault=vault, principal=principal, incident=incident),
                dispatch=response.police_dispatch(session, incident=incident),
                context=response.trip_context(session, vault=vault, principal=principal, incident=incident),
                alerts=alerts, check_ins=check_ins, live=live,
                telephony=telephony, handlers=response.handlers(session),
                names=response.actor_names(session, incident=incident, actors=[
                    *(e.actor for e in timeline), *(f"staff:{e.details['to']}" for e in timeline if e.kind == "assign"),
                    *([f"staff:{incident.assigned_to}"] if incident.assigned_to else [])]),
                may_play=principal.can(Permission.RECORDING_OPEN) and incident.status != "closed",
                evidence_purposes=[p.value for p in (Purpose.EMERGENCY, Purpose.INVESTIGATION)
                                   if p in purposes_for(principal.roles)]
                if incident.trip_id and incident.status != "closed" and principal.can(Permission.TRAJECTORY_READ)
                else [],
                timeline=timeline, outcomes=service.OUTCOMES, now=utcnow())


@router.get("/stream")
async def stream(request: Request, _: IncidentHandler, sessions: Sessions, feed: Feed
                 ) -> StreamingResponse:
    """Cases as they are opened and moved on, for the shell of every console page (the badge, the
    announcement, the queue). The first event names the cases still waiting for an agent; a page
    that reconnects is sent the cases changed since its cursor. Case items carry no personal data."""

    def waiting() -> dict[str, object]:
        with sessions() as session:  # the cases under way now: the badge counts them, the map marks their trips
            return {"open": service.open_case_ids(session),
                    "live": [service.feed_item(i) for i in service.live_cases(session)]}

    def changed(since: datetime) -> list[dict[str, object]]:
        with sessions() as session:
            return [service.feed_item(incident) for incident in service.changed_since(session, since=since)]

    return stream_response(request, feed, kinds=CASE_ITEMS, catch_up=changed,
                           hello=waiting)


@router.get("/{incident_id}")
def incident_page(incident_id: Annotated[Identifier, Path()], request: Request,
                  principal: IncidentHandler, session: DbSession, telephony: AppTelephony,
                  vault: AppVault) -> HTMLResponse:
    called = request.query_params.get("call")
    return _incident_page(request, principal, session, vault, telephony, incident_id,
                          called=called if called in CALL_RESULTS else None)


@router.post("/{incident_id}/action")
def incident_action(incident_id: Annotated[Identifier, Path()], request: Request,
                    principal: IncidentHandler, session: DbSession,
                    action: Annotated[str, Form(pattern=r"^(acknowledge|start|resolve|close|note|assign)$")],
                    vault: AppVault, feed: Feed, telephony: AppTelephony,
                    outcome: Annotated[str | None, Form(max_length=16)] = None,
                    note: Annotated[CleanStr | None, Form(max_length=500)] = None,
                    assignee: Annotated[Identifier | None, Form()] = None) -> Response:
    try:
        incident = service.act(session, vault=vault, actor=principal, incident_id=incident_id,
                               action=action, outcome=outcome or None, note=note,
                               assignee=principal.id if assignee == "me" else assignee)
    except DomainError as exc:
        session.rollback()
        return _incident_page(request, principal, session, vault, telephony, incident_id, status_code=exc.status,
                              error=error_text(request, exc))
    session.commit()  # before the live feed shows the change on every agent's screen: never a state undone
    feed.publish(service.feed_item(incident))
    return RedirectResponse(f"/console/incidents/{incident_id}", status_code=303)


@router.post("/{incident_id}/call")
def incident_call(incident_id: Annotated[Identifier, Path()], request: Request,
                  principal: IncidentHandler, session: DbSession,
                  to: Annotated[str, Form(pattern=r"^(caller|contact:[A-Za-z0-9_-]{1,40})$")],
                  vault: AppVault, telephony: AppTelephony) -> Response:
    """Call the caller or a contact through the telephony adapter; the number is opened through the gate."""
    incident = service.get(session, incident_id=incident_id)
    try:
        result = response.place_call(session, vault=vault, telephony=telephony,
                                     principal=principal, incident=incident, to=to)
    except DomainError as exc:
        session.rollback()
        return _incident_page(request, principal, session, vault, telephony, incident_id, status_code=exc.status,
                              error=error_text(request, exc))
    return RedirectResponse(f"/console/incidents/{incident_id}?call={result.status}", status_code=303)
