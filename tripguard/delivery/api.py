"""HTTP routes of delivery: the operator's backend (orders, couriers, states, the number pool), each
party's view of an order, the courier's pickup and hand-over, support's reveal, the privacy label and
the telephony provider's routing question."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tripguard.core.admission import Bulk
from tripguard.core.db import DbSession
from tripguard.core.deps import AppSettings, SecretKey
from tripguard.core.errors import PROBLEM_MEDIA_TYPE
from tripguard.core.types import Identifier
from tripguard.delivery import label_render, labels, numbers, service, views
from tripguard.delivery.deps import AppOrderIntake, LabelPool
from tripguard.delivery.schemas import (
    Assign,
    Code,
    FieldShownRead,
    Item,
    Mark,
    NumbersAdd,
    OrderCreate,
    OrderRead,
    OrderReceipt,
    Photo,
    Reveal,
    RouteAnswer,
    RouteAsk,
)
from tripguard.notify.deps import Wake
from tripguard.security.auth import (
    LabelPrinter,
    OrderHandler,
    OrderReader,
    OrderRevealer,
    OrderSubmitter,
    StaffManager,
    TelephonyRouter,
)
from tripguard.vault.deps import AppVault

router = APIRouter(prefix="/api/v1", tags=["delivery"])
OrderId = Annotated[Identifier, Path(description="the operator's order id")]


def _read(view: views.OrderView) -> OrderRead:
    order = view.order
    return OrderRead(id=order.id, party=view.party, status=order.status, city=order.city,
                     items=[Item.model_validate(i) for i in order.items],
                     fields={k: FieldShownRead(value=v.value, shown=v.shown) for k, v in view.fields.items()},
                     pickup_code=view.pickup_code, virtual_number=view.virtual_number,
                     merchant_number=view.merchant_number, exception=order.exception,
                     handover_method=order.handover_method, created_at=order.created_at,
                     picked_up_at=order.picked_up_at, completed_at=order.completed_at)


def _receipt(order: object) -> OrderReceipt:
    return OrderReceipt.model_validate(order, from_attributes=True)


@router.post("/orders", status_code=201,
             responses={200: {"model": OrderReceipt, "description": "the same order again: nothing changed"}})
async def take_order(body: OrderCreate, principal: OrderSubmitter, response: Response,
                     order_intake: AppOrderIntake) -> OrderReceipt:
    """A new order with only what delivering it needs. The same id again is the same order. Orders that
    arrive together are stored together; each is answered once its own is committed."""
    order, new = await order_intake.submit(principal.actor, service.Intake(
        order_id=body.id, customer_id=body.customer_id, merchant_id=body.merchant_id, city=body.city,
        notice_version=body.notice_version, name=body.customer.name, phone=body.customer.phone,
        address=body.address, items=[i.model_dump(exclude_none=True) for i in body.items], notes=body.notes,
        locale=body.locale,
        merchant_phone=body.merchant_phone))
    if not new:
        response.status_code = 200
    return _receipt(order)


@router.get("/orders/{order_id}")
def read_order(order_id: OrderId, principal: OrderReader, session: DbSession, vault: AppVault
               ) -> OrderRead:
    """The order as your part in it lets you see it (the customer all of theirs; the courier the address and
    masks until hand-over, then nothing; the kitchen items and pickup code; support masks). Audited."""
    return _read(views.view(session, vault=vault, principal=principal, order=service.get(session, order_id=order_id)))


@router.post("/orders/{order_id}/assign", responses={409: {
    "description": "the dispatch gate refuses the courier (`blockers` names why, `worker_id` whom), or the order "
                   "is past assignment",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}})
def assign(order_id: OrderId, body: Assign, principal: OrderSubmitter, session: DbSession,
           vault: AppVault) -> OrderReceipt:
    """The courier who carries the order: bound to the customer through a virtual number of the city. The
    dispatch gate is asked: a courier it refuses (not screened, not trained, unsigned, suspended) is a 409
    naming the blockers, unless `override_reason` is given (audited, reported to supervision)."""
    order = service.assign(session, vault=vault, actor=principal.actor, order_id=order_id,
                           courier_id=body.courier_id, courier_phone=body.courier_phone,
                           on_exhausted=numbers.alert_exhausted, override_reason=body.override_reason)
    return _receipt(order)


@router.post("/orders/{order_id}/status")
def mark(order_id: OrderId, body: Mark, principal: OrderSubmitter, request: Request,
         session: DbSession, grace: Grace) -> OrderReceipt:
    """Prepared, cancelled, or an exception (wrong address, lost meal, unreachable customer, …)."""
    return _receipt(service.mark(session, actor=principal.actor, order_id=order_id, status=body.status,
                                 exception=body.exception, grace=grace))


@router.post("/orders/{order_id}/pickup")
def pick_up(order_id: OrderId, body: Code, courier: OrderHandler, session: DbSession,
            vault: AppVault, outbox_wake: Wake, secret: SecretKey) -> OrderReceipt:
    """The code on the bag's label, typed or scanned by its courier: 5 tries. The customer is then sent
    the hand-over code."""
    order = service.pick_up(session, vault=vault, secret_key=secret, courier=courier.actor,
                            order_id=order_id, code=body.code)
    outbox_wake.set()
    return _receipt(order)


@router.post("/orders/{order_id}/handover")
def hand_over(order_id: OrderId, body: Code, courier: OrderHandler, request: Request,
              session: DbSession, secret: SecretKey, grace: Grace) -> OrderReceipt:
    """The 4-digit code the customer was sent: 5 tries (parallel guesses count too), then locked (423)."""
    return _receipt(service.hand_over(session, secret_key=secret, courier=courier.actor, order_id=order_id,
                                      code=body.code, grace=grace))


@router.post("/orders/{order_id}/handover/photo")
def hand_over_with_photo(order_id: OrderId, body: Photo, courier: OrderHandler, request: Request,
                         session: DbSession, vault: AppVault, grace: Grace) -> OrderReceipt:
    """Photo proof, only once the code is locked or expired. Sealed under the customer's key."""
    return _receipt(service.hand_over_with_photo(session, vault=vault, courier=courier.actor,
                                                 order_id=order_id, photo=body.photo, grace=grace))


