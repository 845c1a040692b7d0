"""Migration 0037: live bindings left by past races are ended (a replaced courier's first, then all but the
newest), and existing emergency contacts get their slots in the order they were added."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import empty_database
from tripguard.core.migrations import upgrade

REVISION = "0040"



def test_racing_bindings_are_ended_and_contacts_numbered(tmp_path: Path) -> None:
    url = empty_database("tg_bindings_migration", tmp_path)
    upgrade(url, "0039")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO delivery_orders (id, customer_id, merchant_id, city, status, items, notice_version, "
                "locale, pickup_code, pickup_attempts, handover_attempts, created_at, updated_at, courier_id) "
                "VALUES ('O1', 'C1', 'M1', 'beijing', 'accepted', '[]', 'n1', 'zh_CN', '0000', 0, 0, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'R3')"))
            bindings = [("b1", "R1", "2026-03-01 08:00:00"), ("b2", "R3", "2026-03-01 08:01:00"),
                        ("b3", "R3", "2026-03-01 08:02:00"), ("b4", "R2", "2026-03-01 08:03:00")]
            for binding_id, courier, created in bindings:
                connection.execute(text(
                    "INSERT INTO delivery_bindings (id, order_id, number, party, courier_id, status, created_at) "
                    "VALUES (:id, 'O1', :id, 'customer', :courier, 'active', :created)"),
                    {"id": binding_id, "courier": courier, "created": created})
            for n, created in enumerate(["2026-03-01 08:00:02", "2026-03-01 08:00:01", "2026-03-01 08:00:03"]):
                connection.execute(text(
                    "INSERT INTO safety_contacts (id, subject_id, attempts, auto_share, created_at) "
                    "VALUES (:id, 'P1', 0, 'never', :created)"), {"id": f"c{n}", "created": created})
            connection.execute(text("INSERT INTO safety_contacts (id, subject_id, attempts, auto_share, created_at) "
                                    "VALUES ('d0', 'P2', 0, 'never', CURRENT_TIMESTAMP)"))
        upgrade(url, REVISION)
        with engine.connect() as connection:
            live = connection.execute(text("SELECT id FROM delivery_bindings WHERE expires_at IS NULL")).scalars().all()
            slots = dict(connection.execute(text("SELECT id, slot FROM safety_contacts")).all())
    finally:
        engine.dispose()
    assert live == ["b3"]  # the order's courier, newest binding; R1's and R2's lines (and b2) ended
    assert slots == {"c1": 1, "c0": 2, "c2": 3, "d0": 1}
