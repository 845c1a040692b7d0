"""Messages sent (development only): what the recording channels would have sent, so that whoever tries
the demo reads the SMS codes, the contacts' SOS texts and the police gateway's payloads that TripGuard
wrote to its fictional people. Anywhere but development the page does not exist (404): there, the
recordings are nobody's business and the outbox is the provider's."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from tripguard.audit import service as audit
from tripguard.console.lists import (
    Cells,
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    read_query,
)
from tripguard.console.shell import page
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import NotFound
from tripguard.core.i18n import N_
from tripguard.notify import service
from tripguard.notify.channels import Rendered
from tripguard.notify.deps import AppNotifier
from tripguard.notify.models import OutboxMessage
from tripguard.security.auth import RecordedMessagesReader
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

PATH = "/console/messages"
CHANNEL_LABELS = {"sms": N_("SMS"), "push": N_("Push"), "email": N_("E-mail"), "emergency": N_("Emergency gateway")}
STATUS_LABELS = {"pending": N_("waiting"), "sent": N_("recorded"), "dead": N_("given up")}
# What each message is (its template), as a reader names it.
TEMPLATE_LABELS = {
    "verification_code": N_("data request code"), "contact_code": N_("emergency contact's code"),
    "handover_code": N_("hand-over code"), "sos_contact": N_("SOS: a contact told"),
    "emergency_dispatch": N_("SOS: police dispatch"), "trip_share": N_("trip shared"), "check_in": N_("are you OK?"),
    "contact_removed": N_("emergency contact removed"), "complaint_answered": N_("complaint answered"),
    "breach_notice": N_("breach notice"), "digest": N_("digest"), "screening_cleared": N_("screening passed"),
    "screening_pre_adverse": N_("screening: pre-adverse notice"), "screening_final": N_("screening: final decision"),
}
MESSAGES = ListSpec(
    name="messages", model=OutboxMessage, default_sort="created", tiebreak=OutboxMessage.id,
    columns=[Column("created", N_("Queued"), OutboxMessage.created_at),
             Column("channel", N_("Channel"), OutboxMessage.channel), Column("to", N_("Recipient")),
             Column("text", N_("Text")), Column("template", N_("Message"), OutboxMessage.template),
             Column("status", N_("State"), OutboxMessage.status)],
    filters=[Filter("channel", N_("Channel"), [("", N_("All")), *CHANNEL_LABELS.items()],
                    lambda statement, value: statement.where(OutboxMessage.channel == value)),
             Filter("status", N_("State"), [("", N_("All")), *STATUS_LABELS.items()],
                    lambda statement, value: statement.where(OutboxMessage.status == value))],
    search=[OutboxMessage.template, OutboxMessage.subject_id])


def development_only(settings: AppSettings) -> None:
    """The page exists in development only: anywhere else it is not found, whoever asks."""
    if settings.env != "development":
        raise NotFound("no such page")


router = APIRouter(prefix=PATH, include_in_schema=False, dependencies=[Depends(development_only)])


def _opened(session: DbSession, vault: Vault, messages: list[OutboxMessage]
            ) -> list[Rendered | None]:
    return [service.opened(session, vault=vault, message=message) for message in messages]


def _audit_read(session: DbSession, principal: Principal, messages: list[OutboxMessage]) -> None:
    """Opening recorded messages is a read of what they say: one entry naming them (development data)."""
    audit.record(session, actor=principal.actor, action="messages.recorded_read", target_type="notify_outbox",
                 target_id="recorded", details={"messages": ",".join(m.id for m in messages)[:900],
                                                "count": len(messages)})


@router.get("")
def messages_page(request: Request, principal: RecordedMessagesReader, session: DbSession,
                  vault: AppVault, notifier: AppNotifier) -> Response:
    query = read_query(request, MESSAGES)
    statement = service.recorded_messages(notifier)
    if query.export:

        def row(message: OutboxMessage, cells: Cells) -> list[object]:
            shown = service.opened(session, vault=vault, message=message)
            return [message.created_at, cells.word(message.channel, CHANNEL_LABELS), shown.to if shown else "",
                    shown.body if shown else "", cells.word(message.template, TEMPLATE_LABELS),
                    cells.word(message.status, STATUS_LABELS)]

        return csv_response(request, session, principal, MESSAGES, query, statement=statement, row=row,
                            header=[N_("Queued"), N_("Channel"), N_("To"), N_("Text"), N_("Message"), N_("State")])
    listing = fetch(session, statement=statement, spec=MESSAGES, query=query)
    _audit_read(session, principal, listing.rows)
    return page(request, "notify/messages.html", principal, PATH, list=listing,
                shown=list(zip(listing.rows, _opened(session, vault, listing.rows), strict=True)),
                channel_labels=CHANNEL_LABELS, status_labels=STATUS_LABELS, template_labels=TEMPLATE_LABELS)
