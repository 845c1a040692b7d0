"""Complaints: a person's complaint, or a low rating, about a trip or a delivery order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime
from tripguard.privacy.catalogue import Category, personal_column


class Complaint(Base):
    __tablename__ = "feedback_complaints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)  # who filed it
    subject_role: Mapped[str] = mapped_column(String(16))
    trip_id: Mapped[str | None] = mapped_column(String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(16))  # safety | conduct | privacy | service | low_rating | other
    rating: Mapped[int | None] = mapped_column(Integer)  # 1-5 stars, when the app sends one
    text: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="subject_id")
    status: Mapped[str] = mapped_column(String(12), index=True)  # received | assigned | answered | closed
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # answer by
    assigned_to: Mapped[str | None] = mapped_column(String(40))
    answer: Mapped[bytes | None] = personal_column(Category.NOTE, subject_column="subject_id")  # to the person
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(80))
    became: Mapped[str | None] = mapped_column(String(12))  # incident | breach | violation: what it became
    became_id: Mapped[str | None] = mapped_column(String(40))


class AnswerTemplate(Base):
    """A ready answer the feedback desk starts a reply from, in Chinese and in English. It holds no personal
    data (the agent adds what is particular to the complaint); a retired one is no longer offered."""

    __tablename__ = "feedback_answer_templates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title_zh: Mapped[str] = mapped_column(String(100), unique=True)  # what the agent picks it by
    title_en: Mapped[str] = mapped_column(String(100), unique=True)
    body_zh: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(80))
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
