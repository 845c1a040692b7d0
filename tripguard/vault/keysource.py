"""Where key-encryption keys (KEKs) come from: a passphrase-protected keyring file, or the environment.

A KEK never leaves this module unwrapped except to wrap and unwrap data keys. Versions are kept so
that rotation can add one, rewrap every data key, and retire the old once nothing uses it. A KMS
adapter implements the same `KeySource` protocol.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tripguard.core.clock import utcnow

KEYRING_FORMAT = "tripguard-keyring-v1"
KEK_BYTES = 32
_T = TypeVar("_T")


class KeySourceError(RuntimeError):
    pass


@dataclass(frozen=True)
class KekInfo:
    version: int
    created_at: str
    retired_at: str | None


class KeySource(Protocol):
    def current_version(self) -> int: ...
    def kek(self, version: int) -> bytes: ...
    def versions(self) -> list[KekInfo]: ...
    def index_key(self) -> bytes: ...
    def add_version(self) -> int: ...
    def retire(self, version: int) -> None: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


class KeyringFile:
    """A JSON keyring: each key wrapped with AES-256-GCM under a scrypt key from the passphrase."""

    SCRYPT_N = 2**15

    def __init__(self, path: Path, passphrase: str) -> None:
        self.path = path
        self._passphrase = passphrase.encode()
        self._data = self._load_or_create()
        self._wrapping = self._wrapping_key(self._data)
        self._check_passphrase()
        self._mtime = self.path.stat().st_mtime_ns

    # -- file -------------------------------------------------------------------------------
    def _wrapping_key(self, data: dict) -> bytes:  # type: ignore[type-arg]
        kdf = data["kdf"]
        return Scrypt(salt=_unb64(kdf["salt"]), length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(
            self._passphrase)

    def _load_or_create(self) -> dict:  # type: ignore[type-arg]
        if self.path.exists():
            data: dict[str, Any] = json.loads(self.path.read_text())
            if data.get("format") != KEYRING_FORMAT:
                raise KeySourceError(f"{self.path} is not a TripGuard keyring")
            return data
        data = {"format": KEYRING_FORMAT,
                "kdf": {"name": "scrypt", "salt": _b64(os.urandom(16)), "n": self.SCRYPT_N, "r": 8, "p": 1},
                "current": 0, "keks": {}}
        wrapping = self._wrapping_key(data)
        data["check"] = self._wrap(wrapping, b"tripguard-keyring", "check")
        data["index_key"] = self._wrap(wrapping, os.urandom(KEK_BYTES), "index")
        self._data, self._wrapping = data, wrapping
        self._add(data)
        self._write(data, exclusive=True)
        return data

    def _write(self, data: dict, *, exclusive: bool = False) -> None:  # type: ignore[type-arg]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive and self.path.exists():
            tmp.unlink()
            raise KeySourceError(f"{self.path} appeared while being created")
        os.replace(tmp, self.path)

    @staticmethod
    def _wrap(wrapping: bytes, key: bytes, label: str) -> str:
        nonce = os.urandom(12)
        return _b64(nonce + AESGCM(wrapping).encrypt(nonce, key, f"tripguard-keyring/{label}".encode()))

    def _unwrap(self, blob: str, label: str) -> bytes:
        raw = _unb64(blob)
        try:
            return AESGCM(self._wrapping).decrypt(raw[:12], raw[12:], f"tripguard-keyring/{label}".encode())
        except InvalidTag as exc:
            raise KeySourceError(f"keyring entry {label} does not open: wrong passphrase or damaged file") from exc

    def _check_passphrase(self) -> None:
        self._unwrap(self._data["check"], "check")

    def _add(self, data: dict) -> int:  # type: ignore[type-arg]
        version = max((int(v) for v in data["keks"]), default=0) + 1
        data["keks"][str(version)] = {
            "wrapped": self._wrap(self._wrapping, os.urandom(KEK_BYTES), f"kek/{version}"),
            "created_at": utcnow().isoformat(), "retired_at": None,
        }
        data["current"] = version
        return version

    def _locked_update(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        lock_path = self.path.with_suffix(".lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._data = json.loads(self.path.read_text())
            result = change(self._data)
            self._write(self._data)
            return result

    def reload(self) -> None:
        self._mtime = self.path.stat().st_mtime_ns
        self._data = json.loads(self.path.read_text())

    def _reload_if_changed(self) -> None:
        # Another process (`tripguard keys rotate`) may have added a version.
        if self.path.stat().st_mtime_ns != self._mtime:
            self.reload()

    # -- KeySource --------------------------------------------------------------------------
    def current_version(self) -> int:
        self._reload_if_changed()
        return int(self._data["current"])

    def kek(self, version: int) -> bytes:
        self._reload_if_changed()  # a version retired elsewhere stops working here too
        entry = self._data["keks"].get(str(version))
        if entry is None or entry["retired_at"] is not None:
            raise KeySourceError(f"key-encryption key version {version} is unknown or retired")
        return self._unwrap(entry["wrapped"], f"kek/{version}")

    def versions(self) -> list[KekInfo]:
        return [KekInfo(int(v), e["created_at"], e["retired_at"]) for v, e in sorted(
            self._data["keks"].items(), key=lambda item: int(item[0]))]

    def index_key(self) -> bytes:
        return self._unwrap(self._data["index_key"], "index")

    def add_version(self) -> int:
        return self._locked_update(self._add)

    def retire(self, version: int) -> None:
        def change(data: dict) -> None:  # type: ignore[type-arg]
            if version == int(data["current"]):
                raise KeySourceError("the current version cannot be retired")
            entry = data["keks"].get(str(version))
            if entry is None:
                raise KeySourceError(f"no version {version}")
            entry["retired_at"] = utcnow().isoformat()
            entry["wrapped"] = ""  # destroyed
        self._locked_update(change)


class EnvKeySource:
    """KEKs from `TRIPGUARD_KEKS` ("1:<base64>,2:<base64>"); the highest version is current.

    Rotation here means deploying a new variable; `add_version` and `retire` say so.
    """

    def __init__(self, keks: str, index_key: str) -> None:
        self._keks: dict[int, bytes] = {}
        for part in keks.split(","):
            version, _, value = part.strip().partition(":")
            key = _unb64(value)
            if len(key) != KEK_BYTES:
                raise KeySourceError(f"KEK version {version} must be {KEK_BYTES} bytes")
            self._keks[int(version)] = key
        if not self._keks:
            raise KeySourceError("TRIPGUARD_KEKS holds no key")
        self._index = _unb64(index_key)

    def current_version(self) -> int:
        return max(self._keks)

    def kek(self, version: int) -> bytes:
        if version not in self._keks:
            raise KeySourceError(f"key-encryption key version {version} is not in TRIPGUARD_KEKS")
        return self._keks[version]

    def versions(self) -> list[KekInfo]:
        return [KekInfo(v, "", None) for v in sorted(self._keks)]

    def index_key(self) -> bytes:
        return self._index

    def add_version(self) -> int:
        raise KeySourceError("with the env key source, add a version to TRIPGUARD_KEKS and restart")

    def retire(self, version: int) -> None:
        raise KeySourceError("with the env key source, remove the version from TRIPGUARD_KEKS")


def retired_at(info: KekInfo) -> datetime | None:
    return datetime.fromisoformat(info.retired_at) if info.retired_at else None
