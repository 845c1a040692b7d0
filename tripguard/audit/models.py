"""Audit entries (Merkle leaves, append-only) and signed tree heads.

An entry is written in the transaction of the change it records, with no leaf index yet; the
sequencer (`audit.service.sequence_pending`) later gives committed entries consecutive indices and
their leaf hashes, in batches. Writers therefore never wait for each other (as in Trillian).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tripguard.core.db import Base, UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_actor", "actor_type", "actor_id"),
        Index("ix_audit_entries_target", "target_type", "target_id"),
        Index("ix_audit_entries_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # leaf index, once sequenced
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, never personal data
    leaf_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class TreeHead(Base):
    __tablename__ = "audit_tree_heads"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    # The Merkle frontier at this size (merkle.Accumulator.to_bytes): the next head hashes only new leaves.
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary)


class TreeNode(Base):
    """A perfect subtree's hash (level L covers leaves [index * 2^L, (index + 1) * 2^L)), stored when a head is
    signed: a proof then reads O(log n) of them instead of every leaf."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
