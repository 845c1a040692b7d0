"""`tripguard demo bootstrap` (development only; `make run` runs it at every start): a staff account for
every role a person holds, the operator backend's API key, app tokens, and the demo's people
(`sim.cast`). It adds only what is missing; the passwords and the key are kept in the credentials file
(0600), since a password or a key is only ever shown when it is made.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.db import engine_for, make_sessionmaker, unit_of_work
from tripguard.core.settings import Settings
from tripguard.delivery import service as delivery
from tripguard.screening import service as screening
from tripguard.security import service as security
from tripguard.security.models import ApiKey, StaffAccount
from tripguard.security.permissions import API_KEY_SCOPES, TOTP_REQUIRED_ROLES, Role
from tripguard.sim import cast
from tripguard.vault.keys import build_vault

# One account for every role a person holds in the console (the operator's backend has its API key, app users
# their tokens). `make run` prints them all; the README counts them.
ACCOUNTS: list[tuple[str, str, Role]] = [
    ("admin", "系统管理员 System Administrator", Role.SYSTEM_ADMIN),
    ("security", "安全管理员 Security Administrator", Role.SECURITY_ADMIN),
    ("auditor", "审计管理员 Audit Administrator", Role.AUDIT_ADMIN),
    ("agent", "安全专员 Safety Agent", Role.SAFETY_AGENT),
    ("investigator", "调查员 Investigator", Role.INVESTIGATOR),
    ("screener", "审查专员 Screening Officer", Role.SCREENING_OFFICER),
    ("dpo", "个人信息保护负责人 Privacy Officer", Role.PRIVACY_OFFICER),
    ("trainer", "培训专员 Trainer", Role.TRAINER),
    ("supervisor", "监督员 Supervisor", Role.SUPERVISOR),
    ("support", "客服专员 Support Agent", Role.SUPPORT_AGENT),
    ("hr", "人事专员 HR Officer", Role.HR_OFFICER),
    ("kitchen", "老街面馆后厨 Merchant's kitchen", Role.MERCHANT),
]
KITCHEN = "kitchen"  # linked to the demo merchant: sees its orders and prints their labels
API_KEY_NAME = "演示调度后台 demo backend"
TOKEN_MINUTES = 60


@dataclass(frozen=True)
class Account:
    username: str
    password: str | None  # None: made by an earlier run whose credentials file is gone
    role: Role

    @property
    def second_factor(self) -> bool:
        return self.role in TOTP_REQUIRED_ROLES


@dataclass
class Credentials:
    """What the credentials file keeps: `account <username> <password> <role>` and `api-key <key>` lines."""

    passwords: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None

    @classmethod
    def read(cls, path: Path) -> Credentials:
        found = cls()
        if not path.exists():
            return found
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "account":
                found.passwords[parts[1]] = parts[2]
            elif len(parts) == 3 and parts[2] in {role.value for role in Role}:  # an earlier release's lines
                found.passwords[parts[0]] = parts[1]
            elif len(parts) == 2 and parts[0] == "api-key":
                found.api_key = parts[1]
        return found

    def write(self, path: Path, accounts: list[Account]) -> None:
        lines = ["# TripGuard demo credentials (development only): keep this file to yourself."]
        lines += [f"account {a.username} {a.password} {a.role.value}" for a in accounts if a.password]
        if self.api_key:
            lines.append(f"api-key {self.api_key}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Demo:
    accounts: list[Account]
    api_key: str
    passenger_token: str
    courier_token: str


def ensure_accounts(session: Session, *, known: Credentials) -> list[Account]:
    """The demo accounts, each created once with a random password (kept in `known`)."""
    accounts = []
    for username, display_name, role in ACCOUNTS:
        if session.scalar(select(StaffAccount.id).where(StaffAccount.username == username)) is None:
            password = secrets.token_urlsafe(12)
            security.create_staff(session, actor=cast.ACTOR, username=username, display_name=display_name,
                                  password=password, roles={role})
            known.passwords[username] = password
        accounts.append(Account(username, known.passwords.get(username), role))
    kitchen = session.scalar(select(StaffAccount.id).where(StaffAccount.username == KITCHEN))
    if kitchen is not None:
        delivery.link_merchant_staff(session, actor=cast.ACTOR, merchant_id=cast.MERCHANT, staff_id=kitchen)
    return accounts


def ensure_api_key(session: Session, *, settings: Settings, known: Credentials) -> str:
    """The operator backend's key (every integration scope), made once; a new one if the file lost it."""
    if known.api_key and session.scalar(select(ApiKey.id).where(
            ApiKey.prefix == security.api_key_prefix(known.api_key), ApiKey.revoked_at.is_(None))):
        return known.api_key
    _, known.api_key = security.create_api_key(session, settings=settings, actor=cast.ACTOR, name=API_KEY_NAME,
                                               scopes=set(API_KEY_SCOPES))
    return known.api_key


def app_token(settings: Settings, *, role: str, sub: str, minutes: int = TOKEN_MINUTES) -> str:
    """An app token as the operator's backend mints it (the generated shared secret of development)."""
    if settings.subject_token_secret is None:
        raise RuntimeError("demo tokens need the shared subject-token secret of development")
    now = utcnow()
    minutes = min(minutes, settings.subject_token_max_ttl_seconds // 60)
    claims: dict[str, object] = {"sub": sub, "role": role, "aud": settings.subject_token_audience, "iat": now,
                                 "exp": now + timedelta(minutes=minutes)}
    if settings.subject_token_issuer:
        claims["iss"] = settings.subject_token_issuer
    return jwt.encode(claims, settings.subject_token_secret.get_secret_value(), algorithm="HS256")


def bootstrap(settings: Settings, *, credentials_file: Path, trips: int | None = None) -> Demo:
    """Everything the demo shows, added where missing (`trips`: the first Porto trips the city replays)."""
    engine = engine_for(settings)
    try:
        factory = make_sessionmaker(engine)
        known = Credentials.read(credentials_file)
        with unit_of_work(factory) as session:
            accounts = ensure_accounts(session, known=known)
            api_key = ensure_api_key(session, settings=settings, known=known)
        known.write(credentials_file, accounts)
        cast.cast(factory, vault=build_vault(settings), secret_key=settings.secret_key.get_secret_value(),
                  rules=screening.rules_from(settings), taxis=cast.fleet(trips))
    finally:
        engine.dispose()
    return Demo(accounts, api_key, app_token(settings, role="passenger", sub=cast.passenger(0).id),
                app_token(settings, role="courier", sub=cast.NEW_COURIER.id))
