"""Audit API bodies. Hashes are hex; signatures base64."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tripguard.audit.models import AuditEntry, TreeHead
from tripguard.audit.service import ConsistencyProof, InclusionProof, format_ts
from tripguard.audit.signing import b64


class AuditEntryRead(BaseModel):
    id: int
    seq: int | None = Field(description="leaf index in the Merkle tree; null until sequenced (about a second)")
    ts: datetime
    actor_type: str
    actor_id: str
    action: str
    target_type: str | None
    target_id: str | None
    purpose: str | None
    outcome: str
    request_id: str | None
    details: str
    leaf_hash: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryRead:
        return cls(
            id=entry.id, seq=entry.seq, ts=entry.ts, actor_type=entry.actor_type, actor_id=entry.actor_id,
            action=entry.action, target_type=entry.target_type, target_id=entry.target_id,
            purpose=entry.purpose, outcome=entry.outcome, request_id=entry.request_id,
            details=entry.details, leaf_hash=entry.leaf_hash.hex() if entry.leaf_hash else None,
        )


class AuditPage(BaseModel):
    entries: list[AuditEntryRead]
    next_before_id: int | None


class TreeHeadRead(BaseModel):
    """The exported form a supervisor keeps; ``tripguard audit verify --heads`` reads it back."""

    tree_size: int
    root_hash: str
    signed_at: str
    key_id: str
    signature: str

    @classmethod
    def of(cls, head: TreeHead) -> TreeHeadRead:
        return cls(tree_size=head.tree_size, root_hash=head.root_hash.hex(),
                   signed_at=format_ts(head.signed_at), key_id=head.key_id,
                   signature=b64(head.signature))


class InclusionProofRead(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    path: list[str]

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionProofRead:
        return cls(index=proof.index, tree_size=proof.tree_size, leaf_hash=proof.leaf_hash.hex(),
                   root_hash=proof.root_hash.hex(), path=[p.hex() for p in proof.path])


class ConsistencyProofRead(BaseModel):
    first: int
    second: int
    first_root: str
    second_root: str
    path: list[str]

    @classmethod
    def of(cls, proof: ConsistencyProof) -> ConsistencyProofRead:
        return cls(first=proof.first, second=proof.second, first_root=proof.first_root.hex(),
                   second_root=proof.second_root.hex(), path=[p.hex() for p in proof.path])


class SigningKeyRead(BaseModel):
    key_id: str
    algorithm: str = "Ed25519"
    public_key_pem: str


class VerifyRead(BaseModel):
    ok: bool
    tree_size: int
    pending: int
    root_hash: str
    heads_checked: int
    first_bad_seq: int | None
    problems: list[str]
