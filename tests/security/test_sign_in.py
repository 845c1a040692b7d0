"""Sign-in: argon2 passwords, TOTP enrolment and use, lockout, rate limit, sessions, audit."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import builders
from tests.conftest import make_settings
from tripguard.app import create_app
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.security.models import StaffAccount, StaffSession
from tripguard.security.permissions import Role


def audit_actions(db: Session) -> list[tuple[str, str]]:
    return [(e.action, e.outcome) for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_password_is_stored_as_argon2id(db: Session) -> None:
    account = builders.staff(db, "li.lei", Role.TRAINER)
    assert account.password_hash.startswith("$argon2id$")
    assert builders.PASSWORD not in account.password_hash


def test_role_without_second_factor_signs_in_with_password(client: TestClient, db: Session) -> None:
    builders.staff(db, "trainer.one", Role.TRAINER)
    response = client.post("/api/v1/auth/sign-in", json={"username": "trainer.one", "password": builders.PASSWORD})
    assert response.status_code == 200
    assert response.json()["status"] == "signed_in"
    cookie = response.headers["set-cookie"]
    assert "tg_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    who = client.get("/api/v1/auth/whoami")
    assert who.status_code == 200 and who.json()["roles"] == ["trainer"]
    assert ("auth.sign_in", "success") in audit_actions(db)


def test_privileged_role_must_enrol_then_use_totp(client: TestClient, db: Session) -> None:
    builders.staff(db, "auditor.one", Role.AUDIT_ADMIN)
    secret = builders.sign_in_with_enrolment(client, "auditor.one")
    assert client.get("/api/v1/auth/whoami").json()["roles"] == ["audit_admin"]
    client.cookies.clear()
    # Second sign-in: password alone is not enough.
    first = client.post("/api/v1/auth/sign-in", json={"username": "auditor.one", "password": builders.PASSWORD})
    assert first.json()["status"] == "totp_required"
    assert client.get("/api/v1/auth/whoami").status_code == 401
    # The code used at enrolment cannot be replayed; the next time step's code works.
    # Codes are derived from the stored step, not the wall clock, so a 30-second boundary
    # falling between enrolment and this line cannot turn the replay into a fresh code.
    totp = pyotp.TOTP(secret)
    used_step = db.scalars(select(StaffAccount.totp_last_step).where(StaffAccount.username == "auditor.one")).one()
    next_code = totp.generate_otp(used_step + 1)
    replay = client.post("/api/v1/auth/totp",
                         json={"ticket": first.json()["ticket"], "code": totp.generate_otp(used_step)})
    assert replay.status_code == 401
    ok = client.post("/api/v1/auth/totp", json={"ticket": first.json()["ticket"], "code": next_code})
    assert ok.status_code == 200 and ok.json()["status"] == "signed_in"
    actions = audit_actions(db)
    assert ("auth.totp_enrol", "success") in actions
    assert ("auth.sign_in", "failure") in actions


def test_wrong_password_is_401_problem_and_audited(client: TestClient, db: Session) -> None:
    builders.staff(db, "trainer.two", Role.TRAINER)
    response = client.post("/api/v1/auth/sign-in", json={"username": "trainer.two", "password": "nope"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/sign-in-failed"
    unknown = client.post("/api/v1/auth/sign-in", json={"username": "nobody", "password": "nope"})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == response.json()["detail"]  # no user enumeration
    assert audit_actions(db).count(("auth.sign_in", "failure")) == 2


def test_lockout_after_repeated_failures(client: TestClient, db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    account = builders.staff(db, "trainer.three", Role.TRAINER)
    for _ in range(settings.sign_in_max_failures):
        client.post("/api/v1/auth/sign-in", json={"username": "trainer.three", "password": "wrong"})
    db.refresh(account)
    assert account.locked_until is not None and account.locked_until > utcnow()
    # Even the right password is refused while locked.
    locked = client.post("/api/v1/auth/sign-in", json={"username": "trainer.three", "password": builders.PASSWORD})
    assert locked.status_code == 401


def test_rate_limit_per_address(database_url, tmp_path, session_factory) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(database_url, tmp_path, sign_in_rate_per_minute=3),
                     session_factory=session_factory)
    with TestClient(app) as client:
        codes = [client.post("/api/v1/auth/sign-in", json={"username": "x", "password": "y"}).status_code
                 for _ in range(4)]
    assert codes[:3] == [401, 401, 401]
    assert codes[3] == 429


def test_session_idle_timeout_and_sign_out(client: TestClient, db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    builders.staff(db, "trainer.four", Role.TRAINER)
    client.post("/api/v1/auth/sign-in", json={"username": "trainer.four", "password": builders.PASSWORD})
    assert client.get("/api/v1/auth/whoami").status_code == 200
    record = db.scalars(select(StaffSession)).one()
    record.last_seen_at = utcnow() - timedelta(minutes=settings.session_idle_minutes + 1)
    db.commit()
    assert client.get("/api/v1/auth/whoami").status_code == 401
    client.cookies.clear()
    client.post("/api/v1/auth/sign-in", json={"username": "trainer.four", "password": builders.PASSWORD})
    assert client.post("/api/v1/auth/sign-out").status_code == 204
    assert client.get("/api/v1/auth/whoami").status_code == 401


def test_session_absolute_timeout(client: TestClient, db: Session) -> None:
    builders.staff(db, "trainer.five", Role.TRAINER)
    client.post("/api/v1/auth/sign-in", json={"username": "trainer.five", "password": builders.PASSWORD})
    record = db.scalars(select(StaffSession)).one()
    record.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert client.get("/api/v1/auth/whoami").status_code == 401


def test_cross_origin_write_with_session_cookie_is_refused(client: TestClient, db: Session) -> None:
    builders.staff(db, "trainer.six", Role.TRAINER)
    client.post("/api/v1/auth/sign-in", json={"username": "trainer.six", "password": builders.PASSWORD})
    response = client.post("/api/v1/auth/sign-out", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 403
    assert client.get("/api/v1/auth/whoami").status_code == 200


def test_disabled_account_cannot_sign_in(client: TestClient, db: Session) -> None:
    account = builders.staff(db, "trainer.seven", Role.TRAINER)
    account.disabled_at = utcnow()
    db.commit()
    response = client.post("/api/v1/auth/sign-in", json={"username": "trainer.seven", "password": builders.PASSWORD})
    assert response.status_code == 401


@pytest.mark.parametrize("body", [{}, {"username": "a"}, {"username": "a", "password": 5}, []])
def test_bad_sign_in_body_names_the_field(client: TestClient, body: object) -> None:
    response = client.post("/api/v1/auth/sign-in", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422 and problem["errors"]
    assert all("field" in e and "message" in e for e in problem["errors"])


def test_staff_has_totp_secret_sealed(client: TestClient, db: Session) -> None:
    builders.staff(db, "auditor.two", Role.AUDIT_ADMIN)
    secret = builders.sign_in_with_enrolment(client, "auditor.two")
    account = db.scalars(select(StaffAccount).where(StaffAccount.username == "auditor.two")).one()
    db.refresh(account)
    assert account.totp_secret is not None and secret.encode() not in account.totp_secret


def test_failed_sign_in_never_stores_what_was_typed(client: TestClient, db: Session) -> None:
    typed = "my-password-typed-in-the-wrong-box"
    client.post("/api/v1/auth/sign-in", json={"username": typed, "password": "x"})
    entry = db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert entry.action == "auth.sign_in" and entry.outcome == "failure"
    assert typed not in entry.actor_id and entry.actor_id.startswith("h:")
    assert typed not in entry.details


def test_parallel_wrong_passwords_all_count_and_lock(cli_site) -> None:  # type: ignore[no-untyped-def]
    """24 parallel wrong guesses, each in its own transaction as requests would be: every one counts, so the
    account ends locked (a read-modify-write counter lost most of them on PostgreSQL)."""
    import threading

    from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
    from tripguard.security import service

    settings = cli_site.model_copy(update={"sign_in_max_failures": 20})
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        builders.staff(session, "trainer.race", Role.TRAINER)
    barrier = threading.Barrier(8)

    def guess(n: int) -> None:
        barrier.wait()
        for _ in range(n):
            with factory() as session:  # as the sign-in route does: the failure is committed, then answered
                try:
                    service.sign_in(session, settings=settings, username="trainer.race", password="wrong",
                                    totp_code=None)
                except service.SignInFailed:
                    session.commit()

    threads = [threading.Thread(target=guess, args=(3,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with factory() as session:
        account = session.scalar(select(StaffAccount).where(StaffAccount.username == "trainer.race"))
        assert account is not None
        assert account.locked_until is not None, f"24 failures left the counter at {account.failed_sign_ins}"
        failures = session.scalars(select(AuditEntry.details).where(AuditEntry.action == "auth.sign_in",
                                                                   AuditEntry.outcome == "failure")).all()
    assert sum("account locked" in str(d) for d in failures) == 1
    engine.dispose()


def test_forwarded_for_is_believed_only_from_trusted_proxies(database_url, tmp_path, session_factory) -> None:  # type: ignore[no-untyped-def]
    def codes(**overrides: object) -> list[int]:
        app = create_app(make_settings(database_url, tmp_path, sign_in_rate_per_minute=3, **overrides),
                         session_factory=session_factory)
        with TestClient(app) as client:  # the peer is "testclient"; a rotating header tries to look like many
            return [client.post("/api/v1/auth/sign-in", json={"username": "x", "password": "y"},
                                headers={"x-forwarded-for": f"198.51.100.{n}"}).status_code for n in range(4)]

    assert codes()[3] == 429  # nobody trusted: the header is ignored
    assert codes(trusted_proxies="203.0.113.0/24")[3] == 429  # the peer is not one of them: still ignored


def test_client_address_takes_the_right_most_untrusted_hop() -> None:
    import ipaddress

    from starlette.requests import Request

    from tripguard.security.rate_limit import client_address

    proxies = [ipaddress.ip_network("10.0.0.0/8")]

    def request(peer: str, forwarded: str | None) -> Request:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return Request({"type": "http", "client": (peer, 1), "headers": headers})

    assert client_address(request("10.0.0.2", "198.51.100.9, 192.0.2.4, 10.0.0.1"), proxies) == "192.0.2.4"
    assert client_address(request("192.0.2.8", "198.51.100.9"), proxies) == "192.0.2.8"  # untrusted peer
    # a hop that is no address counts apart (never as the proxy, which an allow-list may trust)
    assert client_address(request("10.0.0.2", "not-an-ip"), proxies) == "not-an-ip"
    assert client_address(request("10.0.0.2", None), []) == "10.0.0.2"


def test_a_totp_ticket_for_an_account_without_totp_is_refused(client: TestClient, db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    """Was a 500 (an assertion): a ticket minted for an account that has no second factor."""
    from tripguard.security import credentials

    account = builders.staff(db, "trainer.ticket", Role.TRAINER)
    ticket = credentials.issue_ticket(settings.secret_key.get_secret_value(), staff_id=account.id, purpose="totp")
    response = client.post("/api/v1/auth/totp", json={"ticket": ticket, "code": "123456"})
    assert response.status_code == 401
    assert client.post("/api/v1/auth/totp", json={"ticket": "not.a.ticket", "code": "123456"}).status_code == 401
