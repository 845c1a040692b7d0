"""Emergency contacts: at most five, each confirmed by a code sent to the contact, shown masked."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tripguard.notify.service import dispatch_due
from tripguard.security.permissions import Role


def test_a_contact_is_confirmed_by_the_code_sent_to_them(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                         app: FastAPI) -> None:
    act_as(Role.PASSENGER, kind="subject", id="P1")
    added = client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).json()
    dispatch_due(lambda: db, app.state.vault, app.state.notifier)  # type: ignore[arg-type]
    sms = app.state.notifier.channels["sms"].sent[-1]
    assert sms.to == "13800005678"
    code = next(word for word in sms.body.replace("，", " ").split() if word.isdigit() and len(word) == 6)
    url = f"/api/v1/me/contacts/{added['id']}/verify"
    assert client.post(url, json={"code": "000000" if code != "000000" else "111111"}).status_code == 422
    assert client.post(url, json={"code": code}).json()["verified"] is True
    listed = client.get("/api/v1/me/contacts").json()
    assert listed == [{"id": added["id"], "name": "王*", "phone": "*******5678", "verified": True, "auto_share": "never"}]
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
    dispatch_due(lambda: db, app.state.vault, app.state.notifier)  # type: ignore[arg-type]
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
