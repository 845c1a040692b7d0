"""Request and response bodies of delivery. An order takes only what delivering it needs; anything
else is refused by name (`extra="forbid"` at every level)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tripguard.core.identifiers import ID_PATTERN
from tripguard.core.settings import CATEGORY_PATTERN
from tripguard.core.types import CleanStr, Reason
from tripguard.privacy.schemas import PHONE_PATTERN, VERSION_PATTERN

Id = Field(pattern=ID_PATTERN, max_length=64)
VIRTUAL_NUMBER_PATTERN = r"^\+?[0-9](?:[ -]?[0-9]){4,19}$"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CleanStr = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=99)
    category: str | None = Field(default=None, pattern=CATEGORY_PATTERN,
                                 description="the shop's category of the item (medicine, adult, …): the label "
                                             "names no item of an order holding one the operator marks sensitive")


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CleanStr = Field(min_length=1, max_length=64, description="for the hand-over; shown masked to the courier")
    phone: str = Field(pattern=PHONE_PATTERN, description="reached only through a virtual number")


class OrderCreate(BaseModel):
    """Declared in the data catalogue: `delivery_orders.customer_name`, `.customer_phone`, `.address`, `.notes`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, max_length=64, description="your order id")
    customer_id: str = Field(pattern=ID_PATTERN, max_length=64)
    merchant_id: str = Field(pattern=ID_PATTERN, max_length=64)
    city: str = Field(pattern=r"^[a-z][a-z-]{1,39}$")
    notice_version: str = Field(pattern=VERSION_PATTERN, description="the privacy notice the customer was shown")
    customer: Customer
    address: CleanStr = Field(min_length=2, max_length=200)
    items: list[Item] = Field(min_length=1, max_length=50)
    notes: CleanStr | None = Field(default=None, max_length=200, description="for all but the customer, phone, ID "
                                 "and card numbers are masked, every other number (a door code, a room) and what "
                                 "follows a word like 门禁码, 密码 or PIN hidden; a note with none of these is "
                                 "shown whole")
    locale: Literal["zh_CN", "en"] = "zh_CN"
    merchant_phone: str | None = Field(default=None, pattern=PHONE_PATTERN,
                                       description="the shop's phone: the courier reaches it through a virtual number")


class FieldShownRead(BaseModel):
    value: str | None
    shown: Literal["plain", "masked"]


class OrderRead(BaseModel):
    """An order as the reader's part in it lets them see it."""

    id: str
    party: str
    status: str
    city: str
    items: list[Item]
    fields: dict[str, FieldShownRead] = Field(description="only the personal fields this reader may see, each "
                                                          "plain or masked")
    pickup_code: str | None
    virtual_number: str | None = Field(description="customer and courier call each other through this number")
    merchant_number: str | None = Field(description="merchant and courier call each other through this number")
    exception: str | None
    handover_method: str | None
    created_at: datetime
    picked_up_at: datetime | None
    completed_at: datetime | None


class OrderReceipt(BaseModel):
    id: str
    status: str
    created_at: datetime


class Assign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    courier_id: str = Field(pattern=ID_PATTERN, max_length=64)
    courier_phone: str = Field(pattern=PHONE_PATTERN)
    override_reason: Reason | None = Field(
        default=None,
        description="give the order to a courier the dispatch gate refuses, for this reason (audited and "
                    "reported to supervision); without it such an assignment is a 409 naming the blockers. "
                    "Stripped, 5 to 200 characters, at least 5 of them letters or digits")


class Mark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["prepared", "cancelled", "exception"]
    exception: Literal["wrong_address", "lost_meal", "unreachable", "damaged", "other"] | None = None


class Code(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{4}$")


class Photo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    photo: str = Field(min_length=16, max_length=2_000_000, pattern=r"^[A-Za-z0-9+/]+={0,2}$")


class Reveal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Literal["customer_name", "customer_phone", "address", "notes"]
    reason: Reason = Field(description="why: stripped, 5 to 200 characters, at least 5 of them letters or digits")


class NumbersAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city: str = Field(pattern=r"^[a-z][a-z-]{1,39}$")
    # 5 to 20 digits, single spaces or dashes between them: an empty number was added to the pool (issue #27).
    numbers: list[Annotated[str, StringConstraints(pattern=VIRTUAL_NUMBER_PATTERN)]] = Field(
        min_length=1, max_length=1000, description="as the carrier allocated them, e.g. +86 170-0000-0001")


class RouteAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=r"^\+?[0-9-]{5,24}$", description="the virtual number that was dialled")
    caller: str = Field(pattern=r"^\+?[0-9 -]{5,24}$", description="the number calling")


class RouteAnswer(BaseModel):
    action: Literal["bridge", "refuse"]
    to: str | None
    reason: str | None
