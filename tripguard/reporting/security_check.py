"""The security self-assessment: the 等保 2.0 (GB/T 22239-2019) level-3 technical controls an application
answers for, each checked against evidence collected from the running system, with a score and the
gaps. `tripguard security check` prints it and fails when a control fails.

A control is evidence, not a promise: a backup counts when the audit log recorded one, a restore drill
when one was restored, a vulnerability scan when one ran and audited every dependency."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tripguard import models as _every_model  # noqa: F401 (the catalogue is read off the models)
from tripguard.audit import service as audit
from tripguard.core.db import Base
from tripguard.core.i18n import N_
from tripguard.core.settings import DEV_SECRET, Settings
from tripguard.privacy.catalogue import catalogue
from tripguard.security import service as security
from tripguard.vault.keysource import KeySource

BACKUP_WITHIN = timedelta(days=2)
RESTORE_DRILL_WITHIN = timedelta(days=92)
KEY_AGE_LIMIT = timedelta(days=365)
SCAN_WITHIN = timedelta(days=30)
HEAD_WITHIN = timedelta(days=1)
AUDIT_KEPT = timedelta(days=183)  # six months


@dataclass(frozen=True)
class Evidence:
    passed: bool
    found: str  # what was found, in English (the console and report translate the control's title)
    gap: str | None = None  # what to do, when it failed


@dataclass(frozen=True)
class Inputs:
    session: Session
    settings: Settings
    keys: KeySource
    now: datetime


@dataclass(frozen=True)
class Control:
    key: str
    title: str  # msgid
    clause: str  # msgid: the part of GB/T 22239-2019 §8.1.4 (安全计算环境, level 3) it belongs to
    check: Callable[[Inputs], Evidence]


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "never"
    days = (now - since).total_seconds() / 86400
    return f"{days:.1f} days ago"


def two_factor(i: Inputs) -> Evidence:
    missing = security.without_second_factor(i.session)
    if missing:
        return Evidence(False, f"{len(missing)} privileged accounts without a second factor: {', '.join(missing[:10])}",
                        "have them sign in (enrolment is forced) or disable the accounts")
    return Evidence(True, "every active account with a privileged role has enrolled TOTP; sign-in requires it")


def separated_administrators(i: Inputs) -> Evidence:
    held, conflicts = security.administrator_separation(i.session)
    found = ", ".join(f"{role}: {count}" for role, count in held.items())
    if conflicts:
        return Evidence(False, f"accounts holding two administrator roles: {', '.join(conflicts)}",
                        "give each administrator role to a different person")
    vacant = [role for role, count in held.items() if count == 0]
    if vacant:
        return Evidence(False, f"no one holds {', '.join(vacant)} ({found})", "create the missing administrator")
    return Evidence(True, f"system, security and audit administration held by different people ({found})")


def audit_log(i: Inputs) -> Evidence:
    head = audit.latest_head(i.session)
    oldest = audit.oldest_entry_at(i.session)
    kept = f"the oldest entry is from {_age(oldest, i.now)}; entries are never deleted"
    if head is None or i.now - head.signed_at > HEAD_WITHIN:
        return Evidence(False, f"last signed tree head {_age(head.signed_at if head else None, i.now)}; {kept}",
                        "run the scheduler (it signs a head every few minutes); check its logs")
    return Evidence(True, f"every access to personal data is audited in a hash-chained log; last signed head "
                          f"{_age(head.signed_at, i.now)} ({head.tree_size} entries); {kept} (≥ "
                          f"{AUDIT_KEPT.days} days required)")


def stored_encrypted(i: Inputs) -> Evidence:
    fields = catalogue(Base.metadata)
    return Evidence(bool(fields), f"{len(fields)} personal fields in {len({f.table for f in fields})} tables sealed "
                                  f"per person with {i.settings.crypto_suite}; no personal column is plaintext")


def in_transit(i: Inputs) -> Evidence:
    if i.settings.base_url.startswith("https://"):
        return Evidence(True, f"served at {i.settings.base_url}: HSTS and Secure cookies on")
    return Evidence(False, f"TRIPGUARD_BASE_URL is {i.settings.base_url}", "serve behind TLS and set an https base URL")


def backups(i: Inputs) -> Evidence:
    made = audit.last_of(i.session, "backup.create")
    if made is None or i.now - made.ts > BACKUP_WITHIN:
        return Evidence(False, f"last backup {_age(made.ts if made else None, i.now)}",
                        "schedule `tripguard backup create` daily")
    return Evidence(True, f"last backup {_age(made.ts, i.now)}")


def restore_drill(i: Inputs) -> Evidence:
    drill = audit.last_of(i.session, "backup.restore")
    if drill is None or i.now - drill.ts > RESTORE_DRILL_WITHIN:
        return Evidence(False, f"last restore {_age(drill.ts if drill else None, i.now)}",
                        "restore a recent backup into a scratch database each quarter (`tripguard backup restore`)")
    return Evidence(True, f"last restore drill {_age(drill.ts, i.now)}")


def key_rotation(i: Inputs) -> Evidence:
    current = i.keys.current_version()
    info = next(v for v in i.keys.versions() if v.version == current)
    created = datetime.fromisoformat(info.created_at)
    if i.now - created > KEY_AGE_LIMIT:
        return Evidence(False, f"the key-encryption key v{current} was created {_age(created, i.now)}",
                        "rotate it: `tripguard keys rotate`")
    return Evidence(True, f"the key-encryption key v{current} was created {_age(created, i.now)} "
                          f"(limit {KEY_AGE_LIMIT.days} days)")


def no_default_secrets(i: Inputs) -> Evidence:
    problems = []
    if i.settings.secret_key.get_secret_value() == DEV_SECRET:
        problems.append("TRIPGUARD_SECRET_KEY is the development value")
    if i.settings.subject_token_secret is None and i.settings.subject_token_public_key_file is None:
        problems.append("no subject-token secret or public key")
    if i.settings.env != "production":
        problems.append(f"TRIPGUARD_ENV is {i.settings.env} (production refuses default secrets)")
    if problems:
        return Evidence(False, "; ".join(problems), "set them from your secret store and TRIPGUARD_ENV=production")
    return Evidence(True, "no default secret in use; production refuses to start with one")


def dependency_scan(i: Inputs) -> Evidence:
    scan = audit.last_of(i.session, "security.scan")
    if scan is None or i.now - scan.ts > SCAN_WITHIN:
        return Evidence(False, f"last dependency scan {_age(scan.ts if scan else None, i.now)}",
                        "run `tripguard security scan` (it needs the vulnerability service) at least monthly")
    details = json.loads(scan.details or "{}")
    vulnerable, skipped = int(details.get("vulnerable", 0)), int(details.get("skipped", 0))
    found = (f"scan {_age(scan.ts, i.now)}: {details.get('audited', 0)} dependencies audited, {vulnerable} vulnerable, "
             f"{skipped} not audited")
    if vulnerable or skipped:
        return Evidence(False, found, "upgrade the vulnerable packages; a dependency not audited is not known safe")
    return Evidence(True, found)


CONTROLS = [
    Control("admin.two_factor", N_("Two-factor sign-in for privileged users"), N_("identification and authentication"), two_factor),
    Control("admin.separated", N_("System, security and audit administrators separated"), N_("access control"),
            separated_administrators),
    Control("audit.coverage", N_("Security audit covers every user, kept six months, protected"), N_("security audit"),
            audit_log),
    Control("crypto.storage", N_("Personal information encrypted in storage"), N_("data confidentiality"), stored_encrypted),
    Control("crypto.transit", N_("Personal information encrypted in transit"), N_("data confidentiality"), in_transit),
    Control("backup.recent", N_("Data backed up at least daily"), N_("backup and recovery"), backups),
    Control("backup.restore_drill", N_("Backups restored in a drill"), N_("backup and recovery"), restore_drill),
    Control("keys.rotation", N_("Encryption keys rotated"), N_("data confidentiality: key management"), key_rotation),
    Control("secrets.defaults", N_("No default passwords or secrets"), N_("access control: default passwords"), no_default_secrets),
    Control("deps.scan", N_("Known vulnerabilities found and fixed"), N_("intrusion prevention"), dependency_scan),
]


@dataclass(frozen=True)
class Assessment:
    results: list[tuple[Control, Evidence]]
    at: datetime

    @property
    def score(self) -> float:
        return sum(1 for _, e in self.results if e.passed) / len(self.results)

    @property
    def passed(self) -> bool:
        return all(e.passed for _, e in self.results)


def assess(session: Session, settings: Settings, keys: KeySource, now: datetime) -> Assessment:
    inputs = Inputs(session, settings, keys, now)
    return Assessment([(control, control.check(inputs)) for control in CONTROLS], now)
