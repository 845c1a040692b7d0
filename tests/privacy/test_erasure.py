"""Re-applying an erasure is the same function as erasing: a restore of a backup made before an erasure
leaves the person exactly as the live erasure did, table by table, and their old share link answers as a
revoked one does."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Select, select

from tests.builders import TEST_ACTOR
from tests.conftest import sign_agreement
from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tests.vault.test_backup import cli_ok, restore_into_fresh
from tripguard.app import create_app
from tripguard.core.clock import utcnow
from tripguard.core.db import Base, make_engine, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.privacy import service as privacy
from tripguard.safety.models import EmergencyContact, TripShare
from tripguard.screening.models import Invitation
from tripguard.security.auth import resolve_principal
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal

PERSON, OTHER = "psg_gone", "psg_stays"
ActAs = Callable[..., None]


@contextmanager
def serving(settings: Settings) -> Iterator[tuple[FastAPI, TestClient, ActAs]]:
    """The real app on the site's committed database, every request from the principal last chosen."""
    app = create_app(settings)

    def act_as(*roles: Role, kind: str = "staff", id: str = "stf_TEST") -> None:
        principal = Principal.for_roles(kind, id, frozenset(roles), name="Test")  # type: ignore[arg-type]
        app.dependency_overrides[resolve_principal] = lambda: principal
        sign_agreement(app.state.sessionmaker, principal)

    try:
        with TestClient(app, base_url="http://testserver") as client:
            yield app, client, act_as
    finally:
        app.state.engine.dispose()
        app.state.emergency_engine.dispose()


def ok(response: Any, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201, 202)), response.text
    return response.json() if response.content else {}  # type: ignore[no-any-return]


def link_path(url: str) -> str:
    return "/s/" + url.rsplit("/s/", 1)[1]


def seed(app: FastAPI, client: TestClient, act_as: ActAs) -> dict[str, str]:
    """The person on a trip, with a share link, contacts (one verified, one waiting for its code), an open SOS
    case, an access request waiting for its code, an unused invitation and an order in flight; another person
    whose link was revoked. Returns the two links."""
    with unit_of_work(app.state.sessionmaker) as session:
        privacy.publish_notice(session, actor=TEST_ACTOR, version="n1", purposes=["emergency"],
                               categories=["user.name"], retention_zh="两年", retention_en="two years",
                               text_zh="说明", text_en="notice")
        privacy.publish_notice(session, actor=TEST_ACTOR, version="scr-n1", purposes=["screening"],
                               categories=["user.criminal_history", "user.financial.credit"], retention_zh="三年",
                               retention_en="three years", text_zh="背景审查告知", text_en="screening notice")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for person, name in ((PERSON, "王小明"), (OTHER, "李雷")):
        ok(client.put(f"/api/v1/subjects/{person}", json={"kind": "passenger", "name": name, "phone": "13800001234",
                                                          "notice_version": "n1"}))
    ok(client.put("/api/v1/telematics/vehicles/V1", json={"plate": "粤B12345", "colour": "white", "model": "BYD Qin"}))
    for trip, person in (("T1", PERSON), ("T2", OTHER)):
        events = trip_with_deviation(trip)[:5]
        events[0]["passenger_id"], events[0]["driver_id"] = person, "D1"
        ok(post(client, ndjson(events)))
    ok(client.post("/api/v1/invitations", json={"worker_id": PERSON, "role": "driver",
                                                           "notice_version": "scr-n1"}), 201)
    ok(client.post("/api/v1/orders", json={
        "id": "O1", "customer_id": PERSON, "merchant_id": "M1", "city": "beijing", "notice_version": "n1",
        "customer": {"name": "王小明", "phone": "13800001234"}, "address": "北京市朝阳区建国路88号",
        "items": [{"name": "米饭", "quantity": 1}]}))
    act_as(Role.PASSENGER, kind="subject", id=OTHER)
    revoked = ok(client.post("/api/v1/trips/T2/shares"))
    ok(client.delete(f"/api/v1/trips/T2/shares/{revoked['id']}"), 204)
    act_as(Role.PASSENGER, kind="subject", id=PERSON)
    shared = ok(client.post("/api/v1/trips/T1/shares"))
    verified = ok(client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678",
                                                           "auto_share": "always"}))
    ok(client.post("/api/v1/me/contacts", json={"name": "张伟", "phone": "13800009999"}))
    with unit_of_work(app.state.sessionmaker) as session:
        contact = session.get(EmergencyContact, verified["id"])
        assert contact is not None
        contact.verified_at = contact.created_at
    ok(client.post("/api/v1/sos", json={"lon": 116.4, "lat": 39.9}))
    ok(client.post("/api/v1/me/requests", json={"kind": "access"}, headers={"Idempotency-Key": "idem-erasure-1"}))
    assert client.get(link_path(shared["url"])).status_code == 200
    return {"erased": link_path(shared["url"]), "revoked": link_path(revoked["url"])}


def stored(settings: Settings, statement: Select[Any]) -> list[Any]:
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return list(session.scalars(statement))
    finally:
        engine.dispose()


def erase(client: TestClient, act_as: ActAs) -> None:
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    ok(client.post(f"/api/v1/subjects/{PERSON}/erase", json={"reason": "subject_request"}))


