"""Key backups that die: the only copies of people's data keys outside the live key store.

Data backups hold no data keys (`vault_data_keys` is left out of them). The keys go into a separate
key backup (`FILE.keys`), sealed under a key made for that backup alone. That key is kept only in
`backup-keys.json` in the key folder (itself wrapped by the current KEK), and it is destroyed when
the key-backup window has passed (`TRIPGUARD_KEY_BACKUP_WINDOW_DAYS`, default 30, at most 365).
After that, nobody can open that key backup: not TripGuard, not anyone holding every file.

So once the window has passed after an erasure, the person's data key exists nowhere: not in the
live key store (shredded), not in any key backup (made after: it was not there; made before: dead).

Each key is also bound to the erasure journal: its entry records the journal head (count and last
MAC) and that head is part of the associated data the key is wrapped with, so it cannot be changed,
removed or put back to an older value without the KEK. Every erasure moves the heads forward (only
along the same journal: a key bound to a journal that is no longer there stays bound to it), and
opening a key backup needs a journal that contains its key's head. So an erasure after a backup, then
the journal deleted, emptied or swapped for an older copy, does not reopen that backup's keys.

`backups.jsonl` registers every backup made and the KEK versions it needs until it expires, so
`tripguard keys retire` can say which backups a retirement would kill.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.vault import crypto
from tripguard.vault.files import locked, write_private
from tripguard.vault.journal import Head

KEYS_FILE = "backup-keys.json"
REGISTER_FILE = "backups.jsonl"


class BackupKeysDamaged(RuntimeError):
    """`backup-keys.json` cannot be read: no key backup opens, and none is made, until it is put back."""


class KeyBackupExpired(RuntimeError):
    """The key that sealed a key backup is gone: its window passed, or it was made elsewhere."""


class KeyBackupKeyChanged(KeyBackupExpired):
    """The key's entry does not unwrap: it was changed (its journal head included) or is another keyring's."""


@dataclass(frozen=True)
class BackupRecord:
    name: str
    kind: str  # data | keys
    created_at: datetime
    keep_until: datetime
    kek_versions: tuple[int, ...]


def _wrap_context(key_id: str, head: Head | None, until: str | None = None) -> bytes:
    """The associated data a key-backup key is wrapped with: its id, the journal head and the end of its
    window as written in the file (so neither can be edited without the KEK); keys made before the binding
    have neither."""
    bound = "" if head is None else f"|journal/{head.count}/{head.last}|until/{until}"
    return f"tripguard/key-backup/{key_id}{bound}".encode()


def _deadline(entry: dict[str, object]) -> datetime | None:
    """When an entry's window ends; None when it cannot be read (such an entry opens nothing and is purged)."""
    try:
        deadline = datetime.fromisoformat(str(entry["expires_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    return deadline if deadline.tzinfo is not None else None


@dataclass(frozen=True)
class SealedKey:
    """A live entry of `backup-keys.json`: the key still wrapped, with the journal head it is bound to."""

    key_id: str
    kek_version: int
    sealed: bytes
    head: Head | None  # None: made before keys were bound to the journal
    until: str | None = None  # the window's end as written in the file

    @property
    def context(self) -> bytes:
        return _wrap_context(self.key_id, self.head, self.until)


@dataclass(frozen=True)
class BackupKeyStore:
    """`backup-keys.json`: {id: {created_at, expires_at, kek_version, journal, wrapped}}; expired entries are
    erased. `journal` is the erasure-journal head the key is bound to (see the module's docstring)."""

    folder: Path
    window: timedelta

    @property
    def path(self) -> Path:
        return self.folder / KEYS_FILE

    def _load(self) -> dict[str, dict[str, object]]:
        if not self.path.exists():
            return {}
        try:
            loaded = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise BackupKeysDamaged(f"{self.path.name} in the key folder cannot be read ({type(exc).__name__}): put "
                                    "it back from a copy of the key folder") from exc
        if not isinstance(loaded, dict):
            raise BackupKeysDamaged(f"{self.path.name} in the key folder is damaged: put it back from a copy")
        return loaded

    def _save(self, entries: dict[str, dict[str, object]]) -> None:
        write_private(self.path, json.dumps(entries, indent=1, sort_keys=True).encode())

    def create(self, *, kek_version: int, wrap: bytes, suite: crypto.Suite,
               head: Head) -> tuple[str, bytes, datetime]:
        """A new key for one key backup, bound to the journal `head`: (id, key, expires_at). `wrap` is
        derived from the current KEK."""
        key = crypto.new_key(suite)
        key_id = new_id("kbk")
        now = utcnow()
        expires = now + self.window
        sealed = crypto.encrypt(suite, wrap, key, _wrap_context(key_id, head, expires.isoformat()))
        with locked(self.folder, KEYS_FILE):
            entries = self._purged(self._load(), now)
            entries[key_id] = {"created_at": now.isoformat(), "expires_at": expires.isoformat(),
                               "kek_version": kek_version, "journal": head.as_dict(),
                               "wrapped": base64.b64encode(sealed).decode()}
            self._save(entries)
        return key_id, key, expires

    def sealed(self, key_id: str) -> SealedKey:
        """A live entry, its head not yet authenticated (the unwrapping does that); raises
        KeyBackupExpired when it is gone."""
        entry = self._load().get(key_id)
        deadline = None if entry is None else _deadline(entry)
        if entry is None or deadline is None or deadline <= utcnow():
            raise KeyBackupExpired(
                f"the key of key backup {key_id} is gone (made more than {self.window.days} days ago, or with "
                "another key folder): this key backup can no longer be opened; restore with a fresher one "
                "(`tripguard keys backup FILE` on the live system, then `--keys FILE`)")
        return _sealed_key(key_id, entry)

    def unbound(self) -> bool:
        """Whether a key made before keys were bound to the journal is still live here."""
        try:
            return any("journal" not in entry for entry in self._purged(self._load(), utcnow()).values())
        except (ValueError, AttributeError, TypeError, KeyError):
            return False

    def bound_to_a_journal(self) -> bool:
        """Whether any key here is bound to a journal head (an authenticated journal was kept here)."""
        try:
            return any("journal" in entry for entry in self._load().values())
        except (ValueError, AttributeError, TypeError):
            return True  # a damaged file is no evidence of a fresh folder

    def advance(self, head: Head, *, contains: Callable[[Head], bool],
                wrap_for: Callable[[int, crypto.Suite], bytes]) -> int:
        """Rebind every live key to the journal head `head`, if the journal holding `head` also holds the
        head the key is bound to (`contains`); a key bound to another journal, or one whose KEK is
        gone, is left as it is. Returns how many moved."""
        with locked(self.folder, KEYS_FILE):
            loaded = self._load()
            entries = self._purged(loaded, utcnow())
            moved = 0
            wraps: dict[tuple[int, crypto.Suite], bytes] = {}  # derived once per KEK version, not per key
            for key_id, entry in entries.items():
                try:
                    current = _sealed_key(key_id, entry)
                    if current.head is not None and (current.head.count >= head.count or not contains(current.head)):
                        continue
                    suite = crypto.suite_of(current.sealed)
                    if (current.kek_version, suite) not in wraps:
                        wraps[current.kek_version, suite] = wrap_for(current.kek_version, suite)
                    wrap = wraps[current.kek_version, suite]
                    key = crypto.decrypt(wrap, current.sealed, current.context)
                except (crypto.DecryptionFailed, RuntimeError, ValueError, KeyError):
                    continue  # opens nothing anyway: damaged, a retired KEK, another keyring's entry
                entry["wrapped"] = base64.b64encode(crypto.encrypt(
                    suite, wrap, key, _wrap_context(key_id, head, str(entry["expires_at"])))).decode()
                entry["journal"] = head.as_dict()
                moved += 1
            if moved or len(entries) != len(loaded):
                self._save(entries)
            return moved

    def forget(self, key_id: str) -> None:
        """Destroy one key at once (its key backup was never completed)."""
        with locked(self.folder, KEYS_FILE):
            entries = self._load()
            if entries.pop(key_id, None) is not None:
                self._save(entries)

    def expires_at(self, key_id: str) -> datetime | None:
        entry = self._load().get(key_id)
        return None if entry is None else _deadline(entry)

    @staticmethod
    def _purged(entries: dict[str, dict[str, object]], now: datetime) -> dict[str, dict[str, object]]:
        return {k: v for k, v in entries.items()
                if isinstance(v, dict) and (deadline := _deadline(v)) is not None and deadline > now}

    def purge(self) -> int:
        """Destroy every key whose window has passed; returns how many. Runs with retention, hourly."""
        with locked(self.folder, KEYS_FILE):
            entries = self._load()
            kept = self._purged(entries, utcnow())
            if len(kept) != len(entries):
                self._save(kept)
            return len(entries) - len(kept)

    def expired_count(self) -> int:
        entries = self._load()
        return len(entries) - len(self._purged(entries, utcnow()))


def _sealed_key(key_id: str, entry: dict[str, object]) -> SealedKey:
    return SealedKey(key_id=key_id, kek_version=int(str(entry["kek_version"])),
                     sealed=base64.b64decode(str(entry["wrapped"])), head=Head.parse(entry.get("journal")),
                     until=str(entry.get("expires_at")))


@dataclass(frozen=True)
class BackupRegister:
    """`backups.jsonl`: one line per backup made, with the KEK versions it needs while it is kept."""

    folder: Path

    @property
    def path(self) -> Path:
        return self.folder / REGISTER_FILE

    def add(self, record: BackupRecord) -> None:
        line = json.dumps({"name": record.name, "kind": record.kind, "created_at": record.created_at.isoformat(),
                           "keep_until": record.keep_until.isoformat(),
                           "kek_versions": list(record.kek_versions)}) + "\n"
        with locked(self.folder, REGISTER_FILE):
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as handle:
                handle.write(line)

    def records(self) -> list[BackupRecord]:
        if not self.path.exists():
            return []
        out = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if line.strip():
                out.append(_register_line(line, number))
        return out

    def needing(self, version: int) -> list[BackupRecord]:
        """Backups still inside their retention that cannot be opened without KEK `version`."""
        now = utcnow()
        return [r for r in self.records() if r.keep_until > now and version in r.kek_versions]


def _register_line(line: str, number: int) -> BackupRecord:
    """One line of the register; a damaged one stops the caller: without it, no one can say which key
    versions the backups still kept need."""
    try:
        item = json.loads(line)
        created_at, keep_until = datetime.fromisoformat(item["created_at"]), datetime.fromisoformat(item["keep_until"])
        versions = tuple(int(v) for v in item["kek_versions"])
        if not isinstance(item["name"], str) or not isinstance(item["kind"], str) or keep_until.tzinfo is None:
            raise ValueError("a field of the wrong kind")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BackupKeysDamaged(f"{REGISTER_FILE} in the key folder is damaged at line {number} "
                                f"({type(exc).__name__}): put it back from a copy of the key folder, or mend the "
                                "line by hand; until then no key version can be retired") from exc
    return BackupRecord(name=item["name"], kind=item["kind"], created_at=created_at, keep_until=keep_until,
                        kek_versions=versions)
