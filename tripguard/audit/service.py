"""Append audit entries in the caller's transaction; sequence them; sign tree heads; build proofs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.orm import Session

from tripguard.audit import merkle
from tripguard.audit.actor import SYSTEM, Actor
from tripguard.audit.models import AuditEntry, TreeHead, TreeNode
from tripguard.audit.signing import key_id, sign_head
from tripguard.core.clock import utcnow
from tripguard.core.errors import InvalidInput, NotFound
from tripguard.core.logging import request_id_var

# PostgreSQL advisory lock held by the sequencer and the head signer (never by writers).
_APPEND_LOCK_KEY = 0x7467_6175  # "tgau"
OUTCOMES = frozenset({"success", "failure", "denied"})
Scalar = str | int | float | bool | None
__all__ = ["SYSTEM", "Actor"]  # re-exported for callers that import them from here


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaf_data(entry: AuditEntry) -> bytes:
    """The bytes a leaf commits to: every column but the stored hash, the index included."""
    return canonical_json(
        {
            "seq": entry.seq, "ts": format_ts(entry.ts), "actor_type": entry.actor_type,
            "actor_id": entry.actor_id, "action": entry.action, "target_type": entry.target_type,
            "target_id": entry.target_id, "purpose": entry.purpose, "outcome": entry.outcome,
            "request_id": entry.request_id, "details": entry.details,
        }
    ).encode()


def _lock_log(session: Session) -> None:
    """Serialise the sequencer and the head signer until this transaction ends.

    SQLite transactions begin IMMEDIATE, so there the writer lock is already held.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY})


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    purpose: str | None = None,
    outcome: str = "success",
    details: dict[str, Scalar] | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (it commits or rolls back with it).

    No lock is taken: the entry gets its leaf index from the sequencer once committed.
    ``details`` holds identifiers and counts only: never personal data or secrets.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    entry = AuditEntry(
        ts=utcnow(), actor_type=actor.type, actor_id=actor.id[:64], action=action,
        target_type=target_type, target_id=target_id, purpose=purpose, outcome=outcome,
        request_id=request_id_var.get(), details=canonical_json(details or {}),
    )
    session.add(entry)  # flushed with the rest of the transaction: a burst of entries is one INSERT
    return entry


SEQUENCE_BATCH = 5000


def sequence_pending(session: Session, *, batch: int = SEQUENCE_BATCH) -> int:
    """Give committed entries without an index the next indices, in insertion order; return how many.

    Entries that commit later than others inserted after them simply get later indices.
    """
    _lock_log(session)
    current = session.scalar(select(func.max(AuditEntry.seq)))
    next_seq = 0 if current is None else current + 1
    pending = session.scalars(
        select(AuditEntry).where(AuditEntry.seq.is_(None)).order_by(AuditEntry.id).limit(batch)
    ).all()
    for entry in pending:
        entry.seq = next_seq
        entry.leaf_hash = merkle.leaf_hash(leaf_data(entry))
        next_seq += 1
    session.flush()
    return len(pending)


def sequence_all(session: Session) -> int:
    total = 0
    while (done := sequence_pending(session)) > 0:
        total += done
        if done < SEQUENCE_BATCH:
            break
    return total


def tree_size(session: Session) -> int:
    current = session.scalar(select(func.max(AuditEntry.seq)))
    return 0 if current is None else current + 1


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None))) or 0


def leaf_hashes(session: Session, *, size: int | None = None) -> list[bytes]:
    query = select(AuditEntry.leaf_hash).where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq)
    if size is not None:
        query = query.where(AuditEntry.seq < size)
    return [leaf for leaf in session.scalars(query) if leaf is not None]


def last_of(session: Session, *, action: str) -> AuditEntry | None:
    """The newest entry of an action (the evidence of the last backup, restore drill or scan)."""
    return session.scalar(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.ts.desc()).limit(1))


def oldest_entry_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(AuditEntry.ts)))