# -- the person's footprint, built from the metadata ------------------------------------------------------
NOT_COMPARED = {"audit_entries", "audit_tree_heads", "audit_tree_nodes"}  # append-only: a restore adds to it
WHO_ERASED = {"privacy_deletion_records": {"actor"}}  # the privacy officer live, the journal on restore


def _mentions(value: object, ids: set[str]) -> bool:
    if isinstance(value, str):
        return value in ids or any(value.endswith(f":{i}") for i in ids)  # "subject:<id>", "incident:<id>"
    if isinstance(value, dict):
        return any(_mentions(v, ids) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, ids) for v in value)
    return False


def _shown(value: object) -> object:
    if isinstance(value, datetime):
        return "<time>"  # when differs between the paths; whether does not
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()[:16]
    return value


def footprint(database_url: str, person: str) -> dict[str, list[str]]:
    """Every row of every table (but the audit log) that names the person, or names a row that names them
    (their trips' chunks and keys, their case's timeline and key, their order's bindings), as it stands."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = {table.name: [dict(row._mapping) for row in connection.execute(select(table))]
                    for table in Base.metadata.sorted_tables if table.name not in NOT_COMPARED}
    finally:
        engine.dispose()
    keys = {table.name: [c.name for c in table.primary_key.columns] for table in Base.metadata.sorted_tables}
    direct = {name: [r for r in found if any(_mentions(v, {person}) for v in r.values())]
              for name, found in rows.items()}
    ids = {person} | {str(r[k]) for name, found in direct.items() for r in found for k in keys[name]}
    return {name: sorted(json.dumps({k: _shown(v) for k, v in r.items() if k not in WHO_ERASED.get(name, ())},
                                    sort_keys=True, default=str, ensure_ascii=False)
                         for r in found if any(_mentions(v, ids) for v in r.values()))
            for name, found in rows.items() if any(any(_mentions(v, ids) for v in r.values()) for r in found)}


@pytest.fixture
def erased_and_restored(cli_site: Settings, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Settings, dict[str, str]]:
    """A backup made before the erasure, the erasure on the live site, then the backup restored elsewhere."""
    with serving(cli_site) as (app, client, act_as):
        links = seed(app, client, act_as)
        cli_ok("backup", "create", str(tmp_path / "before.tgbk"))
        erase(client, act_as)
    restored, output = restore_into_fresh(cli_site, tmp_path / "r", tmp_path / "before.tgbk", monkeypatch)
    assert "1 erasures re-applied" in output
    return cli_site, restored, links


def test_a_restore_does_not_revive_an_erased_persons_share_link(erased_and_restored) -> None:  # type: ignore[no-untyped-def]
    live, restored, links = erased_and_restored
    for settings in (restored, live):
        with serving(settings) as (_, client, act_as):
            act_as()  # nobody signed in: whoever holds the link
            client.cookies.clear()
            for suffix in ("", "/position"):
                gone, revoked = client.get(links["erased"] + suffix), client.get(links["revoked"] + suffix)
                assert gone.status_code == revoked.status_code == 410, (settings.database_url, suffix, gone.text)
                if suffix:
                    assert gone.json()["type"] == revoked.json()["type"] == "/problems/share-gone"
            # A new trip of theirs is taken in and shared with nobody (their contacts, "always", went with them).
            act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
            started = trip_with_deviation("T3")[:1]
            started[0]["passenger_id"] = PERSON
            assert ok(post(client, ndjson(started)))["accepted"] == 1
            assert stored(settings, select(TripShare).where(TripShare.trip_id == "T3")) == []


def test_erasing_and_re_applying_leave_the_same_footprint(erased_and_restored) -> None:  # type: ignore[no-untyped-def]
    live, restored, _ = erased_and_restored
    after_erasure, after_restore = footprint(live.database_url, PERSON), footprint(restored.database_url, PERSON)
    assert {"privacy_subjects", "telematics_trips", "safety_trip_shares", "safety_incidents", "notify_outbox",
            "privacy_requests", "screening_invitations", "delivery_orders", "vault_data_keys",
            "privacy_deletion_records"} <= set(after_erasure)
    for table in sorted(set(after_erasure) | set(after_restore)):
        assert after_restore.get(table) == after_erasure.get(table), table
    # And what that footprint is: nothing left that opens, reaches or speaks for the person.
    shown = {table: [json.loads(row) for row in found] for table, found in after_erasure.items()}
    assert all(r["revoked_at"] for r in shown["safety_trip_shares"])
    assert "safety_contacts" not in shown  # deleted, with the code still waiting for one
    assert {r["status"] for r in shown["notify_outbox"] if r["subject_id"] == PERSON} == {"dead"}
    assert [(r["kind"], r["status"], r["code_hash"]) for r in shown["privacy_requests"]] == [
        ("access", "rejected", None)]
    [invitation] = stored(live, select(Invitation).where(Invitation.worker_id == PERSON))
    assert invitation.used_at is None and invitation.expires_at <= utcnow()  # the link says it has expired
    person = shown["privacy_subjects"][0]
    assert (person["name"], person["phone"], person["phone_index"], person["erased_at"]) == (
        None, None, None, "<time>")
    assert [r["position_key"].startswith("incident:") for r in shown["safety_incidents"]] == [True]
