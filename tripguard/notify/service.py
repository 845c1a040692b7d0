"""Enqueue messages in the caller's transaction; dispatch them with retries (at least once).

A message to a person is rendered when enqueued and sealed under that person's data key. Each
message has a lane (`Priority`) and a destination: due messages are claimed by priority, sent with
no transaction open, at most `Notifier.concurrency` at a time per destination (a bulkhead: a slow
receiver holds only its own sends), and their outcomes recorded. A transient failure is retried
with exponential backoff until `max_attempts`, a permanent one ends it. Receivers deduplicate by
message id. `senders.py` runs this continuously, the emergency lane on a sender of its own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.ids import new_id
from tripguard.notify import templates
from tripguard.notify.channels import (
    Channel,
    PermanentError,
    RecordingChannel,
    Rendered,
    TransientError,
    webhook_body,
)
from tripguard.notify.models import OutboxMessage, Priority
from tripguard.vault.service import SubjectErased, Vault

PERSON_CHANNELS = ("sms", "email", "push")
MAX_BACKOFF = timedelta(hours=1)
# PostgreSQL NOTIFY channel: an emergency message was queued (delivered when its transaction commits).
EMERGENCY_NOTIFY_CHANNEL = "tripguard_outbox_emergency"


@dataclass
class Notifier:
    channels: dict[str, Channel]
    max_attempts: int = 8
    batch: int = 50
    concurrency: int = 4  # sends in flight per destination (per sender)
    emergency_concurrency: int = 16  # the same in the emergency lane: a burst of SOS drains fast


@dataclass
class DispatchResult:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchResult) -> None:
        self.sent, self.retried = self.sent + other.sent, self.retried + other.retried
        self.dead += other.dead
        self.errors += other.errors

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.dead


def _existing(session: Session, idempotency_key: str) -> OutboxMessage | None:
    return session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))


def webhook_destination(url: str) -> str:
    """A webhook's bulkhead: its receiver's scheme, host and port (every path on one server shares it)."""
    parts = urlsplit(url)
    return f"webhook {parts.scheme}://{parts.netloc}".lower()


def _announce_emergency(session: Session) -> None:
    """Wake the outbox workers of other processes when this transaction commits (PostgreSQL NOTIFY; one per
    transaction). Another process's SQLite has no such thing: there the outbox runs in this process."""
    if session.get_bind().dialect.name != "postgresql":
        return
    transaction = session.get_transaction()
    if session.info.get("outbox_announced") is transaction:
        return
    session.execute(text("SELECT pg_notify(:channel, 'emergency')"), {"channel": EMERGENCY_NOTIFY_CHANNEL})
    session.info["outbox_announced"] = transaction


def enqueue_to_person(session: Session, *, vault: Vault, subject_id: str, channel: str, to: str, template: str,
                      locale: str, params: dict[str, object], idempotency_key: str,
                      fresh_key: bool = False, priority: Priority = Priority.PEOPLE) -> OutboxMessage:
    """Queue a message to a person; the same idempotency key queues it once, however often asked.

    `fresh_key`: the key names a record created in this very transaction, so it cannot be queued yet
    and the lookup is skipped (an SOS burst queues hundreds of these a second). `priority`
    `EMERGENCY` puts it in the emergency lane (an SOS's SMS to the caller's contacts)."""
    if channel not in PERSON_CHANNELS:
        raise ValueError(f"{channel} is not a channel to a person")
    existing = None if fresh_key else _existing(session, idempotency_key)
    if existing is not None:
        return existing
    subject_line, body = templates.render(template, locale, params)
    now = utcnow()
    message = OutboxMessage(id=new_id("msg"), idempotency_key=idempotency_key, channel=channel, template=template,
                            locale=locale, priority=priority, destination=channel, subject_id=subject_id,
                            status="pending", attempts=0, next_attempt_at=now, created_at=now)
    message.sealed_content = vault.seal(
        session, subject_id=subject_id, table=OutboxMessage.__tablename__, column="sealed_content",
        row_id=message.id, value=json.dumps({"to": to, "subject": subject_line, "body": body}, ensure_ascii=False))
    session.add(message)
    if priority == Priority.EMERGENCY:
        _announce_emergency(session)
    return message


def enqueue_emergency(session: Session, *, vault: Vault, subject_id: str, payload: dict[str, object],
                      idempotency_key: str, fresh_key: bool = False) -> OutboxMessage:
    """A police-dispatch payload for the emergency gateway (channel `emergency`, the emergency lane): it
    names the caller, so it is sealed under the caller's key like any message to a person. `fresh_key`
    as above."""
    existing = None if fresh_key else _existing(session, idempotency_key)
    if existing is not None:
        return existing
    now = utcnow()
    message = OutboxMessage(id=new_id("msg"), idempotency_key=idempotency_key, channel="emergency",
                            template="emergency_dispatch", locale="zh_CN", priority=Priority.EMERGENCY,
                            destination="emergency", subject_id=subject_id, status="pending",
                            attempts=0, next_attempt_at=now, created_at=now)
    message.sealed_content = vault.seal(
        session, subject_id=subject_id, table=OutboxMessage.__tablename__, column="sealed_content",
        row_id=message.id, value=json.dumps({"to": "emergency-gateway", "subject": "sos",
                                             "body": json.dumps(payload, ensure_ascii=False)}, ensure_ascii=False))
    session.add(message)
    _announce_emergency(session)
    return message


