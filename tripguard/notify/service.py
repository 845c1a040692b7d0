"""Enqueue messages in the caller's transaction; dispatch them with retries (at least once).

A message to a person is rendered when enqueued and sealed under that person's data key. The
dispatcher sends due messages in small batches; a transient failure is retried with exponential
backoff until `max_attempts`, a permanent one ends it. Receivers deduplicate by message id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.ids import new_id
from tripguard.notify import templates
from tripguard.notify.channels import (
    Channel,
    PermanentError,
    Rendered,
    TransientError,
    webhook_body,
)
from tripguard.notify.models import OutboxMessage
from tripguard.vault.service import SubjectErased, Vault

PERSON_CHANNELS = ("sms", "email", "push")
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class Notifier:
    channels: dict[str, Channel]
    max_attempts: int = 8
    batch: int = 50


@dataclass
class DispatchResult:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def _existing(session: Session, idempotency_key: str) -> OutboxMessage | None:
    return session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))


def enqueue_to_person(session: Session, vault: Vault, *, subject_id: str, channel: str, to: str, template: str,
                      locale: str, params: dict[str, object], idempotency_key: str,
                      fresh_key: bool = False) -> OutboxMessage:
    """Queue a message to a person; the same idempotency key queues it once, however often asked.

    `fresh_key`: the key names a record created in this very transaction, so it cannot be queued yet
    and the lookup is skipped (an SOS burst queues hundreds of these a second)."""
    if channel not in PERSON_CHANNELS:
        raise ValueError(f"{channel} is not a channel to a person")
    existing = None if fresh_key else _existing(session, idempotency_key)
    if existing is not None:
        return existing
    subject_line, body = templates.render(template, locale, params)
    now = utcnow()
    message = OutboxMessage(id=new_id("msg"), idempotency_key=idempotency_key, channel=channel, template=template,
                            locale=locale, subject_id=subject_id, status="pending", attempts=0,
                            next_attempt_at=now, created_at=now)
    message.sealed_content = vault.seal(
        session, subject_id=subject_id, table=OutboxMessage.__tablename__, column="sealed_content",
        row_id=message.id, value=json.dumps({"to": to, "subject": subject_line, "body": body}, ensure_ascii=False))
    session.add(message)
    return message


def enqueue_emergency(session: Session, vault: Vault, *, subject_id: str, payload: dict[str, object],
                      idempotency_key: str, fresh_key: bool = False) -> OutboxMessage:
    """A police-dispatch payload for the emergency gateway (channel `emergency`): it names the caller,
    so it is sealed under the caller's key like any message to a person. `fresh_key` as above."""
    existing = None if fresh_key else _existing(session, idempotency_key)
    if existing is not None:
        return existing
    now = utcnow()
    message = OutboxMessage(id=new_id("msg"), idempotency_key=idempotency_key, channel="emergency",
                            template="emergency_dispatch", locale="zh_CN", subject_id=subject_id, status="pending",
                            attempts=0, next_attempt_at=now, created_at=now)
    message.sealed_content = vault.seal(
        session, subject_id=subject_id, table=OutboxMessage.__tablename__, column="sealed_content",
        row_id=message.id, value=json.dumps({"to": "emergency-gateway", "subject": "sos",
                                             "body": json.dumps(payload, ensure_ascii=False)}, ensure_ascii=False))
    session.add(message)
    return message


def enqueue_webhook(session: Session, *, url: str, event: str, payload: dict[str, object],
                    idempotency_key: str) -> OutboxMessage:
    """Queue an event for the operator's backend. `payload` carries ids, never personal data."""
    existing = _existing(session, idempotency_key)
    if existing is not None:
        return existing
    now = utcnow()
    message = OutboxMessage(id=new_id("msg"), idempotency_key=idempotency_key, channel="webhook", template=event,
                            locale="en", content={"url": url, "event": event, "payload": payload},
                            status="pending", attempts=0, next_attempt_at=now, created_at=now)
    session.add(message)
    return message


def _render(session: Session, vault: Vault, message: OutboxMessage) -> Rendered:
    if message.channel == "webhook":
        content = message.content or {}
        return Rendered(channel="webhook", to=str(content["url"]), subject=str(content["event"]), message_id=message.id,
                        body=webhook_body(str(content["event"]), dict(content["payload"]) | {"message_id": message.id}))  # type: ignore[call-overload]
    assert message.subject_id is not None and message.sealed_content is not None
    opened = json.loads(vault.open(session, subject_id=message.subject_id, table=OutboxMessage.__tablename__,
                                   column="sealed_content", row_id=message.id, blob=message.sealed_content))
    return Rendered(channel=message.channel, to=opened["to"], subject=opened["subject"], body=opened["body"],
                    message_id=message.id)


