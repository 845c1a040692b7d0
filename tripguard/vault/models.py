"""One data key per data subject, wrapped by a versioned key-encryption key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime


class DataKey(Base):
    __tablename__ = "vault_data_keys"

    subject_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    suite: Mapped[str] = mapped_column(String(16))
    kek_version: Mapped[int] = mapped_column(Integer, index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)  # None once shredded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
