"""People stored before every first write registered its person become data subjects (migration 0037)."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from tests.conftest import empty_database
from tripguard.core.migrations import alembic_config, upgrade

EVERYONE = "0041"
ROWS = (
    ("INSERT INTO privacy_subjects (id, kind, notice_version, name, created_at, updated_at) "
     "VALUES ('psg_recorded', 'passenger', 'n1', :blob, :now, :now)"),
    ("INSERT INTO screening_applicants (id, role, status, locale, notice_version, consented_at, created_at, "
     "updated_at) VALUES ('drv_1', 'driver', 'active', 'zh_CN', 'scr-1', :now, :now, :now)"),
    ("INSERT INTO delivery_orders (id, customer_id, merchant_id, courier_id, city, status, items, notice_version, "
     "locale, merchant_phone, pickup_code, pickup_attempts, handover_attempts, created_at, updated_at) VALUES "
     "('O1', 'cus_1', 'mer_1', 'cou_1', 'beijing', 'accepted', '[]', 'ord-1', 'zh_CN', :blob, '1234', 0, 0, "
     ":now, :now)"),
    ("INSERT INTO delivery_orders (id, customer_id, merchant_id, city, status, items, notice_version, locale, "
     "pickup_code, pickup_attempts, handover_attempts, created_at, updated_at) VALUES "
     "('O2', 'cus_1', 'mer_nophone', 'beijing', 'accepted', '[]', 'ord-2', 'zh_CN', '1234', 0, 0, :now, :now)"),
    ("INSERT INTO telematics_trips (id, status, crs, points, driver_id, passenger_id, updated_at) "
     "VALUES ('T1', 'ended', 'wgs84', 0, 'drv_1', 'psg_recorded', :now)"),
    ("INSERT INTO telematics_trips (id, status, crs, points, driver_id, passenger_id, updated_at) "
     "VALUES ('T2', 'ended', 'wgs84', 0, 'drv_trips', 'psg_trips', :now)"),
    ("INSERT INTO feedback_complaints (id, subject_id, subject_role, category, status, created_at) "
     "VALUES ('c1', 'cus_2', 'customer', 'service', 'received', :now)"),
)


def test_people_already_stored_become_data_subjects(tmp_path: Path) -> None:
    url = empty_database("tg_subjects_migration", tmp_path)
    before = ScriptDirectory.from_config(alembic_config(url)).get_revision(EVERYONE).down_revision
    upgrade(url, str(before))
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in ROWS:
                connection.execute(text(statement), {"now": "2026-12-01 08:00:00", "blob": b"\x00"})
        upgrade(url, EVERYONE)
        with engine.connect() as connection:
            found = {row[0]: (row[1], row[2], row[3]) for row in connection.execute(
                text("SELECT id, kind, notice_version, source FROM privacy_subjects"))}
    finally:
        engine.dispose()
    assert found == {
        "psg_recorded": ("passenger", "n1", None),  # recorded by the operator: untouched
        "drv_1": ("driver", "scr-1", "screening_applicants"),  # screening first: its role and notice
        "cus_1": ("customer", "ord-1", "delivery_orders"),  # one subject for many orders
        "mer_1": ("merchant", None, "delivery_orders"),  # a phone on an order (mer_nophone has none)
        "cou_1": ("courier", None, "delivery_orders"),
        "drv_trips": ("driver", None, "telematics_trips"),
        "psg_trips": ("passenger", None, "telematics_trips"),
        "cus_2": ("customer", None, "feedback_complaints"),
    }
