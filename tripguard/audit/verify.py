"""Rebuild the Merkle tree from the stored rows and check it against every kept signed tree head."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit import merkle
from tripguard.audit.models import AuditEntry, TreeHead
from tripguard.audit.service import StoredRanges, leaf_data, pending_count, sequenced_span
from tripguard.audit.signing import head_signature_valid, key_id

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class KeptHead:
    """A signed tree head as stored by TripGuard or kept by a supervisor (exported JSON)."""

    tree_size: int
    root_hash: bytes
    signed_at: datetime
    key_id: str
    signature: bytes
    source: str

    @classmethod
    def from_row(cls, row: TreeHead) -> KeptHead:
        return cls(row.tree_size, row.root_hash, row.signed_at, row.key_id, row.signature, "database")

    @classmethod
    def from_export(cls, item: dict[str, object], source: str) -> KeptHead:
        return cls(
            tree_size=int(item["tree_size"]),  # type: ignore[call-overload]
            root_hash=bytes.fromhex(str(item["root_hash"])),
            signed_at=datetime.fromisoformat(str(item["signed_at"])),
            key_id=str(item["key_id"]),
            signature=base64.b64decode(str(item["signature"])),
            source=source,
        )


@dataclass
class Report:
    tree_size: int = 0
    pending: int = 0  # entries not yet given a leaf index (no head can cover them yet)
    root_hash: bytes = merkle.EMPTY_ROOT
    heads_checked: int = 0
    problems: list[str] = field(default_factory=list)
    # A row that fails its own check is named exactly; a tree head that no longer matches only
    # bounds the damage to a range, whose start is used when no row was named.
    first_exact_seq: int | None = None
    first_range_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        return self.first_exact_seq if self.first_exact_seq is not None else self.first_range_seq

    def fail(self, message: str, seq: int | None = None, *, exact: bool = True) -> None:
        if seq is not None:
            if exact and (self.first_exact_seq is None or seq < self.first_exact_seq):
                self.first_exact_seq = seq
            if not exact and (self.first_range_seq is None or seq < self.first_range_seq):
                self.first_range_seq = seq
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


def load_heads_file(path: Path) -> list[KeptHead]:
    """A supervisor's kept heads: a JSON array, or one JSON object a line."""
    text = path.read_text()
    stripped = text.lstrip()
    items = json.loads(text) if stripped.startswith("[") else [
        json.loads(line) for line in text.splitlines() if line.strip()
    ]
    return [KeptHead.from_export(item, str(path)) for item in items]


def verify_log(
    session: Session, *, public_key: Ed25519PublicKey, extra_heads: Iterable[KeptHead] = ()
) -> Report:
    report = Report()
    heads = [KeptHead.from_row(row) for row in session.scalars(select(TreeHead))]
    heads.extend(extra_heads)
    heads.sort(key=lambda head: head.tree_size)
    expected_key = key_id(public_key)

    roots_at: dict[int, bytes] = {}
    wanted_sizes = {head.tree_size for head in heads}
    accumulator = merkle.Accumulator()
    if 0 in wanted_sizes:
        roots_at[0] = accumulator.root()
    rows = session.execute(
        select(AuditEntry).where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq)
        .execution_options(yield_per=2000)
    )
    for entry in rows.scalars():
        assert entry.seq is not None
        if entry.seq != accumulator.size:
            missing_to = entry.seq - 1
            span = f"{accumulator.size}" if missing_to == accumulator.size else (
                f"{accumulator.size}..{missing_to}"
            )
            report.fail(f"entry {span} is missing (deleted, or the rows were renumbered)", accumulator.size)
            break
        recomputed = merkle.leaf_hash(leaf_data(entry))
        if recomputed != entry.leaf_hash:
            report.fail(f"entry {entry.seq} was changed: its content no longer matches its leaf hash",
                        entry.seq)
        accumulator.append(recomputed)
        if accumulator.size in wanted_sizes:
            roots_at[accumulator.size] = accumulator.root()
    report.tree_size = accumulator.size
    report.root_hash = accumulator.root()
    report.pending = pending_count(session)

    last_good = 0
    for head in heads:
        label = f"tree head of size {head.tree_size} ({head.source})"
        if head.key_id != expected_key:
            report.fail(f"{label} was signed by unknown key {head.key_id}")
            continue
        if not head_signature_valid(public_key, head.tree_size, head.root_hash, head.signed_at,
                                    head.signature):
            report.fail(f"{label} has an invalid signature")
            continue
        report.heads_checked += 1
        if head.tree_size > report.tree_size and head.tree_size not in roots_at:
            report.fail(f"{label} covers entries the log no longer has: entries from "
                        f"{report.tree_size} on were deleted", report.tree_size)
            continue
        if roots_at.get(head.tree_size) != head.root_hash:
            report.fail(f"{label} no longer matches: an entry between {last_good} and "
                        f"{head.tree_size - 1} was changed, inserted or reordered", last_good, exact=False)
            continue
        last_good = head.tree_size
    return report


@dataclass(frozen=True)
class HeadCheck:
    """The stored log against its latest signed head, cheaply (the security check's evidence; `verify_log`
    rehashes every entry): the head's signature, every leaf index from 0 to the head's size and past it
    (a unique index, so a count), and the head's root from the stored subtree hashes and newest leaves."""

    tree_size: int
    signature_ok: bool
    expected: int  # leaves the log must hold: the head's size, or more when entries were sequenced since
    stored: int  # sequenced entries stored
    root_ok: bool

    @property
    def missing(self) -> int:
        return self.expected - self.stored


def check_latest_head(session: Session, *, head: TreeHead,
                      public_key: Ed25519PublicKey) -> HeadCheck:
    signature_ok = head.key_id == key_id(public_key) and head_signature_valid(
        public_key, head.tree_size, head.root_hash, head.signed_at, head.signature)
    first, last, count = sequenced_span(session)
    expected = max(head.tree_size, last + 1)
    whole = count == expected and (count == 0 or first == 0)
    return HeadCheck(head.tree_size, signature_ok, expected, count,
                     whole and _root(session, head.tree_size) == head.root_hash)


def _root(session: Session, size: int) -> bytes | None:
    if size == 0:
        return merkle.EMPTY_ROOT
    try:
        return StoredRanges(session)(0, size)
    except RuntimeError:  # a leaf the stored tree needs is gone
        return None