def enqueue_webhook(session: Session, *, url: str, event: str, payload: dict[str, object],
                    idempotency_key: str) -> OutboxMessage:
    """Queue an event for the operator's backend. `payload` carries ids, never personal data."""
    existing = _existing(session, idempotency_key)
    if existing is not None:
        return existing
    now = utcnow()
    message = OutboxMessage(id=new_id("msg"), idempotency_key=idempotency_key, channel="webhook", template=event,
                            locale="en", priority=Priority.SYSTEMS, destination=webhook_destination(url),
                            content={"url": url, "event": event, "payload": payload},
                            status="pending", attempts=0, next_attempt_at=now, created_at=now)
    session.add(message)
    return message


ERASED_RECIPIENT = "the recipient was erased"


def cancel_for_person(session: Session, *, subject_id: str) -> int:
    """On erasure: messages still waiting that are sealed under the person's key (to them, or on their behalf
    to their contacts) never go; they could not be opened any more. Dead, as the sender would leave them."""
    cancelled = session.execute(update(OutboxMessage).where(OutboxMessage.subject_id == subject_id,
                                                            OutboxMessage.status == "pending")
                                .values(status="dead", last_error=ERASED_RECIPIENT)
                                .execution_options(synchronize_session="fetch"))
    return int(cancelled.rowcount)  # type: ignore[attr-defined]


def cancel_keyed(session: Session, *, key_endings: Collection[str], reason: str = ERASED_RECIPIENT) -> int:
    """Messages still waiting whose idempotency key ends with one of `key_endings` never go: the domain that
    queued them names their recipient in the key (an emergency contact's row id), though they are sealed
    under someone else's key (the person who named them). Dead, as `cancel_for_person` leaves them."""
    endings = sorted(set(key_endings))
    if not endings:
        return 0
    cancelled = 0
    for start in range(0, len(endings), 100):
        matches = or_(*(OutboxMessage.idempotency_key.endswith(e, autoescape=True) for e in endings[start:start + 100]))
        cancelled += int(session.execute(
            update(OutboxMessage).where(OutboxMessage.status == "pending", matches)
            .values(status="dead", last_error=reason).execution_options(synchronize_session="fetch")
        ).rowcount)  # type: ignore[attr-defined]
    return cancelled


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


def opened(session: Session, *, vault: Vault, message: OutboxMessage) -> Rendered | None:
    """What a message says (to, subject, text) as its channel is given it; None once its recipient was erased."""
    try:
        return _render(session, vault, message)
    except SubjectErased:
        return None


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


@dataclass(frozen=True)
class Claimed:
    """A message claimed for sending: rendered, or why it cannot be (its recipient was erased)."""

    message_id: str
    destination: str
    rendered: Rendered | SubjectErased


Outcome = tuple[str, Exception | None]  # a message id, and why its send failed (None: sent)


def claim_due(session: Session, *, vault: Vault, limit: int, claim_for: timedelta = CLAIM_FOR,
              priorities: Collection[int] | None = None, skip_destinations: Collection[str] = (),
              take: Callable[[str], bool] = lambda _destination: True) -> list[Claimed]:
    """Claim due messages, emergency lane first (`ORDER BY priority, next_attempt_at`; `FOR UPDATE SKIP
    LOCKED`, so workers claim apart). Only `priorities` if given; none to `skip_destinations` (their
    bulkheads are full); and only those `take` makes room for: a row it refuses is left pending for
    another worker or round. A claim lapses after `claim_for`. The caller commits, at once: the rows
    stay locked until then."""
    query = select(OutboxMessage).where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= utcnow())
    if priorities is not None:
        query = query.where(OutboxMessage.priority.in_(sorted(priorities)))
    if skip_destinations:
        query = query.where(OutboxMessage.destination.not_in(sorted(skip_destinations)))
    due = session.scalars(query.order_by(OutboxMessage.priority, OutboxMessage.next_attempt_at)
                          .limit(limit).with_for_update(skip_locked=True)).all()
    taken = [message for message in due if take(message.destination)]
    vault.prefetch(session, [m.subject_id for m in taken if m.subject_id])  # one query for the batch's keys
    claimed: list[Claimed] = []
    for message in taken:
        try:
            rendered: Rendered | SubjectErased = _render(session, vault, message)
        except SubjectErased as exc:
            rendered = exc
        claimed.append(Claimed(message.id, message.destination, rendered))
        message.next_attempt_at = utcnow() + claim_for
    return claimed


