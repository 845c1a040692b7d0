"""How a batch reaches the platform. The ministry's transport is not public: three adapters, chosen by settings.

A batch is one type's uploads, in sequence, packed into an `OTIpcList` by the feed. `send` returns only
when the platform (or the folder) has taken the batch; anything else raises `TransportError` and the
feed tries the same batch again later.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx2 as httpx

logger = logging.getLogger("tripguard.regulator")
KEPT = 10_000  # batches a recording transport keeps: a server running for weeks must not grow


@dataclass(frozen=True)
class Batch:
    kind: str
    first_sequence: int
    last_sequence: int
    count: int
    payload: bytes  # the packed OTIpcList, uncompressed

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.first_sequence:012d}-{self.last_sequence:012d}"


class TransportError(Exception):
    """The batch was not taken: try again later."""


class Transport(Protocol):
    name: str

    def send(self, batch: Batch) -> None: ...


@dataclass
class HttpTransport:
    """POSTs the batch gzipped, with the company id and an HMAC-SHA256 signature of the body as sent, in
    headers named by the settings. Taken only on a 2xx (and, if `ack_field` is set, a JSON body whose
    `ack_field` is `ack_value`)."""

    url: str
    company_id: str
    signing_key: bytes
    company_header: str = "X-Company-Id"
    signature_header: str = "X-Signature"
    ack_field: str | None = None
    ack_value: str = "0"
    timeout_seconds: float = 10.0
    name: str = "http"
    _client: httpx.Client = field(repr=False, default_factory=lambda: httpx.Client(
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8)))

    def signature(self, body: bytes) -> str:
        return hmac.new(self.signing_key, body, hashlib.sha256).hexdigest()

    def send(self, batch: Batch) -> None:
        body = gzip.compress(batch.payload, compresslevel=6)
        headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip",
                   self.company_header: self.company_id, self.signature_header: self.signature(body),
                   "x-upload-type": batch.kind, "x-sequence-first": str(batch.first_sequence),
                   "x-sequence-last": str(batch.last_sequence)}
        try:
            response = self._client.post(self.url, content=body, headers=headers, timeout=self.timeout_seconds)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if not 200 <= response.status_code < 300:
            raise TransportError(f"HTTP {response.status_code}: {response.text[:200]}")
        if self.ack_field is not None:
            try:
                answer = response.json()
            except ValueError as exc:
                raise TransportError("the answer is not JSON") from exc
            value = answer.get(self.ack_field) if isinstance(answer, dict) else None
            if value is None or str(value) != self.ack_value:
                raise TransportError(f"not acknowledged: {self.ack_field}={value!r}")

    def close(self) -> None:
        self._client.close()


@dataclass
class FileDropTransport:
    """Writes each batch as `<type>-<first>-<last>.pb` beside its manifest `….json` (type, first and last
    sequence, count, SHA-256 of the batch file), each written to a temporary name and renamed, manifest last:
    whatever carries the folder over sees a manifest only once its batch is whole."""

    directory: Path
    name: str = "file"

    def send(self, batch: Batch) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            data_path = self.directory / f"{batch.name}.pb"
            _write_atomically(data_path, batch.payload)
            manifest = {"type": batch.kind, "first_sequence": batch.first_sequence,
                        "last_sequence": batch.last_sequence, "count": batch.count,
                        "sha256": hashlib.sha256(batch.payload).hexdigest(), "file": data_path.name}
            _write_atomically(self.directory / f"{batch.name}.json",
                              json.dumps(manifest, sort_keys=True).encode())
        except OSError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}"[:300]) from exc


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass
class RecordingTransport:
    """Keeps what it would send, and sends nothing: for development, tests and demos. Production refuses it
    unless TRIPGUARD_REGULATOR_ALLOW_RECORDING is set."""

    name: str = "recording"
    batches: deque[Batch] = field(default_factory=lambda: deque(maxlen=KEPT))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, batch: Batch) -> None:
        with self._lock:
            self.batches.append(batch)
        logger.info("recorded, not sent", extra={"event": f"regulator {batch.name}"})
