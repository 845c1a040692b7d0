"""Subject tokens minted by the operator: HS256 or a public key; short-lived; role claim required."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import SUBJECT_SECRET, make_settings
from tripguard.app import create_app
from tripguard.core.clock import utcnow


def token(secret: str | bytes = SUBJECT_SECRET, *, algorithm: str = "HS256", lifetime: int = 600,
          **claims: object) -> str:
    now = utcnow()
    body: dict[str, object] = {"sub": "psg_0001", "role": "passenger", "aud": "tripguard", "iat": now,
                               "exp": now + timedelta(seconds=lifetime)}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm=algorithm)


def whoami(client: TestClient, bearer: str) -> int:
    return client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {bearer}"}).status_code


def test_valid_token_names_the_subject(client: TestClient) -> None:
    response = client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 200
    assert response.json() | {"permissions": []} == {"kind": "subject", "id": "psg_0001", "name": "psg_0001",
                                                      "roles": ["passenger"], "permissions": []}


BAD_TOKENS = {
    "expired": lambda: token(lifetime=-120),
    "lives-too-long": lambda: token(lifetime=6 * 3600),
    "no-role": lambda: token(role=None),
    "staff-role": lambda: token(role="safety_agent"),
    "wrong-audience": lambda: token(aud="someone-else"),
    "wrong-secret": lambda: token(secret="not-the-shared-secret-0123456789abcdef"),
    "no-expiry": lambda: token(exp=None),
    "exp-as-string": lambda: token(exp="9999999999"),
    "role-as-list": lambda: token(role=["passenger"]),
    "role-as-object": lambda: token(role={"passenger": 1}),
    "nul-in-sub": lambda: token(sub="psg\u00000001"),
    "sub-as-number": lambda: token(sub=12345),
    "sub-with-newline": lambda: token(sub="psg_0001\n"),
    "alg-none": lambda: jwt.encode({"sub": "psg_0001", "role": "passenger", "aud": "tripguard"},
                                   key="", algorithm="none"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused(client: TestClient, case: str) -> None:
    assert whoami(client, BAD_TOKENS[case]()) == 401


def test_operator_public_key(tmp_path: Path, database_url: str, session_factory: sessionmaker[Session]) -> None:
    private = Ed25519PrivateKey.generate()
    public_file = tmp_path / "operator.pub"
    public_file.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    settings = make_settings(database_url, tmp_path / "keys", subject_token_public_key_file=public_file,
                             subject_token_secret=None)
    with TestClient(create_app(settings, session_factory=session_factory)) as client:
        assert whoami(client, token(private, algorithm="EdDSA", role="courier")) == 200
        # An HS256 token signed with the public key's bytes (algorithm confusion) is refused.
        assert whoami(client, forged_hs256(public_file.read_bytes())) == 401


def forged_hs256(key: bytes) -> str:
    """What PyJWT will not mint: HS256 keyed with a public key, built by hand."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    exp = int((utcnow() + timedelta(minutes=5)).timestamp())
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + b64(
        json.dumps({"sub": "psg_0001", "role": "courier", "aud": "tripguard", "exp": exp}).encode())
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


def test_a_token_role_must_match_the_recorded_kind(client: TestClient, db: Session, app) -> None:  # type: ignore[no-untyped-def]
    """A courier token carrying passenger P1's id reads nothing of P1's (SOS still goes through)."""
    from tests.builders import TEST_ACTOR
    from tripguard.privacy import service

    service.publish_notice(db, actor=TEST_ACTOR, version="n1", purposes=["emergency"], categories=["user.name"],
                           retention_zh="两年", retention_en="two years", text_zh="说明", text_en="notice")
    service.upsert_subject(db, vault=app.state.vault, actor=TEST_ACTOR, subject_id="psg_0001", kind="passenger",
                           notice_version="n1", values={"name": "王小明"})
    db.commit()
    as_courier = {"Authorization": f"Bearer {token(role='courier')}"}
    as_passenger = {"Authorization": f"Bearer {token(role='passenger')}"}
    for path in ("/api/v1/me/contacts", "/api/v1/me/complaints"):
        assert client.get(path, headers=as_courier).status_code == 403, path
        assert client.get(path, headers=as_passenger).status_code == 200, path
    assert client.post("/api/v1/sos", json={}, headers=as_courier).status_code == 201
