"""Orders in the console: support agents see every order with its fields masked and may reveal one
for a stated reason; a merchant's kitchen accounts see their merchant's orders only (items, pickup
code, the label to print). Each order shows its virtual-number binding and its calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tripguard.console.lists import (
    Column,
    Filter,
    ListSpec,
    csv_response,
    fetch,
    read_query,
)
from tripguard.console.shell import error_text, page
from tripguard.core.admission import Bulk, BulkWhenDownloaded
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings
from tripguard.core.errors import DomainError, PermissionDenied
from tripguard.core.i18n import N_
from tripguard.core.types import Identifier, Reason
from tripguard.delivery import label_render, labels, numbers, service, views
from tripguard.delivery.deps import LabelPool
from tripguard.delivery.models import Order
from tripguard.privacy import access
from tripguard.security.auth import LabelPrinter, OrderReader, OrderRevealer
from tripguard.security.principal import Principal
from tripguard.vault.deps import AppVault
from tripguard.vault.service import Vault

router = APIRouter(prefix="/console/orders", include_in_schema=False)
STATUS_LABELS = {"accepted": N_("accepted"), "prepared": N_("prepared"), "picked_up": N_("picked up"),
                 "delivered": N_("delivered"), "cancelled": N_("cancelled"), "exception": N_("exception")}
FIELD_LABELS = {"customer_name": N_("Name"), "customer_phone": N_("Phone"), "address": N_("Address"),
                "notes": N_("Notes")}
EXCEPTION_LABELS = {"wrong_address": N_("wrong address"), "lost_meal": N_("lost meal"),
                    "unreachable": N_("customer unreachable"), "damaged": N_("damaged"), "other": N_("other")}
ORDERS = ListSpec(
    name="orders", model=Order, default_sort="created", tiebreak=Order.id,
    columns=[Column("created", N_("Placed"), Order.created_at), Column("order", N_("Order")),
             Column("status", N_("State"), Order.status), Column("city", N_("City"), Order.city),
             Column("merchant", N_("Merchant")), Column("courier", N_("Courier")),
             Column("exception", N_("Exception"), Order.exception)],
    filters=[Filter("status", N_("State"), [("", N_("All")), *STATUS_LABELS.items()],
                    lambda statement, value: statement.where(Order.status == value))],
    search=[Order.id, Order.merchant_id, Order.courier_id])


@router.get("", dependencies=[BulkWhenDownloaded])
def orders_page(request: Request, principal: OrderReader, session: DbSession) -> Response:
    query = read_query(request, ORDERS)
    statement = service.visible_orders(session, principal=principal)
    if query.export:
        return csv_response(request, session, principal, ORDERS, query, statement=statement,
                            header=[N_("Order"), N_("State"), N_("City"), N_("Merchant"), N_("Courier"),
                                    N_("Exception"), N_("Placed"), N_("Picked up"), N_("Completed")],
                            row=lambda o, cells: [
                                o.id, cells.word(o.status, STATUS_LABELS), o.city, o.merchant_id, o.courier_id,
                                cells.word(o.exception, EXCEPTION_LABELS), o.created_at, o.picked_up_at,
                                o.completed_at])
    return page(request, "delivery/orders.html", principal, "/console/orders",
                list=fetch(session, statement=statement, spec=ORDERS, query=query), status_labels=STATUS_LABELS,
                exception_labels=EXCEPTION_LABELS)


def _order_page(request: Request, principal: Principal, session: DbSession, vault: Vault,
                order_id: str, *, revealed: views.FieldShown | None = None,
                revealed_field: str | None = None, error: str | None = None, status_code: int = 200
                ) -> HTMLResponse:
    order = service.get(session, order_id=order_id)
    seen = views.view(session, vault=vault, principal=principal, order=order)
    bindings = [b for party in ("customer", "merchant")
                if (b := numbers.binding_of(session, order_id=order.id, party=party))]
    counts = numbers.call_counts(session, order_id=order.id)
    can_print = seen.party == "merchant"
    return page(request, "delivery/order.html", principal, "/console/orders", status_code=status_code, o=order,
                seen=seen, bindings=bindings, calls=counts, revealed=revealed, revealed_field=revealed_field,
                error=error, status_labels=STATUS_LABELS, field_labels=FIELD_LABELS,
                exception_labels=EXCEPTION_LABELS, can_reveal=seen.party == "support", can_print=can_print,
                print_refused=_print_refused(request, session, principal) if can_print else None)


def _print_refused(request: Request, session: DbSession, principal: Principal) -> tuple[str, bool] | None:
    """Why the kitchen may not print yet (the label carries the customer's masked name and phone: not before
    the confidentiality agreement, nor while suspended), and whether signing is the way: said on the order
    instead of a broken preview and a print button that fails."""
    try:
        access.check_clearance(session, principal=principal)
    except PermissionDenied as exc:
        return error_text(request, exc), exc.type == "/problems/agreement-unsigned"
    return None


@router.get("/{order_id}")
def order_page(request: Request, order_id: Identifier, principal: OrderReader, session: DbSession,
               vault: AppVault) -> HTMLResponse:
    """One order as your part in it lets you see it (audited), its binding and calls."""
    return _order_page(request, principal, session, vault, order_id)


@router.post("/{order_id}/reveal")
def reveal(request: Request, order_id: Identifier, principal: OrderRevealer, session: DbSession,
           field: Annotated[str, Form(pattern="^(customer_name|customer_phone|address|notes)$")],
           reason: Annotated[Reason, Form()], vault: AppVault) -> HTMLResponse:
    """Support opens one field for a stated reason (the address never opens for support)."""
    try:
        shown = views.reveal(session, vault=vault, principal=principal,
                             order=service.get(session, order_id=order_id),
                             column=field, reason=reason)
    except DomainError as exc:
        session.rollback()
        return _order_page(request, principal, session, vault, order_id, error=error_text(request, exc),
                           status_code=exc.status)
    return _order_page(request, principal, session, vault, order_id, revealed=shown, revealed_field=field)


@router.get("/{order_id}/label", dependencies=[Bulk])
async def label(order_id: Identifier, principal: LabelPrinter, session: DbSession, vault: AppVault,
                settings: AppSettings, label_pool: LabelPool,
                format: Annotated[str, Query(pattern="^(pdf|png)$")] = "png") -> Response:
    """The label to preview (PNG) or print (PDF), for the kitchen of the order's merchant."""
    def masked() -> label_render.LabelText:
        text = labels.label_text(session, vault=vault, principal=principal, order_id=order_id, party="merchant",
                                 policy=labels.ItemPolicy.of(settings))
        session.commit()  # the read audited, and SQLite's writer free, before the render
        return text

    text = await run_in_threadpool(masked)
    content = await label_pool.run(label_render.render, text, format)
    return Response(content, media_type="application/pdf" if format == "pdf" else "image/png",
                    headers={"Cache-Control": "no-store"})