@router.post("/orders/{order_id}/reveal")
def reveal(order_id: OrderId, body: Reveal, principal: OrderRevealer, session: DbSession,
           vault: AppVault) -> FieldShownRead:
    """Support opens one field for a stated reason (name, phone or notes; never the address). Audited."""
    shown = views.reveal(session, vault=vault, principal=principal,
                         order=service.get(session, order_id=order_id),
                         column=body.field, reason=body.reason)
    return FieldShownRead(value=shown.value, shown=shown.shown)


@router.get("/orders/{order_id}/label", dependencies=[Bulk],
            responses={200: {"content": {"application/pdf": {}, "image/png": {}}}})
async def label(order_id: OrderId, principal: LabelPrinter, session: DbSession, vault: AppVault,
                settings: AppSettings, label_pool: LabelPool,
                format: Annotated[str, Query(pattern="^(pdf|png)$")] = "pdf") -> Response:
    """The privacy label for the bag: pickup code, masked name, the phone's last 4 digits, a QR code for
    the courier's app, the address down to its street and building (never a unit, floor or room), the
    items or, when the operator hides their names, only how many. Chinese in an embedded font."""
    def masked() -> label_render.LabelText:
        text = labels.label_text(session, vault=vault, principal=principal, order_id=order_id,
                                 policy=labels.ItemPolicy.of(settings))
        session.commit()  # the read audited, and SQLite's writer free, before the render
        return text

    text = await run_in_threadpool(masked)
    content = await label_pool.run(label_render.render, text, format)
    return Response(content, media_type="application/pdf" if format == "pdf" else "image/png",
                    headers={"Cache-Control": "no-store"})


@router.put("/merchants/{merchant_id}/staff/{staff_id}", status_code=204)
def link_merchant_staff(merchant_id: Identifier, staff_id: Identifier, principal: StaffManager,
                        session: DbSession) -> Response:
    """A console account works for this merchant: its kitchen sees that merchant's orders (items, pickup
    codes, labels), never another's. Putting it again moves the account to this merchant."""
    service.link_merchant_staff(session, actor=principal.actor, merchant_id=merchant_id, staff_id=staff_id)
    return Response(status_code=204)


@router.post("/telephony/numbers")
def add_numbers(body: NumbersAdd, _: OrderSubmitter, session: DbSession) -> dict[str, int]:
    """Numbers for a city's pool (the X of AXB), as the carrier allocated them."""
    added = numbers.add_numbers(session, city=body.city, numbers=[numbers.digits(n) for n in body.numbers])
    return {"added": added, **numbers.pool_status(session, city=body.city)}


@router.post("/telephony/route")
def route(body: RouteAsk, principal: TelephonyRouter, session: DbSession, vault: AppVault
          ) -> RouteAnswer:
    """Asked by the telephony provider when a virtual number rings: the real number to bridge to, or a
    refusal (no binding, expired, a caller who is neither party). Every call is recorded, without numbers;
    every real number opened to answer is audited as the provider's use, for delivery."""
    answer = numbers.route(session, vault=vault, actor=principal.actor,
                           number=numbers.digits(body.number), caller=body.caller)
    return RouteAnswer(action=answer.action, to=answer.to, reason=answer.reason)  # type: ignore[arg-type]


async def _grace(settings: AppSettings) -> timedelta:
    return timedelta(minutes=settings.delivery_number_grace_minutes)


Grace = Annotated[timedelta, Depends(_grace)]  # how long a virtual number still rings after the order
