"""Key backups that die: the only copies of people's data keys outside the live key store.

Data backups hold no data keys (`vault_data_keys` is left out of them). The keys go into a separate
key backup (`FILE.keys`), sealed under a key made for that backup alone. That key is kept only in
`backup-keys.json` in the key folder (itself wrapped by the current KEK), and it is destroyed when
the key-backup window has passed (`TRIPGUARD_KEY_BACKUP_WINDOW_DAYS`, default 30, at most 365).
After that, nobody can open that key backup: not TripGuard, not anyone holding every file.

So once the window has passed after an erasure, the person's data key exists nowhere: not in the
live key store (shredded), not in any key backup (made after: it was not there; made before: dead).

`backups.jsonl` registers every backup made and the KEK versions it needs until it expires, so
`tripguard keys retire` can say which backups a retirement would kill.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.vault import crypto
from tripguard.vault.files import locked, write_private

KEYS_FILE = "backup-keys.json"
REGISTER_FILE = "backups.jsonl"


class KeyBackupExpired(RuntimeError):
    """The key that sealed a key backup is gone: its window passed, or it was made elsewhere."""


@dataclass(frozen=True)
class BackupRecord:
    name: str
    kind: str  # data | keys
    created_at: datetime
    keep_until: datetime
    kek_versions: tuple[int, ...]


@dataclass(frozen=True)
class BackupKeyStore:
    """`backup-keys.json`: {id: {created_at, expires_at, kek_version, wrapped}}; expired entries are erased."""

    folder: Path
    window: timedelta

    @property
    def path(self) -> Path:
        return self.folder / KEYS_FILE

    def _load(self) -> dict[str, dict[str, object]]:
        if not self.path.exists():
            return {}
        return dict(json.loads(self.path.read_bytes()))

    def _save(self, entries: dict[str, dict[str, object]]) -> None:
        write_private(self.path, json.dumps(entries, indent=1, sort_keys=True).encode())

    def create(self, *, kek_version: int, wrap: bytes, suite: crypto.Suite) -> tuple[str, bytes, datetime]:
        """A new key for one key backup: (id, key, expires_at). `wrap` is derived from the current KEK."""
        key = crypto.new_key(suite)
        key_id = new_id("kbk")
        now = utcnow()
        expires = now + self.window
        sealed = crypto.encrypt(suite, wrap, key, f"tripguard/key-backup/{key_id}".encode())
        with locked(self.folder, KEYS_FILE):
            entries = self._purged(self._load(), now)
            entries[key_id] = {"created_at": now.isoformat(), "expires_at": expires.isoformat(),
                               "kek_version": kek_version, "wrapped": base64.b64encode(sealed).decode()}
            self._save(entries)
        return key_id, key, expires

    def sealed(self, key_id: str) -> tuple[int, bytes]:
        """(kek_version, sealed key) of a live entry; raises KeyBackupExpired when it is gone."""
        entry = self._load().get(key_id)
        if entry is None or datetime.fromisoformat(str(entry["expires_at"])) <= utcnow():
            raise KeyBackupExpired(
                f"the key of key backup {key_id} is gone (made more than {self.window.days} days ago, or with "
                "another key folder): this key backup can no longer be opened; restore with a fresher one "
                "(`tripguard keys backup FILE` on the live system, then `--keys FILE`)")
        return int(str(entry["kek_version"])), base64.b64decode(str(entry["wrapped"]))

    def forget(self, key_id: str) -> None:
        """Destroy one key at once (its key backup was never completed)."""
        with locked(self.folder, KEYS_FILE):
            entries = self._load()
            if entries.pop(key_id, None) is not None:
                self._save(entries)

    def expires_at(self, key_id: str) -> datetime | None:
        entry = self._load().get(key_id)
        return None if entry is None else datetime.fromisoformat(str(entry["expires_at"]))

    @staticmethod
    def _purged(entries: dict[str, dict[str, object]], now: datetime) -> dict[str, dict[str, object]]:
        return {k: v for k, v in entries.items() if datetime.fromisoformat(str(v["expires_at"])) > now}

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
        for line in self.path.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                out.append(BackupRecord(name=item["name"], kind=item["kind"],
                                        created_at=datetime.fromisoformat(item["created_at"]),
                                        keep_until=datetime.fromisoformat(item["keep_until"]),
                                        kek_versions=tuple(item["kek_versions"])))
        return out

    def needing(self, version: int) -> list[BackupRecord]:
        """Backups still inside their retention that cannot be opened without KEK `version`."""
        now = utcnow()
        return [r for r in self.records() if r.keep_until > now and version in r.kek_versions]
