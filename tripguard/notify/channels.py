"""Delivery channels behind one interface. Built-ins that only record say so in their names."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import httpx2 as httpx

logger = logging.getLogger("tripguard.notify")
KEPT = 1000  # a recording channel keeps this many messages: a server running for weeks must not grow


@dataclass(frozen=True)
class Rendered:
    channel: str
    to: str
    subject: str
    body: str
    # The outbox row's id: the same on every retry, so a receiver (a provider's idempotency key, the
    # operator's webhook endpoint) can drop a message it has seen.
    message_id: str = ""


class TransientError(Exception):
    """Try again later (timeout, 5xx, rate limit)."""


class PermanentError(Exception):
    """Will never succeed (bad number, 4xx)."""


class Channel(Protocol):
    name: str

    def send(self, message: Rendered) -> None: ...


@dataclass
class RecordingChannel:
    """Records what would be sent, and sends nothing: for development, tests and demos.

    Its name says so (`recording-sms`, …) wherever it shows. Replace with a provider adapter
    (an SMS gateway, an e-mail relay, a push service) implementing `Channel` in production.
    """

    name: str
    sent: deque[Rendered] = field(default_factory=lambda: deque(maxlen=KEPT))  # the latest, for tests and demos
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, message: Rendered) -> None:
        with self._lock:
            self.sent.append(message)
        logger.info("recorded, not sent", extra={"event": f"recording-{self.name}"})


@dataclass
class WebhookChannel:
    """POSTs JSON to the operator's endpoint, signed with HMAC-SHA-256 over the body."""

    secret: str
    timeout_seconds: float = 5.0
    name: str = "webhook"
    # One client for every send (thread-safe): connections kept alive, and no TLS context built per send
    # (tens of milliseconds of CPU each). No pool-wide cap: the outbox's bulkheads bound each host.
    _client: httpx.Client = field(repr=False, default_factory=lambda: httpx.Client(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=32)))

    def send(self, message: Rendered) -> None:
        body = message.body.encode()
        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        try:
            response = self._client.post(message.to, content=body, timeout=self.timeout_seconds, headers={
                "content-type": "application/json", "x-tripguard-event": message.subject,
                "x-tripguard-message-id": message.message_id, "x-tripguard-signature": f"sha256={signature}"})
        except httpx.HTTPError as exc:
            raise TransientError(type(exc).__name__) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"HTTP {response.status_code}")


def webhook_body(event: str, payload: dict[str, object]) -> str:
    return json.dumps({"event": event, "data": payload}, ensure_ascii=False, sort_keys=True)
