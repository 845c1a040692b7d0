"""Explicit builders for test data (fictional people only)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.service import Actor
from tripguard.security import credentials, service
from tripguard.security.models import StaffAccount
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal

PASSWORD = "correct horse battery staple"
TEST_ACTOR = Actor("cli", "test")


def staff(db: Session, username: str = "wang.fang", *roles: Role, password: str = PASSWORD,
          signed: bool = True) -> StaffAccount:
    """A staff account; `signed`: it has signed the staff confidentiality agreement in force."""
    account = service.create_staff(db, actor=TEST_ACTOR, username=username, display_name="王芳",
                                   password=password, roles=set(roles))
    if signed:
        sign_as_staff(db, account)
    db.commit()
    return account


def sign_as_staff(db: Session, account: StaffAccount) -> StaffAccount:
    """The staff member signs the staff confidentiality agreement in force (they open no personal data
    before they do)."""
    from tripguard.workforce import agreements

    principal = Principal.for_roles("staff", account.id, frozenset())
    text, _ = agreements.in_force_for(db, principal=principal)
    agreements.sign(db, principal=principal, sha256=text.sha256, ip="127.0.0.1", user_agent="tests")
    return account


def sign_in_with_enrolment(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Full console-less sign-in for a privileged role: password, enrol TOTP, code. Returns the secret."""
    first = client.post("/api/v1/auth/sign-in", json={"username": username, "password": password})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "totp_enrolment_required"
    secret = credentials.totp_secret_from_uri(body["totp_uri"])
    second = client.post("/api/v1/auth/totp", json={"ticket": body["ticket"], "code": pyotp.TOTP(secret).now()})
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "signed_in"
    return secret


def subject_token(subject_id: str, role: str = "passenger", minutes: int = 10) -> str:
    """A token as the operator mints it for its app (HS256 with the test shared secret)."""
    import jwt

    from tests.conftest import SUBJECT_SECRET
    from tripguard.core.clock import utcnow

    now = utcnow()
    return jwt.encode({"sub": subject_id, "role": role, "aud": "tripguard", "iat": now,
                       "exp": now + timedelta(minutes=minutes)}, SUBJECT_SECRET, algorithm="HS256")


def cleared_worker(factory: sessionmaker[Session], worker_id: str, role: str = "courier") -> None:
    """A driver or courier the dispatch gate allows: screened clear (active, re-screening not yet due) and
    signed the workers' confidentiality agreement in force (no course is required unless a test puts one).
    Orders are given, and order data opened, only to such a worker. Nothing changes for one who exists."""
    from tests.conftest import sign_agreement
    from tripguard.core.clock import utcnow
    from tripguard.core.db import unit_of_work
    from tripguard.screening.models import Applicant

    with unit_of_work(factory) as session:
        if session.get(Applicant, worker_id) is None:
            now = utcnow()
            session.add(Applicant(id=worker_id, role=role, status="active", locale="zh_CN", notice_version="scr-test",
                                  consented_at=now, outcome="clear", cleared_at=now,
                                  rescreen_due_at=now + timedelta(days=365), created_at=now, updated_at=now))
    sign_agreement(factory, Principal.for_roles("subject", worker_id, frozenset({Role(role)})))


def picture(seed: int = 0, *, size: tuple[int, int] = (64, 48), kind: str = "PNG") -> bytes:
    """A small real picture (PNG or JPEG): different `seed`s are different pictures (different faces)."""
    import io

    from PIL import Image

    image = Image.new("RGB", size, ((seed * 67) % 256, (seed * 131) % 256, (seed * 29 + 90) % 256))
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


def picture_b64(seed: int = 0, **options: object) -> str:
    import base64

    return base64.b64encode(picture(seed, **options)).decode()  # type: ignore[arg-type]


def all_at_once(jobs: list[Callable[[], None]]) -> list[BaseException]:
    """Run each job on its own thread, all released together (a race); the exceptions they raised."""
    barrier, failures = threading.Barrier(len(jobs)), []

    def run(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def drain(app: object) -> list[object]:
    """What ingest took, applied now by the embedded monitor (the tests run it without its thread): the
    alerts newly stored. Ingest answers before the monitor runs, as a monitor worker's would."""
    return app.state.embedded_monitor.drain()  # type: ignore[attr-defined,no-any-return]
