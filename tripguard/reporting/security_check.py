"""The security self-assessment: the 等保 2.0 (GB/T 22239-2019) level-3 technical controls an application
answers for, each checked against evidence collected from the running system, with a score and the
gaps. `tripguard security check` prints it and fails when a control fails.

A control is evidence, not a promise: a backup counts when the audit log recorded one, a restore drill
when one was restored, a vulnerability scan when one ran and audited every dependency."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ColumnElement, LargeBinary, and_, case, func, or_, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.signing import key_id, load_signing_key
from tripguard.audit.verify import check_latest_head
from tripguard.core.db import Base
from tripguard.core.i18n import N_
from tripguard.core.settings import DEV_SECRET, Settings, SettingsError
from tripguard.privacy.catalogue import Key, PersonalField, catalogue
from tripguard.security import service as security
from tripguard.telematics.store.trips import trip_key
from tripguard.vault import crypto
from tripguard.vault.journal import JournalError
from tripguard.vault.keys import journal_in
from tripguard.vault.keysource import KeySource
from tripguard.vault.models import DataKey
from tripguard.vault.service import Vault

BACKUP_WITHIN = timedelta(days=2)
RESTORE_DRILL_WITHIN = timedelta(days=92)
KEY_AGE_LIMIT = timedelta(days=365)
SCAN_WITHIN = timedelta(days=30)
HEAD_WITHIN = timedelta(days=1)
AUDIT_KEPT = timedelta(days=183)  # six months
JOURNAL_OVERRIDES = ("backup.restore.journal_override", "keys.journal.restart")
JOURNAL_OVERRIDE_FLAGGED = timedelta(days=92)  # the quarter's report shows it


@dataclass(frozen=True)
class Evidence:
    passed: bool
    found: str  # msgid: what was found, with %(name)s placeholders filled from `values`
    values: Mapping[str, object] = field(default_factory=dict)
    gap: str | None = None  # msgid: what to do, when it failed

    def text(self, translate: Callable[[str], str] = lambda message: message) -> str:
        found = translate(self.found) % self.values
        return f"{found} — {translate(self.gap)}" if self.gap else found


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


def _days(since: datetime | None, now: datetime) -> str:
    return "—" if since is None else f"{(now - since).total_seconds() / 86400:.1f}"


def two_factor(i: Inputs) -> Evidence:
    missing = security.without_second_factor(i.session)
    if missing:
        return Evidence(False, N_("%(count)s privileged accounts without a second factor: %(names)s"),
                        {"count": len(missing), "names": ", ".join(missing[:10])},
                        N_("have them sign in (enrolment is forced) or disable the accounts"))
    return Evidence(True, N_("every active account with a privileged role has enrolled TOTP; sign-in requires it"))


def separated_administrators(i: Inputs) -> Evidence:
    held, conflicts = security.administrator_separation(i.session)
    counts = ", ".join(f"{role}: {count}" for role, count in held.items())
    if conflicts:
        return Evidence(False, N_("accounts holding two administrator roles: %(names)s"),
                        {"names": ", ".join(conflicts)}, N_("give each administrator role to a different person"))
    vacant = [role for role, count in held.items() if count == 0]
    if vacant:
        return Evidence(False, N_("no one holds %(roles)s (%(counts)s)"),
                        {"roles": ", ".join(vacant), "counts": counts},
                        N_("create the missing administrator"))
    return Evidence(True, N_("system, security and audit administration held by different people (%(counts)s)"),
                    {"counts": counts})


def _install_began(i: Inputs, oldest: datetime | None) -> datetime | None:
    """When this install began: its first key-encryption key was made at `keys init`, before anything
    was stored; the oldest audit entry, if it is older (a key folder re-made)."""
    made = [datetime.fromisoformat(v.created_at) for v in i.keys.versions()]
    known = [*made, *([oldest] if oldest is not None else [])]
    return min(known) if known else None


def _signing_key(i: Inputs) -> Ed25519PublicKey | str:
    try:
        return load_signing_key(i.settings).public_key()
    except (SettingsError, OSError, ValueError) as exc:
        return str(exc)


def audit_log(i: Inputs) -> Evidence:
    """Signed lately by the audit key, whole against that head (every leaf from 0 to its size and past it,
    its root from the stored tree), and really six months deep: the oldest entry is at least AUDIT_KEPT
    old, or the install is younger and every entry since its first day is there. Each entry's own content
    is rehashed by `tripguard audit verify`, not here (it reads the whole log)."""
    head = audit.latest_head(i.session)
    if head is None or i.now - head.signed_at > HEAD_WITHIN:
        return Evidence(False, N_("no tree head signed in the last day (last: %(days)s days ago)"),
                        {"days": _days(head.signed_at if head else None, i.now)},
                        N_("run the scheduler (it signs a head every few minutes); check its logs"))
    public = _signing_key(i)
    if isinstance(public, str):
        return Evidence(False, N_("the audit signing key cannot be read (%(problem)s): no tree head can be verified"),
                        {"problem": public}, N_("put audit-signing.key back in the key folder, or set "
                                                 "TRIPGUARD_AUDIT_SIGNING_KEY"))
    checked = check_latest_head(i.session, head=head, public_key=public)
    oldest = audit.oldest_entry_at(i.session)
    values = {"days": _days(head.signed_at, i.now), "size": head.tree_size, "oldest": _days(oldest, i.now),
              "kept": AUDIT_KEPT.days, "key": key_id(public), "expected": checked.expected,
              "stored": checked.stored, "missing": checked.missing}
    if not checked.signature_ok:
        return Evidence(False, N_("the latest tree head (%(size)s entries, signed %(days)s days ago) does not verify "
                                  "with the audit key %(key)s: it is forged or signed by another key"), values,
                        N_("compare it with the heads supervisors kept (`tripguard audit verify --heads FILE`) "
                           "and find who wrote it"))
    if checked.missing:
        return Evidence(False, N_("%(missing)s of the %(expected)s entries the audit log must hold are gone (the "
                                  "latest signed head covers %(size)s, %(stored)s are stored); the oldest left is "
                                  "%(oldest)s days old (%(kept)s days required)"), values,
                        N_("restore the missing entries from a backup; entries are never deleted"))
    if not checked.root_ok:
        return Evidence(False, N_("the stored audit entries no longer match the root of the latest signed head "
                                  "(%(size)s entries): an entry was changed or replaced"), values,
                        N_("run `tripguard audit verify` to find the first bad entry and restore it from a backup"))
    began = _install_began(i, oldest)
    if oldest is not None and i.now - oldest >= AUDIT_KEPT:
        return Evidence(True, N_("every access to personal data is audited in a hash-chained log; the latest tree "
                                 "head, signed %(days)s days ago, its signature verifies with the audit key "
                                 "%(key)s, and its %(size)s entries are all stored and match its root; the oldest "
                                 "entry is %(oldest)s days old, covering the %(kept)s days required; entries are "
                                 "never deleted"), values)
    install_age = {**values, "install": _days(began, i.now)}
    if began is not None and i.now - began < AUDIT_KEPT:  # the log is whole from leaf 0: nothing was lost
        return Evidence(True, N_("every access to personal data is audited in a hash-chained log; the latest tree "
                                 "head, signed %(days)s days ago, its signature verifies with the audit key "
                                 "%(key)s, and its %(size)s entries are all stored and match its root; this "
                                 "install is %(install)s days old, younger than the %(kept)s days required, and "
                                 "its log is whole from its first day"), install_age)
    return Evidence(False, N_("the audit log does not cover %(kept)s days: its oldest entry is %(oldest)s days old, "
                              "but this install is %(install)s days old"), install_age,
                    N_("restore the older entries from a backup; entries must be kept six months"))


STORAGE_SAMPLE = 20  # values of each personal column, from each end of its table


def _is_plaintext(blob: bytes) -> bool:
    try:
        return blob.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False


def _sealed(blob: bytes) -> bool:
    """A value as the vault writes it: its format and suite bytes, a nonce and a tag, and not readable text."""
    try:
        crypto.suite_of(blob)
    except crypto.DecryptionFailed:
        return False
    return not _is_plaintext(blob)


def _key_name(spec: PersonalField, subject: str) -> str:
    """The vault subject whose key seals the value: a trip's data (its plan, positions, alerts) is sealed under
    the trip's own key, named from the trip's id; everything else (a monitor's checkpoint under its system key
    among them) under the id its subject column names."""
    return trip_key(subject) if spec.key is Key.TRIP else subject


def _sample(session: Session, field: PersonalField) -> list[tuple[str, bytes]]:
    table = Base.metadata.tables[field.table]
    column, subject = table.c[field.column], table.c[field.subject_column]
    key = list(table.primary_key.columns)
    values: dict[tuple[object, ...], tuple[str, bytes]] = {}
    for order in ([c.asc() for c in key], [c.desc() for c in key]):
        for row in session.execute(select(*key, subject, column).where(column.is_not(None)).order_by(*order)
                                   .limit(STORAGE_SAMPLE)):
            values[tuple(row[:len(key)])] = (str(row[-2]), bytes(row[-1]))
    return list(values.values())


def _not_vault_bytes(column: ColumnElement[bytes]) -> ColumnElement[bool]:
    """A stored value that is not the vault's: shorter than a nonce and a tag, or without its format and suite
    bytes (substr reads a BLOB's bytes on SQLite, a bytea's on PostgreSQL: the scan decrypts nothing)."""
    return and_(column.is_not(None),
                or_(func.length(column) < crypto.MIN_LENGTH, func.substr(column, 1, 2).not_in(crypto.HEADERS)))


def _unsealed_counts(session: Session, table: str, columns: list[str]) -> dict[str, tuple[int, int]]:
    """Every row of a table, one scan for all its catalogued columns: per column, the values stored and how
    many of them do not start as vault ciphertext."""
    t = Base.metadata.tables[table]
    counts = [expr for name in columns for expr in (
        func.count(t.c[name]), func.coalesce(func.sum(case((_not_vault_bytes(t.c[name]), 1), else_=0)), 0))]
    row = session.execute(select(*counts).select_from(t)).one()
    return {name: (int(row[2 * n]), int(row[2 * n + 1])) for n, name in enumerate(columns)}


def stored_encrypted(i: Inputs) -> Evidence:
    """Reads the header of every stored value of every catalogued personal column (one scan a table, in SQL):
    each must be vault ciphertext (format, suite, room for a nonce and a tag). On a sample (each table's
    first and last rows) it also checks each value is not readable text and is sealed under a key the vault
    holds for its subject (live or shredded). Nothing is decrypted."""
    fields = catalogue(Base.metadata)
    bad: list[str] = []
    sealed = [spec for spec in fields if isinstance(Base.metadata.tables[spec.table].c[spec.column].type, LargeBinary)]
    bad.extend(f"{spec.table}.{spec.column} (not a sealed column)" for spec in fields if spec not in sealed)
    by_table: dict[str, list[str]] = {}
    for spec in sealed:
        by_table.setdefault(spec.table, []).append(spec.column)
    counted = {(table, column): found for table, columns in by_table.items()
               for column, found in _unsealed_counts(i.session, table, columns).items()}
    sampled = 0
    for spec in sealed:
        stored, unsealed = counted[(spec.table, spec.column)]
        if unsealed:
            bad.append(f"{spec.table}.{spec.column} ({unsealed} of {stored} stored values are not vault ciphertext)")
            continue
        sample = _sample(i.session, spec)
        sampled += len(sample)
        subjects = {_key_name(spec, subject) for subject, _ in sample}
        keyed = set(i.session.scalars(select(DataKey.subject_id).where(DataKey.subject_id.in_(subjects)))) \
            if subjects else set()
        if any(not _sealed(blob) for _, blob in sample):
            bad.append(f"{spec.table}.{spec.column} (plaintext or not vault ciphertext)")
        elif subjects - keyed:
            bad.append(f"{spec.table}.{spec.column} (sealed under no key the vault holds)")
    values = {"fields": len(fields), "tables": len({f.table for f in fields}), "suite": i.settings.crypto_suite,
              "sampled": sampled, "scanned": sum(stored for stored, _ in counted.values())}
    if not fields:
        return Evidence(False, N_("no personal field is catalogued"), values,
                        N_("declare every personal column with personal_column()"))
    if bad:
        return Evidence(False, N_("of %(scanned)s stored personal values (every row read), some are not sealed by the "
                                  "vault: %(columns)s"),
                        {**values, "columns": ", ".join(bad[:10])},
                        N_("find how these values were written around the vault, seal them again and rotate what "
                           "was exposed"))
    return Evidence(True, N_("%(fields)s personal fields in %(tables)s tables sealed per person with %(suite)s: all "
                             "%(scanned)s stored values start as vault ciphertext (every row read), and the "
                             "%(sampled)s sampled from each table's ends are sealed under their subject's key"),
                    values)


def in_transit(i: Inputs) -> Evidence:
    if i.settings.base_url.startswith("https://"):
        return Evidence(True, N_("served at %(url)s: HSTS and Secure cookies on"), {"url": i.settings.base_url})
    return Evidence(False, N_("TRIPGUARD_BASE_URL is %(url)s"), {"url": i.settings.base_url},
                    N_("serve behind TLS and set an https base URL"))


def _done_lately(i: Inputs, actions: tuple[str, ...], within: timedelta, *, done: str, missing: str,
                 gap: str) -> Evidence:
    """Evidence that the audit log records one of `actions` within `within` (a backup, a restore drill)."""
    found = [entry for entry in (audit.last_of(i.session, action=action) for action in actions)
             if entry is not None]
    last = max(found, key=lambda entry: entry.ts, default=None)
    values = {"days": _days(last.ts if last else None, i.now)}
    if last is None or i.now - last.ts > within:
        return Evidence(False, missing, values, gap)
    return Evidence(True, done, values)


def backups(i: Inputs) -> Evidence:
    return _done_lately(i, ("backup.create",), BACKUP_WITHIN, done=N_("last backup %(days)s days ago"),
                        missing=N_("no backup in the last two days (last: %(days)s days ago)"),
                        gap=N_("schedule `tripguard backup create` daily"))


def restore_drill(i: Inputs) -> Evidence:
    # A drill is recorded in the live log (`backup drill` restores into a scratch database it then drops); a
    # real restore is recorded in the database it restored, which is then the live one.
    return _done_lately(i, ("backup.drill", "backup.restore"), RESTORE_DRILL_WITHIN,
                        done=N_("last restore drill %(days)s days ago"),
                        missing=N_("no restore drill this quarter (last: %(days)s days ago)"),
                        gap=N_("run `tripguard backup drill FILE` on a recent backup each quarter (it restores it "
                               "into a scratch database, counts it and drops it)"))


def key_rotation(i: Inputs) -> Evidence:
    current = i.keys.current_version()
    info = next(v for v in i.keys.versions() if v.version == current)
    values = {"version": current, "days": _days(datetime.fromisoformat(info.created_at), i.now),
              "limit": KEY_AGE_LIMIT.days}
    if i.now - datetime.fromisoformat(info.created_at) > KEY_AGE_LIMIT:
        return Evidence(False, N_("the key-encryption key v%(version)s is %(days)s days old (limit %(limit)s)"),
                        values, N_("rotate it: `tripguard keys rotate`"))
    return Evidence(True, N_("the key-encryption key v%(version)s is %(days)s days old (limit %(limit)s)"), values)


def no_default_secrets(i: Inputs) -> Evidence:
    problems = []
    if i.settings.secret_key.get_secret_value() == DEV_SECRET:
        problems.append("TRIPGUARD_SECRET_KEY")
    if i.settings.subject_token_secret is None and i.settings.subject_token_public_key_file is None:
        problems.append("TRIPGUARD_SUBJECT_TOKEN_SECRET")
    if i.settings.env != "production":
        problems.append(f"TRIPGUARD_ENV={i.settings.env}")
    if problems:
        return Evidence(False, N_("development values or missing secrets: %(names)s"), {"names": ", ".join(problems)},
                        N_("set them from your secret store and TRIPGUARD_ENV=production"))
    return Evidence(True, N_("no default secret in use; production refuses to start with one"))


def dependency_scan(i: Inputs) -> Evidence:
    scan = audit.last_of(i.session, action="security.scan")
    if scan is None or i.now - scan.ts > SCAN_WITHIN:
        return Evidence(False, N_("no dependency scan in the last 30 days (last: %(days)s days ago)"),
                        {"days": _days(scan.ts if scan else None, i.now)},
                        N_("run `tripguard security scan` (it needs the vulnerability service) at least monthly"))
    details = json.loads(scan.details or "{}")
    values = {"days": _days(scan.ts, i.now), "audited": details.get("audited", 0),
              "vulnerable": int(details.get("vulnerable", 0)), "skipped": int(details.get("skipped", 0))}
    found = N_("scan %(days)s days ago: %(audited)s dependencies audited, %(vulnerable)s vulnerable, %(skipped)s "
               "not audited")
    if values["vulnerable"] or values["skipped"]:
        return Evidence(False, found, values,
                        N_("upgrade the vulnerable packages; a dependency not audited is not known safe"))
    return Evidence(True, found, values)


def erasure_journal(i: Inputs) -> Evidence:
    """The journal that keeps erased people erased through restores: intact, and never overridden lately."""
    try:
        entries = journal_in(i.settings.key_dir, i.keys).entries()
    except JournalError as exc:
        return Evidence(False, N_("the erasure journal cannot be trusted: %(problem)s; erasures and restores are "
                                  "refused"), {"problem": str(exc)},
                        N_("put erasure-journal.jsonl and erasure-journal.head back from a copy of the key folder; "
                           "only if they are lost for good, `tripguard keys init --accept-journal-loss REASON`"))
    missing = Vault.shredded_not_journaled(i.session, {entry.subject_id for entry in entries})
    if missing:
        return Evidence(False, N_("the database holds keys shredded that the erasure journal does not name (e.g. "
                                  "%(subject)s): the journal was reset"), {"subject": missing[0]},
                        N_("put erasure-journal.jsonl and erasure-journal.head back from a copy of the key folder; "
                           "only if they are lost for good, `tripguard keys init --accept-journal-loss REASON`"))
    overrides = [entry for action in JOURNAL_OVERRIDES if (entry := audit.last_of(i.session, action=action)) is not None
                 and i.now - entry.ts <= JOURNAL_OVERRIDE_FLAGGED]
    if overrides:
        last = max(overrides, key=lambda entry: entry.ts)
        return Evidence(False, N_("%(action)s %(days)s days ago, without a complete erasure journal: %(reason)s"),
                        {"action": last.action, "days": _days(last.ts, i.now),
                         "reason": json.loads(last.details or "{}").get("reason", "")},
                        N_("people erased before it may be readable again: erase them again from the records of "
                           "requests; this control fails for 92 days after it"))
    return Evidence(True, N_("the erasure journal holds %(count)s erasures and verifies end to end; no restore went "
                             "on without it in the last %(limit)s days"),
                    {"count": len(entries), "limit": JOURNAL_OVERRIDE_FLAGGED.days})


CONTROLS = [
    Control("admin.two_factor", N_("Two-factor sign-in for privileged users"), N_("identification and authentication"),
            two_factor),
    Control("admin.separated", N_("System, security and audit administrators separated"), N_("access control"),
            separated_administrators),
    Control("audit.coverage", N_("Security audit covers every user, kept six months, protected"), N_("security audit"),
            audit_log),
    Control("crypto.storage", N_("Personal information encrypted in storage"), N_("data confidentiality"),
            stored_encrypted),
    Control("crypto.transit", N_("Personal information encrypted in transit"), N_("data confidentiality"), in_transit),
    Control("backup.recent", N_("Data backed up at least daily"), N_("backup and recovery"), backups),
    Control("backup.restore_drill", N_("Backups restored in a drill"), N_("backup and recovery"), restore_drill),
    Control("keys.rotation", N_("Encryption keys rotated"), N_("data confidentiality: key management"), key_rotation),
    Control("secrets.defaults", N_("No default passwords or secrets"), N_("access control: default passwords"),
            no_default_secrets),
    Control("deps.scan", N_("Known vulnerabilities found and fixed"), N_("intrusion prevention"), dependency_scan),
    Control("keys.erasure_journal", N_("Erasures survive every restore"), N_("personal information protection"),
            erasure_journal),
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


def assess(session: Session, *, settings: Settings, keys: KeySource, now: datetime) -> Assessment:
    inputs = Inputs(session, settings, keys, now)
    return Assessment([(control, control.check(inputs)) for control in CONTROLS], now)
