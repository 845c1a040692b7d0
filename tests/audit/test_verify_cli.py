"""`tripguard audit verify` on a real, committed database: untouched it passes; any change fails and names it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from tests.conftest import BACKEND
from tripguard.audit import merkle
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.audit.service import Actor, leaf_data
from tripguard.audit.signing import load_signing_key
from tripguard.cli import app as cli
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings

ENTRIES = 8


@pytest.fixture
def log_db(cli_site: Settings) -> Iterator[Engine]:
    """A committed database holding 8 entries and a signed head at size 5, and the CLI pointed at it."""
    engine = make_engine(cli_site.database_url)
    key = load_signing_key(cli_site)
    with make_sessionmaker(engine)() as session:
        for i in range(ENTRIES):
            audit.record(session, actor=Actor("staff", f"stf_{i}"), action="test.action",
                         target_type="thing", target_id=str(i), details={"n": i})
            if i == 4:
                audit.sign_new_head(session, key=key)  # sequences entries 0-4 and signs them
        audit.sequence_all(session)
        session.commit()
    yield engine
    engine.dispose()


def tamper(engine: Engine, *statements: str) -> None:
    """Run SQL as someone with database access who first removes the append-only triggers."""
    with engine.begin() as connection:
        if BACKEND == "postgres":
            connection.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            connection.execute(text("ALTER TABLE audit_tree_heads DISABLE TRIGGER USER"))
        else:
            for table in ("audit_entries", "audit_tree_heads"):
                for event in ("update", "delete"):
                    connection.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{event}"))
        for statement in statements:
            connection.execute(text(statement))


def run_verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify", *args])
    return result.exit_code, result.output


def test_untouched_log_verifies(log_db: Engine) -> None:
    code, output = run_verify()
    assert code == 0, output
    assert f"OK: {ENTRIES} entries" in output and "1 signed tree heads match" in output


def test_changed_row_is_named(log_db: Engine) -> None:
    tamper(log_db, "UPDATE audit_entries SET action = 'test.harmless' WHERE seq = 3")
    code, output = run_verify()
    assert code == 1
    assert "entry 3 was changed" in output and "first bad entry: 3" in output


@pytest.mark.parametrize("change", ["purpose = 'marketing'", "outcome = 'denied'", "target_id = '99'",
                                    "details = '{}'"])
def test_a_changed_purpose_outcome_or_detail_is_named(log_db: Engine, change: str) -> None:
    """Every column is in the leaf: a changed purpose or outcome is as visible as a changed action."""
    tamper(log_db, f"UPDATE audit_entries SET {change} WHERE seq = 6")  # noqa: S608 - the test's own literals
    code, output = run_verify()
    assert code == 1, output
    assert "entry 6 was changed" in output


def test_deleted_row_is_named(log_db: Engine) -> None:
    tamper(log_db, "DELETE FROM audit_entries WHERE seq = 6")
    code, output = run_verify()
    assert code == 1
    assert "entry 6 is missing" in output


def test_deleted_tail_is_caught_by_the_signed_head(log_db: Engine) -> None:
    tamper(log_db, "DELETE FROM audit_entries WHERE seq >= 2")
    code, output = run_verify()
    assert code == 1
    assert "entries from 2 on were deleted" in output


def test_reordered_rows_are_named(log_db: Engine) -> None:
    tamper(
        log_db,
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = 1000",
    )
    code, output = run_verify()
    assert code == 1
    assert "first bad entry: 2" in output


def _rewrite_hashes(engine: Engine) -> None:
    """What a careful attacker does after editing rows: recompute every stored leaf hash."""
    with make_sessionmaker(engine)() as session:
        updates = []
        for entry in session.query(AuditEntry).where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq):
            updates.append((entry.seq, merkle.leaf_hash(leaf_data(entry)).hex()))
    statements = [
        f"UPDATE audit_entries SET leaf_hash = {_hex_literal(h)} WHERE seq = {seq}" for seq, h in updates  # noqa: S608
    ]
    tamper(engine, *statements)


def _hex_literal(value: str) -> str:
    return f"'\\x{value}'::bytea" if BACKEND == "postgres" else f"X'{value}'"


def test_inserted_row_with_rewritten_hashes_is_caught_by_the_signed_head(log_db: Engine) -> None:
    shift = [f"UPDATE audit_entries SET seq = seq + 1 WHERE seq = {seq}" for seq in range(ENTRIES - 1, 1, -1)]  # noqa: S608
    insert = (
        "INSERT INTO audit_entries (id, seq, ts, actor_type, actor_id, action, outcome, details, leaf_hash) "
        "SELECT 1000, 2, ts, 'staff', 'stf_forged', 'test.forged', 'success', '{}', leaf_hash "
        "FROM audit_entries WHERE seq = 1"
    )
    tamper(log_db, *shift, insert)
    _rewrite_hashes(log_db)
    code, output = run_verify()
    assert code == 1
    assert "tree head of size 5 (database) no longer matches" in output


def test_supervisor_heads_catch_a_rewritten_log_and_deleted_heads(log_db: Engine, tmp_path: Path) -> None:
    exported = CliRunner().invoke(cli, ["audit", "head", "--sign"])
    assert exported.exit_code == 0, exported.output
    head = json.loads(exported.output)
    assert head["tree_size"] == ENTRIES
    kept = tmp_path / "kept-heads.jsonl"
    kept.write_text(exported.output)
    # Rewrite history: change an entry, recompute all hashes, drop every head kept in the database.
    tamper(log_db, "UPDATE audit_entries SET target_id = '99' WHERE seq = 6", "DELETE FROM audit_tree_heads")
    _rewrite_hashes(log_db)
    assert run_verify()[0] == 0  # the database alone can no longer tell
    code, output = run_verify("--heads", str(kept))
    assert code == 1
    assert f"tree head of size {ENTRIES} ({kept}) no longer matches" in output


def test_concurrent_writers_get_contiguous_indices(log_db: Engine) -> None:
    """Writers take no lock; the sequencer still yields 0..n-1 with nothing lost or doubled."""
    import threading

    factory = make_sessionmaker(log_db)

    def write(worker: int) -> None:
        for i in range(25):
            with factory() as session:
                audit.record(session, actor=Actor("staff", f"stf_w{worker}"), action="test.concurrent",
                             target_id=str(i))
                session.commit()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with factory() as session:
        audit.sequence_all(session)
        session.commit()
        seqs = sorted(s for s in session.scalars(select(AuditEntry.seq)))
    assert seqs == list(range(ENTRIES + 100))
    code, output = run_verify()
    assert code == 0 and f"OK: {ENTRIES + 100} entries" in output


def test_database_refuses_updates_and_deletes(log_db: Engine) -> None:
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="append-only"), log_db.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET action = 'x' WHERE seq = 0"))
    with pytest.raises(DBAPIError, match="append-only"), log_db.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 0"))


def test_prove_prints_verifiable_proofs(log_db: Engine) -> None:
    inclusion = json.loads(CliRunner().invoke(cli, ["audit", "prove", "--index", "3"]).output)
    assert merkle.verify_inclusion(3, inclusion["tree_size"], bytes.fromhex(inclusion["leaf_hash"]),
                                   [bytes.fromhex(p) for p in inclusion["path"]],
                                   bytes.fromhex(inclusion["root_hash"]))
    consistency = json.loads(CliRunner().invoke(cli, ["audit", "prove", "--first", "5"]).output)
    assert merkle.verify_consistency(5, ENTRIES, bytes.fromhex(consistency["first_root"]),
                                     bytes.fromhex(consistency["second_root"]),
                                     [bytes.fromhex(p) for p in consistency["path"]])
