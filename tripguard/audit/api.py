"""HTTP routes of the audit log: explorer queries, signed tree heads, proofs, verification.

Built by `router(gate)` with security's checks (`audit.deps.Gate`): audit sits below security and never
imports it. Each route names the check it needs (`Reader`, `Signer`). No `from __future__ import annotations`
here: the routes' annotations name those checks, local to `router`, so they are read where they are written.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status

from tripguard.audit import repository, service
from tripguard.audit.deps import AuditKey, Caller, Gate
from tripguard.audit.schemas import (
    AuditEntryRead,
    AuditPage,
    ConsistencyProofRead,
    InclusionProofRead,
    SigningKeyRead,
    TreeHeadRead,
    VerifyRead,
)
from tripguard.audit.signing import key_id, public_key_pem
from tripguard.audit.verify import verify_log
from tripguard.core.admission import Bulk
from tripguard.core.db import DbSession
from tripguard.core.errors import NotFound
from tripguard.core.types import Identifier, Name, Timestamp

MAX_SEQ = 2**62


def router(gate: Gate) -> APIRouter:
    """The audit log's routes, each behind the check of `gate` it names."""
    routes = APIRouter(prefix="/api/v1/audit", tags=["audit"])
    Reader = Annotated[Caller, gate.read]
    Signer = Annotated[Caller, gate.sign]

    @routes.get("/entries")
    def search_entries(
        _: Reader,
        session: DbSession,
        actor_id: Identifier | None = None,
        action: Annotated[Name | None, Query(description="prefix of the action, e.g. auth.")] = None,
        target_type: Name | None = None,
        target_id: Identifier | None = None,
        outcome: Literal["success", "failure", "denied"] | None = None,
        since: Timestamp | None = None,
        until: Timestamp | None = None,
        before_id: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> AuditPage:
        """Newest first. Page with ``before_id`` = the ``next_before_id`` of the previous page."""
        entries = repository.search_entries(session, query=repository.AuditFilter(
            actor_id=actor_id, action=action, target_type=target_type, target_id=target_id,
            outcome=outcome, since=since, until=until, before_id=before_id, limit=limit,
        ))
        next_before = entries[-1].id if len(entries) == limit else None
        return AuditPage(entries=[AuditEntryRead.of(e) for e in entries], next_before_id=next_before)

    @routes.get("/entries/{seq}")
    def get_entry(
        seq: Annotated[int, Path(ge=0, le=MAX_SEQ, description="leaf index")], _: Reader,
        session: DbSession,
    ) -> AuditEntryRead:
        return AuditEntryRead.of(repository.entry(session, seq=seq))

    @routes.get("/heads")
    def list_heads(_: Reader, session: DbSession,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[TreeHeadRead]:
        """Signed tree heads, newest first: keep them outside TripGuard to detect a rewritten log."""
        return [TreeHeadRead.of(head) for head in repository.list_heads(session, limit=limit)]

    @routes.get("/heads/latest")
    def latest_head(_: Reader, session: DbSession) -> TreeHeadRead:
        head = service.latest_head(session)
        if head is None:
            raise NotFound("no tree head has been signed yet")
        return TreeHeadRead.of(head)

    @routes.post("/heads", status_code=status.HTTP_201_CREATED)
    def sign_head(principal: Signer, session: DbSession, audit_key: AuditKey) -> TreeHeadRead:
        head = service.sign_new_head(session, key=audit_key)
        service.record(session, actor=principal.actor, action="audit.sign_head", target_type="tree_head",
                       target_id=str(head.tree_size))
        return TreeHeadRead.of(head)

    @routes.get("/signing-key")
    def signing_key(_: Reader, audit_key: AuditKey) -> SigningKeyRead:
        public = audit_key.public_key()
        return SigningKeyRead(key_id=key_id(public), public_key_pem=public_key_pem(public))

    @routes.get("/proofs/inclusion")
    def inclusion_proof(
        _: Reader, session: DbSession,
        index: Annotated[int, Query(ge=0, le=MAX_SEQ)],
        tree_size: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    ) -> InclusionProofRead:
        return InclusionProofRead.of(service.prove_inclusion(session, index=index, size=tree_size))

    @routes.get("/proofs/consistency")
    def consistency_proof(
        _: Reader, session: DbSession,
        first: Annotated[int, Query(ge=1, le=MAX_SEQ)],
        second: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    ) -> ConsistencyProofRead:
        return ConsistencyProofRead.of(service.prove_consistency(session, first=first, second=second))

    @routes.get("/verify", dependencies=[Bulk])
    def verify(_: Reader, session: DbSession, audit_key: AuditKey) -> VerifyRead:
        """Rebuild the tree from the stored rows and check every kept signed head."""
        report = verify_log(session, public_key=audit_key.public_key())
        return VerifyRead(ok=report.ok, tree_size=report.tree_size, pending=report.pending,
                          root_hash=report.root_hash.hex(),
                          heads_checked=report.heads_checked, first_bad_seq=report.first_bad_seq,
                          problems=report.problems)

    return routes
