"""Audit log over HTTP: shared transactions, signed heads, proofs a client can check, search."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tripguard.audit import merkle
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry, TreeNode
from tripguard.audit.service import Actor
from tripguard.audit.signing import head_message
from tripguard.security.permissions import Role


def add_entries(db: Session, count: int, action: str = "test.action") -> None:
    for i in range(count):
        audit.record(db, actor=Actor("staff", f"stf_{i % 3}"), action=action, target_type="thing",
                     target_id=str(i))
    db.commit()


def count_entries(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_audit_entry_rolls_back_with_the_change_it_records(db: Session) -> None:
    before = count_entries(db)
    audit.record(db, actor=Actor("staff", "stf_1"), action="test.rolled_back")
    db.rollback()
    assert count_entries(db) == before


def test_entries_are_sequential_and_carry_the_request_id(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SYSTEM_ADMIN)
    response = client.post("/api/v1/staff", json={"username": "zhang.wei", "display_name": "张伟",
                                                   "password": "a long enough passphrase"},
                           headers={"X-Request-ID": "req-0123456789"})
    assert response.status_code == 201
    entry = db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert entry.action == "staff.create" and entry.request_id == "req-0123456789"
    assert entry.seq is None and entry.leaf_hash is None  # pending until the sequencer runs
    assert "张伟" not in entry.details and "passphrase" not in entry.details
    audit.sequence_all(db)
    seqs = list(db.scalars(select(AuditEntry.seq).order_by(AuditEntry.id)))
    assert seqs == list(range(len(seqs)))  # contiguous, in insertion order
    db.refresh(entry)
    assert entry.leaf_hash == merkle.leaf_hash(audit.leaf_data(entry))


def test_signed_head_and_proofs_check_out_for_a_client(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.AUDIT_ADMIN)
    add_entries(db, 5)
    first = client.post("/api/v1/audit/heads").json()
    add_entries(db, 6)
    second = client.post("/api/v1/audit/heads").json()
    assert second["tree_size"] > first["tree_size"]
    assert client.get("/api/v1/audit/heads/latest").json() == second

    key = load_pem_public_key(client.get("/api/v1/audit/signing-key").json()["public_key_pem"].encode())
    for head in (first, second):
        signed_at = datetime.fromisoformat(head["signed_at"])
        key.verify(base64.b64decode(head["signature"]),  # type: ignore[union-attr]
                   head_message(head["tree_size"], bytes.fromhex(head["root_hash"]), signed_at))

    proof = client.get("/api/v1/audit/proofs/inclusion",
                       params={"index": 2, "tree_size": second["tree_size"]}).json()
    assert merkle.verify_inclusion(2, second["tree_size"], bytes.fromhex(proof["leaf_hash"]),
                                   [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(second["root_hash"]))
    consistency = client.get("/api/v1/audit/proofs/consistency",
                             params={"first": first["tree_size"], "second": second["tree_size"]}).json()
    assert merkle.verify_consistency(first["tree_size"], second["tree_size"], bytes.fromhex(first["root_hash"]),
                                     bytes.fromhex(second["root_hash"]),
                                     [bytes.fromhex(p) for p in consistency["path"]])


def test_signing_twice_without_new_entries_returns_the_same_head(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.AUDIT_ADMIN)
    add_entries(db, 3)
    head = audit.sign_new_head(db, key=client.app.state.audit_key)  # type: ignore[attr-defined]
    again = audit.sign_new_head(db, key=client.app.state.audit_key)  # type: ignore[attr-defined]
    assert head is again


def test_a_new_head_extends_the_last_ones_frontier(client: TestClient, db: Session) -> None:
    key = client.app.state.audit_key  # type: ignore[attr-defined]
    add_entries(db, 5)
    first = audit.sign_new_head(db, key=key)
    add_entries(db, 6)
    second = audit.sign_new_head(db, key=key)
    assert (first.tree_size, second.tree_size) == (5, 11) and second.frontier is not None
    assert second.root_hash == merkle.root(audit.leaf_hashes(db))  # the same root as hashing every leaf



def test_after_a_head_without_a_frontier_the_next_starts_over(client: TestClient, db: Session) -> None:
    from tripguard.audit.models import TreeHead
    from tripguard.audit.signing import key_id, sign_head
    from tripguard.core.clock import utcnow

    key = client.app.state.audit_key  # type: ignore[attr-defined]
    add_entries(db, 5)
    audit.sequence_all(db)
    root, at = merkle.root(audit.leaf_hashes(db)), utcnow().replace(microsecond=0)
    db.add(TreeHead(tree_size=5, root_hash=root, signed_at=at, key_id=key_id(key.public_key()),
                    signature=sign_head(key, 5, root, at), frontier=None))  # signed before frontiers were kept
    add_entries(db, 2)
    head = audit.sign_new_head(db, key=key)
    assert head.tree_size == 7 and head.root_hash == merkle.root(audit.leaf_hashes(db))


def test_search_filters_and_pages(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    add_entries(db, 7, action="test.search")
    page = client.get("/api/v1/audit/entries", params={"action": "test.search", "limit": 4}).json()
    assert len(page["entries"]) == 4 and page["next_before_id"] is not None
    rest = client.get("/api/v1/audit/entries",
                      params={"action": "test.search", "limit": 4, "before_id": page["next_before_id"]}).json()
    assert len(rest["entries"]) == 3 and rest["next_before_id"] is None
    by_actor = client.get("/api/v1/audit/entries", params={"actor_id": "stf_1", "action": "test.search"}).json()
    assert {e["actor_id"] for e in by_actor["entries"]} == {"stf_1"}


@pytest.mark.parametrize("params", [{"since": "0.5"}, {"since": "yesterday"}, {"until": "2026-01-01T00:00:00"},
                                    {"limit": 0}, {"before_id": -1}])
def test_bad_search_parameters_are_named(client: TestClient, act_as, params: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.AUDIT_ADMIN)
    response = client.get("/api/v1/audit/entries", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].endswith(next(iter(params)))


def test_proof_beyond_the_tree_is_a_clear_error(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.AUDIT_ADMIN)
    add_entries(db, 2)
    audit.sequence_all(db)
    size = audit.tree_size(db)
    assert client.get("/api/v1/audit/proofs/inclusion", params={"index": size}).status_code == 404
    response = client.get("/api/v1/audit/proofs/consistency", params={"first": 1, "second": size + 5})
    assert response.status_code == 422 and "current size" in response.json()["detail"]


def test_verify_endpoint_reports_an_intact_log(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.AUDIT_ADMIN)
    add_entries(db, 3)
    client.post("/api/v1/audit/heads")
    report = client.get("/api/v1/audit/verify").json()
    assert report["ok"] and report["heads_checked"] >= 1 and report["problems"] == []


def test_periodic_signer_signs_only_when_the_log_grew(db: Session, session_factory, app) -> None:  # type: ignore[no-untyped-def]
    from tripguard.audit.tasks import sign_head_if_grown

    add_entries(db, 2)
    sign_head_if_grown(session_factory, key=app.state.audit_key)
    first = audit.latest_head(db)
    assert first is not None and first.tree_size == count_entries(db)
    sign_head_if_grown(session_factory, key=app.state.audit_key)
    assert audit.latest_head(db).tree_size == first.tree_size  # type: ignore[union-attr]
    add_entries(db, 1)
    sign_head_if_grown(session_factory, key=app.state.audit_key)
    assert audit.latest_head(db).tree_size == first.tree_size + 1  # type: ignore[union-attr]


def test_proofs_from_stored_nodes_equal_the_full_computation_and_read_log_n(client: TestClient, db: Session) -> None:
    """Heads signed at uneven sizes store each perfect subtree once; every proof then equals RFC 6962's
    over all leaves, and reads O(log n) hashes (leaves past the last head are hashed on the spot)."""
    from sqlalchemy import event

    key = client.app.state.audit_key  # type: ignore[attr-defined]
    for batch in (5, 1, 17, 64, 3, 101):
        add_entries(db, batch)
        audit.sign_new_head(db, key=key)
    add_entries(db, 7)  # sequenced, not yet under a head
    audit.sequence_all(db)
    leaves = audit.leaf_hashes(db)
    size = len(leaves)
    signed = size - 7  # every complete subtree of 16 leaves and up under the last head, stored once
    expected = sum(signed >> level for level in range(audit.MIN_STORED_LEVEL, signed.bit_length()))
    assert db.scalar(select(func.count()).select_from(TreeNode)) == expected
    for index in (0, 1, 63, 64, 100, size - 8, size - 1):
        proof = audit.prove_inclusion(db, index=index)
        assert proof.path == merkle.inclusion_proof(index, leaves) and proof.root_hash == merkle.root(leaves)
    for first in (1, 5, 6, 23, 87, 150, size - 7, size):
        proof = audit.prove_consistency(db, first=first)
        assert proof.path == merkle.consistency_proof(first, leaves)
        assert proof.first_root == merkle.root(leaves[:first])
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.get_bind(), "before_cursor_execute", listener)
    try:
        audit.prove_inclusion(db, index=3)
    finally:
        event.remove(db.get_bind(), "before_cursor_execute", listener)
    assert len(statements) <= 3 * size.bit_length() + 4, len(statements)
    assert not any("(level, " in s.replace('"', "") for s in statements)  # per-level key lookups, no row-value scans
