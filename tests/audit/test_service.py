"""What an audit leaf commits to: every column but the stored hash, so no column can change unseen; and in
which bytes, so the format old logs were hashed in cannot drift."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tripguard.audit import merkle
from tripguard.audit.models import AuditEntry
from tripguard.audit.service import leaf_data

pytestmark = pytest.mark.no_database


def entry(**changes: object) -> AuditEntry:
    values: dict[str, object] = {
        "seq": 7, "ts": datetime(2026, 11, 2, 8, 30, tzinfo=UTC), "actor_type": "staff", "actor_id": "stf_1",
        "action": "personal.read", "target_type": "privacy_subjects", "target_id": "psg_1",
        "purpose": "safety", "outcome": "success", "request_id": "req_1", "details": '{"fields":"name"}',
    }
    values.update(changes)
    return AuditEntry(**values)


CHANGED: dict[str, object] = {
    "seq": 8, "ts": datetime(2026, 11, 2, 8, 30, tzinfo=UTC) + timedelta(microseconds=1), "actor_type": "system",
    "actor_id": "stf_2", "action": "personal.export", "target_type": "delivery_orders", "target_id": "psg_2",
    "purpose": "marketing", "outcome": "denied", "request_id": "req_2", "details": '{"fields":"phone"}',
}


@pytest.mark.parametrize("column", list(CHANGED))
def test_changing_any_column_changes_the_leaf(column: str) -> None:
    original, changed = entry(), entry(**{column: CHANGED[column]})
    assert leaf_data(changed) != leaf_data(original), column
    assert merkle.leaf_hash(leaf_data(changed)) != merkle.leaf_hash(leaf_data(original)), column


@pytest.mark.parametrize("column", ["purpose", "target_type", "target_id", "request_id"])
def test_a_column_emptied_changes_the_leaf(column: str) -> None:
    assert leaf_data(entry(**{column: None})) != leaf_data(entry()), column


def test_every_column_but_the_stored_hash_and_row_id_is_covered() -> None:
    columns = {c.name for c in AuditEntry.__table__.columns} - {"id", "leaf_hash"}
    assert set(CHANGED) == columns  # a new column gets a case above, and a place in the leaf


# A known answer: the leaf's bytes as they were signed, written out by hand, not by the code under test. Old
# logs were hashed in this format; a key renamed, dropped or added, another order, other separators, escaped
# Chinese or a local time would each change it (and every stored leaf hash would stop verifying).
KNOWN = entry(ts=datetime(2026, 11, 2, 16, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
              details='{"fields":"name","reason":"顾客来电"}')
# Keys sorted, no spaces, Chinese as UTF-8 (not \\u escapes), details a JSON string in it, ts in UTC to the µs.
KNOWN_LEAF = (
    '{"action":"personal.read","actor_id":"stf_1","actor_type":"staff",'
    '"details":"{\\"fields\\":\\"name\\",\\"reason\\":\\"顾客来电\\"}",'
    '"outcome":"success","purpose":"safety","request_id":"req_1","seq":7,'
    '"target_id":"psg_1","target_type":"privacy_subjects","ts":"2026-11-02T08:30:00.123456Z"}'
).encode()
KNOWN_LEAF_HASH = "4cdb5f78f61f123baf531f169fea9bb2a321644b16a73074d7175b6479d46c69"  # SHA-256(0x00 || leaf)


@pytest.mark.parametrize("zone", ["UTC0", "CST-8", "EST+5"])  # POSIX TZ strings: no tz database needed
def test_a_fixed_entry_has_the_known_leaf_whatever_the_servers_zone(zone: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        data = leaf_data(KNOWN)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert data == KNOWN_LEAF
    assert b'"purpose":"safety"' in data and b'"outcome":"success"' in data  # the two the review found unpinned
    assert merkle.leaf_hash(data).hex() == KNOWN_LEAF_HASH