def sequenced_span(session: Session) -> tuple[int, int, int]:
    """The lowest and highest leaf index and how many leaves there are (a whole log: 0, n - 1, n)."""
    first, last, count = session.execute(select(func.min(AuditEntry.seq), func.max(AuditEntry.seq),
                                                func.count(AuditEntry.seq))).one()
    return (first or 0, last if last is not None else -1, count or 0)


def latest_head(session: Session) -> TreeHead | None:
    return session.scalar(select(TreeHead).order_by(TreeHead.tree_size.desc()).limit(1))


def sign_new_head(session: Session, *, key: Ed25519PrivateKey) -> TreeHead:
    """Sequence what is pending, then sign the tree; with nothing new, return the last head."""
    sequence_all(session)  # takes the log lock for the rest of the transaction
    size = tree_size(session)
    latest = latest_head(session)
    if latest is not None and latest.tree_size == size:
        return latest
    # From the last head's frontier, only the leaves since are read and hashed: signing stays cheap
    # however long the log grows (a head without one, from before frontiers were kept, starts over).
    resumed = latest is not None and bool(latest.frontier)
    accumulator = merkle.Accumulator.from_bytes(latest.frontier) if resumed else merkle.Accumulator()  # type: ignore[union-attr, arg-type]
    if not resumed:
        session.execute(delete(TreeNode))  # starting over: the same nodes are written again below
    for leaf in session.scalars(select(AuditEntry.leaf_hash).where(
            AuditEntry.seq >= accumulator.size, AuditEntry.seq < size).order_by(AuditEntry.seq)):
        assert leaf is not None, "a sequenced entry has its leaf hash"
        accumulator.append(leaf)
    if accumulator.size != size:
        raise RuntimeError(f"the audit log has {accumulator.size} of {size} leaves: run `tripguard audit verify`")
    stored = [{"level": level, "index": index, "hash": value}
              for level, index, value in accumulator.completed if level >= MIN_STORED_LEVEL]
    for start in range(0, len(stored), 5000):
        session.execute(insert(TreeNode), stored[start:start + 5000])
    now = utcnow()
    signed_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # heads sign ms
    root_hash = accumulator.root()
    head = TreeHead(
        tree_size=size, root_hash=root_hash, signed_at=signed_at, frontier=accumulator.to_bytes(),
        key_id=key_id(key.public_key()), signature=sign_head(key, size, root_hash, signed_at),
    )
    session.add(head)
    session.flush()
    return head


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    path: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: list[bytes]


def _resolve_size(session: Session, requested: int | None) -> int:
    size = tree_size(session)
    if requested is None:
        return size
    if not 0 < requested <= size:
        raise InvalidInput(f"tree_size must be between 1 and the current size {size}")
    return requested


def prove_inclusion(session: Session, *, index: int, size: int | None = None) -> InclusionProof:
    size = _resolve_size(session, size)
    if not 0 <= index < size:
        raise NotFound(f"no entry {index} in a tree of {size}")
    ranges = StoredRanges(session)
    return InclusionProof(
        index=index, tree_size=size, leaf_hash=ranges(index, 1), root_hash=ranges(0, size),
        path=merkle.inclusion_path(index, size, ranges),
    )


def prove_consistency(session: Session, *, first: int, second: int | None = None) -> ConsistencyProof:
    second = _resolve_size(session, second)
    if not 0 < first <= second:
        raise InvalidInput(f"first must be between 1 and {second}")
    ranges = StoredRanges(session)
    return ConsistencyProof(
        first=first, second=second, first_root=ranges(0, first),
        second_root=ranges(0, second), path=merkle.consistency_path(first, second, ranges),
    )


# Subtrees of 16 leaves and up are stored (one row per 16 leaves: signing a head, which holds the log lock
# and on SQLite the writer, writes a sixteenth of what storing every level would); smaller ones are
# hashed from at most 15 leaves when a proof needs them.
MIN_STORED_LEVEL = 4