def send_one(notifier: Notifier, claimed: Claimed) -> Outcome:
    """Send a claimed message (no transaction open): its outcome, to record."""
    if isinstance(claimed.rendered, SubjectErased):
        return claimed.message_id, claimed.rendered
    channel = notifier.channels.get(claimed.rendered.channel)
    try:
        if channel is None:
            raise PermanentError(f"no {claimed.rendered.channel} channel is configured")
        channel.send(claimed.rendered)
    except (PermanentError, TransientError) as exc:
        return claimed.message_id, exc
    return claimed.message_id, None


def record_outcomes(session: Session, *, notifier: Notifier, outcomes: list[Outcome]) -> DispatchResult:
    """Mark each message sent, to retry later, or dead."""
    result = DispatchResult()
    if not outcomes:
        return result
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
            stored.status, stored.last_error = "dead", ERASED_RECIPIENT
            result.dead += 1
        elif isinstance(error, PermanentError):
            stored.status, stored.last_error = "dead", str(error)[:500]
            stored.attempts += 1
            result.dead += 1
        else:
            _retry_later(notifier, stored, str(error), result)
    return result


def _send_each(notifier: Notifier, share: list[Claimed]) -> list[Outcome]:
    return [send_one(notifier, item) for item in share]


def send_all(notifier: Notifier, claimed: list[Claimed]) -> list[Outcome]:
    """Send a claimed batch: each destination's messages dealt to at most `notifier.concurrency` threads of
    their own, every destination at once (a slow receiver delays only its own messages)."""
    if len(claimed) <= 1:
        return _send_each(notifier, claimed)
    by_destination: dict[str, list[Claimed]] = defaultdict(list)
    for item in claimed:
        by_destination[item.destination].append(item)
    shares = [items[start::threads] for items in by_destination.values()
              for threads in [min(notifier.concurrency, len(items))] for start in range(threads)]
    with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="outbox-send") as pool:
        futures = [pool.submit(_send_each, notifier, share) for share in shares]
        return [outcome for future in futures for outcome in future.result()]


def dispatch_due(factory: sessionmaker[Session], *, vault: Vault, notifier: Notifier,
                 claim_for: timedelta = CLAIM_FOR) -> DispatchResult:
    """Send one batch of what is due, at least once, emergency lane first. Claim (short transaction), send
    with no transaction open, then record the outcome (short transaction): a slow SMS provider never holds
    the database. A claim lapses after `claim_for`: a worker that dies mid-send leaves its messages to the
    others. (`senders.OutboxSenders` does this continuously, without waiting for a batch's slowest send.)"""
    with unit_of_work(factory) as session:
        claimed = claim_due(session, vault=vault, limit=notifier.batch, claim_for=claim_for)
    outcomes = send_all(notifier, claimed)
    if not outcomes:
        return DispatchResult()
    with unit_of_work(factory) as session:
        return record_outcomes(session, notifier=notifier, outcomes=outcomes)


def dispatch_backlog(factory: sessionmaker[Session], *, vault: Vault, notifier: Notifier,
                     rounds: int = 20, claim_for: timedelta = CLAIM_FOR) -> DispatchResult:
    """`dispatch_due` again while it finds a full batch (a burst of SOS messages), at most `rounds` times."""
    total = DispatchResult()
    for _ in range(rounds):
        result = dispatch_due(factory, vault=vault, notifier=notifier, claim_for=claim_for)
        total.add(result)
        if result.handled < notifier.batch:
            break
    return total


@dataclass(frozen=True)
class Delivery:
    """Where a queued message stands, without its content: pending (queued or retrying), sent, dead."""

    status: str
    attempts: int
    sent_at: datetime | None


def deliveries(session: Session, *, idempotency_keys: list[str]) -> dict[str, Delivery]:
    """The messages queued under these keys (a case page shows who was told, and the police dispatch)."""
    if not idempotency_keys:
        return {}
    rows = session.execute(select(OutboxMessage.idempotency_key, OutboxMessage.status, OutboxMessage.attempts,
                                  OutboxMessage.sent_at).where(OutboxMessage.idempotency_key.in_(idempotency_keys)))
    return {key: Delivery(status, attempts, sent_at) for key, status, attempts, sent_at in rows}


def recording_channels(notifier: Notifier) -> list[str]:
    """The channels that only record (SMS, e-mail, push, the emergency gateway until adapters exist)."""
    return sorted(name for name, channel in notifier.channels.items()
                  if isinstance(channel, RecordingChannel))


def recorded_messages(notifier: Notifier) -> Select[Any]:
    """The outbox's messages on the recording channels (a narrower query for the console's list)."""
    return select(OutboxMessage).where(OutboxMessage.channel.in_(recording_channels(notifier)))
