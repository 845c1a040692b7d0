"""Emergency contacts: at most five, each confirmed by a code sent to the contact, shown masked."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx2 as httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import subject_token
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.core.db import unit_of_work
from tripguard.notify.service import dispatch_due
from tripguard.safety.models import EmergencyContact
from tripguard.security.permissions import Role


def test_a_contact_is_confirmed_by_the_code_sent_to_them(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                         app: FastAPI) -> None:
    act_as(Role.PASSENGER, kind="subject", id="P1")
    added = client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).json()
    dispatch_due(lambda: db, vault=app.state.vault, notifier=app.state.notifier)  # type: ignore[arg-type]
    sms = app.state.notifier.channels["sms"].sent[-1]
    assert sms.to == "13800005678"
    code = next(word for word in sms.body.replace("，", " ").split() if word.isdigit() and len(word) == 6)
    url = f"/api/v1/me/contacts/{added['id']}/verify"
    assert client.post(url, json={"code": "000000" if code != "000000" else "111111"}).status_code == 422
    assert client.post(url, json={"code": code}).json()["verified"] is True
    listed = client.get("/api/v1/me/contacts").json()
    assert listed == [{"id": added["id"], "name": "王*", "phone": "*******5678", "verified": True,
                       "auto_share": "never"}]
    act_as(Role.PASSENGER, kind="subject", id="P2")
    assert client.post(url, json={"code": code}).status_code == 404
    assert client.get("/api/v1/me/contacts").json() == []


def test_five_at_most_and_removal(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.DRIVER, kind="subject", id="D1")
    ids = [client.post("/api/v1/me/contacts", json={"name": f"联系人{n}", "phone": f"1380000{n:04d}"}).json()["id"]
           for n in range(5)]
    assert client.post("/api/v1/me/contacts", json={"name": "多余", "phone": "13800009999"}).status_code == 409
    assert client.delete(f"/api/v1/me/contacts/{ids[0]}").status_code == 204
    assert client.post("/api/v1/me/contacts", json={"name": "新", "phone": "13800009999"}).status_code == 201
    assert client.post("/api/v1/me/contacts", json={"name": "x", "phone": "call me"}).status_code == 422


def _code_sent(db: Session, app: FastAPI) -> str:
    dispatch_due(lambda: db, vault=app.state.vault, notifier=app.state.notifier)  # type: ignore[arg-type]
    sms = app.state.notifier.channels["sms"].sent[-1]
    return next(word for word in sms.body.replace("，", " ").split() if word.isdigit() and len(word) == 6)


def test_five_wrong_codes_and_even_the_right_one_is_refused(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                            app: FastAPI) -> None:
    """Each wrong try is committed on its own (the failing request's rollback used to undo it: 1,000 guesses
    all got 422, so anyone could verify a stranger's phone)."""
    act_as(Role.PASSENGER, kind="subject", id="P1")
    added = client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).json()
    code = _code_sent(db, app)
    url = f"/api/v1/me/contacts/{added['id']}/verify"
    wrong = "000000" if code != "000000" else "111111"
    answers = [client.post(url, json={"code": wrong}).status_code for _ in range(12)]
    assert answers == [422] * 5 + [409] * 7
    assert client.post(url, json={"code": code}).status_code == 409


def test_parallel_additions_keep_the_limit_of_five(tmp_path: Path) -> None:
    """Forty additions at once, each its own request and connection (PostgreSQL in its pass): five stored,
    the rest 409, none a 500; a removed contact frees its slot."""
    url = fresh_database("tg_contacts_race", tmp_path)
    settings = make_settings(url, tmp_path / "keys", admission_principal_requests=64, admission_running_requests=32,
                             admission_busy_requests=64, admission_bulk_requests=64)
    site = create_app(settings)
    answers: list[int] = []
    token = subject_token("P7", "passenger")
    headers = {"authorization": f"Bearer {token}"}
    with serve_in_thread(site) as base:
        barrier = threading.Barrier(40)

        def add(n: int) -> None:
            barrier.wait()
            response = httpx.post(f"{base}/api/v1/me/contacts", json={"name": f"联系人{n}", "phone": f"1380000{n:04d}"},
                                  headers=headers, timeout=60)
            answers.append(response.status_code)

        threads = [threading.Thread(target=add, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        listed = httpx.get(f"{base}/api/v1/me/contacts", headers=headers, timeout=30).json()
        assert len(listed) == 5 and answers.count(201) == 5, sorted(answers)
        assert set(answers) <= {201, 409}, sorted(answers)
        assert httpx.delete(f"{base}/api/v1/me/contacts/{listed[2]['id']}", headers=headers,
                            timeout=30).status_code == 204
        again = httpx.post(f"{base}/api/v1/me/contacts", json={"name": "新", "phone": "13800009999"}, headers=headers,
                           timeout=30)
        assert again.status_code == 201, again.text
    with unit_of_work(site.state.sessionmaker) as session:
        slots = sorted(session.scalars(select(EmergencyContact.slot).where(EmergencyContact.subject_id == "P7")))
    assert slots == [1, 2, 3, 4, 5]
    site.state.engine.dispose()