def _retry_later(notifier: Notifier, message: OutboxMessage, error: str, result: DispatchResult) -> None:
    message.attempts += 1
    message.last_error = error[:500]
    if message.attempts >= notifier.max_attempts:
        message.status = "dead"
        result.dead += 1
        return
    message.next_attempt_at = utcnow() + min(MAX_BACKOFF, timedelta(seconds=2 ** message.attempts))
    result.retried += 1


CLAIM_FOR = timedelta(minutes=2)  # a claimed message not marked in time is due again (its worker died)


def dispatch_due(factory: sessionmaker[Session], vault: Vault, notifier: Notifier, *,
                 claim_for: timedelta = CLAIM_FOR) -> DispatchResult:
    """Send what is due, at least once. Claim (short transaction), send with no transaction open,
    then record the outcome (short transaction): a slow SMS provider never holds the database. A
    claim lapses after `claim_for`: a worker that dies mid-send leaves its messages to the others."""
    result = DispatchResult()
    with unit_of_work(factory) as session:
        due = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= utcnow())
            .order_by(OutboxMessage.next_attempt_at).limit(notifier.batch).with_for_update(skip_locked=True)
        ).all()
        vault.prefetch(session, [m.subject_id for m in due if m.subject_id])  # one query for the batch's keys
        claimed: list[tuple[str, Rendered | Exception]] = []
        for message in due:
            try:
                rendered: Rendered | Exception = _render(session, vault, message)
            except SubjectErased as exc:
                rendered = exc
            claimed.append((message.id, rendered))
            message.next_attempt_at = utcnow() + claim_for
    outcomes: list[tuple[str, Exception | None]] = []
    for message_id, rendered in claimed:
        if isinstance(rendered, Exception):
            outcomes.append((message_id, rendered))
            continue
        channel = notifier.channels.get(rendered.channel)
        try:
            if channel is None:
                raise PermanentError(f"no {rendered.channel} channel is configured")
            channel.send(rendered)
        except (PermanentError, TransientError) as exc:
            outcomes.append((message_id, exc))
        else:
            outcomes.append((message_id, None))
    if not outcomes:
        return result
    with unit_of_work(factory) as session:
        found = {m.id: m for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_([message_id for message_id, _ in outcomes])))}
        for message_id, error in outcomes:
            stored = found.get(message_id)
            if stored is None:
                continue
            if error is None:
                stored.status, stored.sent_at = "sent", utcnow()
                stored.attempts += 1
                result.sent += 1
            elif isinstance(error, SubjectErased):
                stored.status, stored.last_error = "dead", "the recipient was erased"
                result.dead += 1
            elif isinstance(error, PermanentError):
                stored.status, stored.last_error = "dead", str(error)[:500]
                stored.attempts += 1
                result.dead += 1
            else:
                _retry_later(notifier, stored, str(error), result)
    return result


def dispatch_backlog(factory: sessionmaker[Session], vault: Vault, notifier: Notifier, *,
                     rounds: int = 20, claim_for: timedelta = CLAIM_FOR) -> DispatchResult:
    """`dispatch_due` again while it finds a full batch (a burst of SOS messages), at most `rounds` times."""
    total = DispatchResult()
    for _ in range(rounds):
        result = dispatch_due(factory, vault, notifier, claim_for=claim_for)
        total.sent, total.retried, total.dead = (total.sent + result.sent, total.retried + result.retried,
                                                 total.dead + result.dead)
        total.errors += result.errors
        if result.sent + result.retried + result.dead < notifier.batch:
            break
    return total


@dataclass(frozen=True)
class Delivery:
    """Where a queued message stands, without its content: pending (queued or retrying), sent, dead."""

    status: str
    attempts: int
    sent_at: datetime | None


def deliveries(session: Session, idempotency_keys: list[str]) -> dict[str, Delivery]:
    """The messages queued under these keys (a case page shows who was told, and the police dispatch)."""
    if not idempotency_keys:
        return {}
    rows = session.execute(select(OutboxMessage.idempotency_key, OutboxMessage.status, OutboxMessage.attempts,
                                  OutboxMessage.sent_at).where(OutboxMessage.idempotency_key.in_(idempotency_keys)))
    return {key: Delivery(status, attempts, sent_at) for key, status, attempts, sent_at in rows}
