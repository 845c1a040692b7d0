"""Delivery orders and what keeps them confidential: the order's personal fields sealed under the
customer's key, one-time pickup and hand-over codes, the pool of virtual numbers, the bindings that
bridge calls between customer and courier, and every call as an interaction without real numbers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, personal_column


class Order(Base):
    __tablename__ = "delivery_orders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the operator's order id
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    merchant_id: Mapped[str] = mapped_column(String(64), index=True)
    courier_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # When the operator gave the order to this courier over the dispatch gate (a reason audited): the
    # courier then reads this order though the gate refuses them. None: the gate allowed the courier.
    courier_override_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The gate's blocker codes that override lifted (["training.missing"]): any other blocker the courier
    # has later is asked as for any order. None on an overridden order (one from before 0043 whose codes
    # were not found): no code is lifted, the whole gate is asked.
    courier_override_blockers: Mapped[list[str] | None] = mapped_column(JSON)
    city: Mapped[str] = mapped_column(String(40))
    # accepted -> prepared -> picked_up -> delivered; cancelled or exception from any before delivered
    status: Mapped[str] = mapped_column(String(12), index=True)
    items: Mapped[list[dict[str, object]]] = mapped_column(JSON)  # what the kitchen makes: names and counts
    notice_version: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))  # the customer's language, for the hand-over code's SMS
    customer_name: Mapped[bytes | None] = personal_column(Category.NAME, subject_column="customer_id",
                                                 person="customer")
    customer_phone: Mapped[bytes | None] = personal_column(Category.PHONE, subject_column="customer_id",
                                                 person="customer")
    address: Mapped[bytes | None] = personal_column(Category.ADDRESS, subject_column="customer_id",
                                                 person="customer")
    notes: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="customer_id",
                                                 person="customer")
    # The merchant's phone, for the courier to call about the pickup (through its own virtual number).
    merchant_phone: Mapped[bytes | None] = personal_column(Category.PHONE, subject_column="merchant_id",
                                                          person="merchant")
    proof_photo: Mapped[bytes | None] = personal_column(Category.ADDRESS, subject_column="customer_id",
                                                 person="customer")  # base64
    pickup_code: Mapped[str] = mapped_column(String(8))  # shown to the kitchen and on the label
    pickup_attempts: Mapped[int] = mapped_column(Integer, default=0)
    handover_code_hash: Mapped[str | None] = mapped_column(String(64))
    handover_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handover_attempts: Mapped[int] = mapped_column(Integer, default=0)
    handover_method: Mapped[str | None] = mapped_column(String(8))  # code | photo
    exception: Mapped[str | None] = mapped_column(String(24))  # wrong_address | lost_meal | unreachable | …
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    picked_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # delivered or cancelled
    contact_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MerchantStaff(Base):
    """Which console accounts work for which merchant (they see that merchant's orders only)."""

    __tablename__ = "delivery_merchant_staff"

    staff_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64), index=True)


LIVE_BINDING = text("status = 'active' AND expires_at IS NULL")


class VirtualNumber(Base):
    """A number of the pool (the X of AXB): bound to one order at a time, then quiet before reuse."""

    __tablename__ = "delivery_virtual_numbers"

    number: Mapped[str] = mapped_column(String(24), primary_key=True)
    city: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(8), index=True)  # free | bound | quiet
    quiet_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    binding_id: Mapped[str | None] = mapped_column(String(40))


class Binding(Base):
    """The courier and one other party of an order (the customer, or the merchant) bridged through one
    virtual number, until the order completes plus a grace."""

    __tablename__ = "delivery_bindings"
    # One live binding per order and party (ended ones carry `expires_at`): parallel assignments can never
    # leave a replaced courier a second working line to the customer.
    __table_args__ = (Index("uq_delivery_bindings_live", "order_id", "party", unique=True,
                            postgresql_where=LIVE_BINDING, sqlite_where=LIVE_BINDING),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[str] = mapped_column(String(24), index=True)
    party: Mapped[str] = mapped_column(String(8))  # customer | merchant: who the courier talks to on it
    courier_id: Mapped[str] = mapped_column(String(64))
    courier_phone: Mapped[bytes | None] = personal_column(Category.PHONE, subject_column="courier_id",
                                                         person="courier")
    status: Mapped[str] = mapped_column(String(8), index=True)  # active | expired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # set at completion


class Interaction(Base):
    """One call through a virtual number: who called whom, and whether it was bridged. No real numbers."""

    __tablename__ = "delivery_interactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    binding_id: Mapped[str | None] = mapped_column(String(40), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    number: Mapped[str] = mapped_column(String(24))
    caller: Mapped[str] = mapped_column(String(12))  # customer | merchant | courier | unknown
    outcome: Mapped[str] = mapped_column(String(12))  # bridged | refused
    reason: Mapped[str | None] = mapped_column(String(24))  # expired | unknown_caller | no_binding
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
