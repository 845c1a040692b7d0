"""Subject tokens: JWTs the operator mints for its app users (passenger, customer, driver, courier).

HS256 with a shared secret, or EdDSA/RS256/ES256 with the operator's public key. ``sub`` names the
subject, ``role`` its role; ``exp`` is required and may not lie further ahead than the configured
maximum lifetime, so a leaked token is short-lived.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK
from jwt.utils import base64url_encode

from tripguard.core.clock import utcnow
from tripguard.core.errors import NotAuthenticated
from tripguard.core.identifiers import is_identifier
from tripguard.core.settings import Settings
from tripguard.security.permissions import SUBJECT_ROLES, Role

AllowedPublicKeys = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey

ASYMMETRIC_ALGORITHMS = ["EdDSA", "RS256", "ES256"]


@dataclass(frozen=True)
class SubjectClaims:
    subject_id: str
    role: Role


# Keys are prepared once: PyJWT otherwise re-parses (and re-checks the format of) the key on every token.
@lru_cache
def _public_key(path: Path) -> AllowedPublicKeys:
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, (RSAPublicKey, EllipticCurvePublicKey, Ed25519PublicKey, Ed448PublicKey)):
        raise TypeError(f"{path}: subject tokens are checked with an RSA, EC or EdDSA public key")
    return key


@lru_cache
def _shared_key(secret: str) -> PyJWK:
    return PyJWK({"kty": "oct", "k": base64url_encode(secret.encode()).decode()}, algorithm="HS256")


def verify_subject_token(token: str, settings: Settings) -> SubjectClaims:
    key: AllowedPublicKeys | PyJWK
    if settings.subject_token_public_key_file is not None:
        key = _public_key(settings.subject_token_public_key_file)
        algorithms = ASYMMETRIC_ALGORITHMS
    elif settings.subject_token_secret is not None:
        key = _shared_key(settings.subject_token_secret.get_secret_value())
        algorithms = ["HS256"]
    else:
        raise NotAuthenticated("subject tokens are not configured on this server")
    try:
        claims = jwt.decode(
            token, key, algorithms=algorithms, audience=settings.subject_token_audience,
            issuer=settings.subject_token_issuer,
            options={"require": ["exp", "sub", "aud"]}, leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(f"invalid subject token: {exc}") from exc
    expires = claims["exp"]
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) \
            or expires - utcnow().timestamp() > settings.subject_token_max_ttl_seconds + 30:
        raise NotAuthenticated("subject token lives longer than this server accepts")
    role = claims.get("role")
    if not isinstance(role, str) or role not in {r.value for r in SUBJECT_ROLES}:
        raise NotAuthenticated("subject token has no valid role claim")
    subject_id = claims["sub"]
    if not is_identifier(subject_id):
        raise NotAuthenticated("subject token's sub claim is not an id (1 to 64 of A-Z a-z 0-9 _ . : -)")
    return SubjectClaims(subject_id=subject_id, role=Role(role))