class StoredRanges:
    """MTH of the ranges a proof needs, from the stored perfect-subtree hashes: O(log n) reads a range. A
    subtree not stored (below MIN_STORED_LEVEL, or sequenced since the last signed head) is hashed from
    its leaves."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, start: int, count: int) -> bytes:
        blocks = merkle.aligned_blocks(start, count)
        by_level: dict[int, list[int]] = {}
        for level, index in blocks:
            if level >= MIN_STORED_LEVEL and (level, index) not in self.cache:
                by_level.setdefault(level, []).append(index)
        for level, indexes in by_level.items():  # one primary-key lookup per level (a row-value IN scans)
            for node in self.session.scalars(select(TreeNode).where(TreeNode.level == level,
                                                                    TreeNode.index.in_(indexes))):
                self.cache[(node.level, node.index)] = node.hash
        return merkle.fold_blocks([self._block(level, index) for level, index in blocks])

    def _block(self, level: int, index: int) -> bytes:
        if (level, index) not in self.cache:
            first = index << level
            leaves = leaf_range(self.session, first=first, stop=first + (1 << level))
            if len(leaves) != 1 << level:
                raise RuntimeError("the audit log is missing leaves: run `tripguard audit verify`")
            self.cache[(level, index)] = merkle.root(leaves)
        return self.cache[(level, index)]


def leaf_range(session: Session, *, first: int, stop: int) -> list[bytes]:
    return [leaf for leaf in session.scalars(select(AuditEntry.leaf_hash).where(
        AuditEntry.seq >= first, AuditEntry.seq < stop).order_by(AuditEntry.seq)) if leaf is not None]


# What the domains that watch the log (workforce's supervision) read of it: entries as read-only views,
# through these functions only.

class EntryView(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def actor_type(self) -> str: ...
    @property
    def actor_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def target_type(self) -> str | None: ...
    @property
    def target_id(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def details(self) -> str: ...


def last_seq(session: Session) -> int | None:
    """The highest leaf index sequenced so far (None before the first)."""
    return session.scalar(select(func.max(AuditEntry.seq)))


def sequenced_between(session: Session, *, after: int, upto: int, actor_type: str, or_actions: Iterable[str],
                      limit: int) -> list[EntryView]:
    """Entries with leaf index in (after, upto], by this kind of actor or of these actions, in log order."""
    return list(session.scalars(select(AuditEntry).where(
        AuditEntry.seq > after, AuditEntry.seq <= upto,
        or_(AuditEntry.actor_type == actor_type, AuditEntry.action.in_(list(or_actions))))
        .order_by(AuditEntry.seq).limit(limit)))


def _window(actor_type: str, actor_id: str, action: str, since: datetime, until: datetime) -> tuple[Any, ...]:
    return (AuditEntry.actor_type == actor_type, AuditEntry.actor_id == actor_id, AuditEntry.action == action,
            AuditEntry.ts >= since, AuditEntry.ts <= until)


def targets_in_window(session: Session, *, actor_type: str, actor_id: str, action: str, since: datetime,
                      until: datetime) -> int:
    """How many distinct targets the actor's `action` entries in [since, until] name."""
    window = _window(actor_type, actor_id, action, since, until)
    return session.scalar(select(func.count(func.distinct(AuditEntry.target_id))).where(*window)) or 0


def ids_in_window(session: Session, *, actor_type: str, actor_id: str, action: str, since: datetime,
                  until: datetime, limit: int) -> list[int]:
    """The ids of the actor's first `limit` `action` entries in [since, until], in id order."""
    window = _window(actor_type, actor_id, action, since, until)
    return list(session.scalars(select(AuditEntry.id).where(*window).order_by(AuditEntry.id).limit(limit)))


def entries_by_id(session: Session, *, entry_ids: Iterable[int]) -> list[EntryView]:
    """These entries, in id order."""
    return list(session.scalars(select(AuditEntry).where(AuditEntry.id.in_(list(entry_ids))).order_by(AuditEntry.id)))
