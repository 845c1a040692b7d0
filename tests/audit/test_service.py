"""What an audit leaf commits to: every column but the stored hash, so no column can change unseen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
