"""Trip sharing: a link shows only what it should, is audited, and dies 24 h after arrival or on revocation."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.safety.test_sos_api import on_a_trip
from tests.telematics.test_ingest_api import ndjson, post
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.safety import shares
from tripguard.safety.models import TripShare
from tripguard.security.permissions import Role
from tripguard.telematics.models import Trip


def share(client: TestClient, act_as, db: Session) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    created = client.post("/api/v1/trips/T1/shares")
    assert created.status_code == 201, created.text
    body = created.json()
    return body["id"], body["url"].removeprefix("http://127.0.0.1:8000")


def test_the_page_shows_what_is_listed_and_nothing_else(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    _, path = share(client, act_as, db)
    client.cookies.clear()
    act_as()  # nobody signed in
    page = client.get(path, headers={"accept-language": "zh-CN"})
    assert page.status_code == 200 and page.headers["x-robots-tag"].startswith("noindex")
    html = page.text.replace(path.rsplit("/", 1)[-1], "<token>")  # a random token may spell "D1"
    assert 'name="robots" content="noindex' in html
    assert "粤B12345" in html and "BYD Qin" in html
    assert "王小明" not in html and "13800001234" not in html and "P1" not in html and "D1" not in html
    assert 'data-testid="shared-by">王** 与您分享了本次行程。<' in html  # who shared it, masked
    assert 'href="tel:110"' in html and "经度, 纬度" in html  # a call button; coordinates labelled
    position = client.get(f"{path}/position").json()
    assert position["arrived"] is False and position["position"][1] == 41.14
    assert position["at"].endswith("+00:00")  # the device's time, in UTC
    views = db.scalars(select(AuditEntry).where(AuditEntry.action == "share.view")).all()
    assert len(views) == 2 and views[0].actor_type == "share"


def test_revoked_or_a_day_after_arrival_the_link_is_gone(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    share_id, path = share(client, act_as, db)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson([{"type": "trip_ended", "trip_id": "T1", "ts": "2026-03-01T08:02:00Z"}]))
    trip = db.get(Trip, "T1")
    assert trip is not None and trip.ended_at is not None
    trip.ended_at = trip.ended_at.replace(year=2099)  # arrived "now": the link still works
    db.commit()
    arrived = client.get(path, headers={"accept-language": "en"})
    assert arrived.status_code == 200 and "Arrived." in arrived.text
    trip.ended_at = trip.ended_at.replace(year=2000)  # arrived long ago
    db.commit()
    assert client.get(path).status_code == 410
    trip.ended_at = None
    trip.status = "active"
    db.commit()
    assert client.get(path).status_code == 200
    act_as(Role.PASSENGER, kind="subject", id="P1")
    assert client.delete(f"/api/v1/trips/T1/shares/{share_id}").status_code == 204
    assert client.get(path).status_code == 410
    assert db.get(TripShare, share_id).revoked_at is not None  # type: ignore[union-attr]


def test_only_the_trips_people_can_share_it_and_the_token_is_not_stored(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                        act_as) -> None:
    share_id, path = share(client, act_as, db)
    token = path.removeprefix("/s/")
    assert token not in db.get(TripShare, share_id).token_hash  # type: ignore[union-attr]
    act_as(Role.PASSENGER, kind="subject", id="P9")
    assert client.post("/api/v1/trips/T1/shares").status_code == 404
    assert client.get("/s/" + "x" * 32).status_code == 404


def test_sos_sends_the_contacts_a_live_link(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    from tripguard.notify.service import dispatch_due
    from tripguard.safety.models import EmergencyContact

    on_a_trip(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    contact_id = client.post("/api/v1/me/contacts", json={"name": "王芳", "phone": "13800005678"}).json()["id"]
    contact = db.get(EmergencyContact, contact_id)
    contact.verified_at = contact.created_at - timedelta(seconds=1)  # type: ignore[union-attr]
    db.commit()
    client.post("/api/v1/sos", json={})
    dispatch_due(lambda: db, vault=app.state.vault, notifier=app.state.notifier)  # type: ignore[arg-type]
    sms = [m for m in app.state.notifier.channels["sms"].sent if "一键求助" in m.body]
    assert len(sms) == 1 and "/s/" in sms[0].body
    link = sms[0].body.split("实时行程：")[1].split(" ")[0]
    act_as()
    assert client.get(link.removeprefix("http://127.0.0.1:8000")).status_code == 200


def test_contacts_who_asked_get_a_link_when_a_trip_starts(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    from tripguard.notify.models import OutboxMessage
    from tripguard.safety.models import EmergencyContact

    act_as(Role.PASSENGER, kind="subject", id="P1")
    ids = {}
    for name, phone, when in (("甲", "13800000001", "always"), ("乙", "13800000002", "night"),
                              ("丙", "13800000003", "never")):
        ids[when] = client.post("/api/v1/me/contacts", json={"name": name, "phone": phone,
                                                              "auto_share": when}).json()["id"]
    for contact in db.scalars(select(EmergencyContact)):
        contact.verified_at = contact.created_at
    db.commit()
    assert client.patch(f"/api/v1/me/contacts/{ids['never']}", json={"auto_share": "bogus"}).status_code == 422
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    # 12:00 in Beijing
    day = {"type": "trip_started", "trip_id": "DAY", "ts": "2026-03-01T04:00:00Z", "passenger_id": "P1"}
    night = {"type": "trip_started", "trip_id": "NIGHT", "ts": "2026-03-01T15:30:00Z", "passenger_id": "P1"}  # 23:30
    post(client, ndjson([day, night]))
    post(client, ndjson([day]))  # re-sent: no second message
    sent = db.scalars(select(OutboxMessage).where(OutboxMessage.template == "trip_share")).all()
    keys = sorted(m.idempotency_key for m in sent)
    assert keys == sorted([f"auto-share:DAY:{ids['always']}", f"auto-share:NIGHT:{ids['always']}",
                           f"auto-share:NIGHT:{ids['night']}"])
    assert {s.trip_id for s in db.scalars(select(TripShare))} == {"DAY", "NIGHT"}


def test_a_dead_link_is_a_page_in_the_readers_language(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    share_id, path = share(client, act_as, db)
    act_as(Role.PASSENGER, kind="subject", id="P1")
    client.delete(f"/api/v1/trips/T1/shares/{share_id}")
    gone = client.get(path, headers={"accept-language": "zh-CN"})
    assert gone.status_code == 410 and gone.headers["content-type"].startswith("text/html")
    assert "该链接已失效" in gone.text
    assert client.get(f"{path}/position").headers["content-type"].startswith("application/problem+json")


def test_erasing_the_passenger_kills_their_links_and_blocks_the_trip_data(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                           act_as) -> None:
    """PIPL Art. 47: links die; trip data kept by law stays, open only for legal claims and investigations."""
    _, path = share(client, act_as, db)
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    erased = client.post("/api/v1/subjects/P1/erase", json={"reason": "subject_request"})
    assert erased.status_code == 200, erased.text
    kept = erased.json()["retained"]
    assert kept[0]["what"] == "trips" and kept[0]["ids"] == ["T1"]
    assert kept[0]["open_only_for"] == ["investigation", "legal_claims"] and kept[0]["kept_until"] > "2027"
    client.cookies.clear()
    act_as()
    assert client.get(path).status_code == 410
    act_as(Role.INVESTIGATOR, id="stf_INV")
    blocked = client.get("/api/v1/telematics/trips/T1/trajectory", params={"purpose": "emergency", "reason": "check"})
    assert blocked.status_code == 403 and "legal claims" in blocked.json()["detail"]
    allowed = client.get("/api/v1/telematics/trips/T1/trajectory", params={"purpose": "legal_claims",
                                                                           "reason": "court order 7"})
    assert allowed.status_code == 200


def test_the_place_names_the_operator_sent_are_shown(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    on_a_trip(client, act_as, db)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson([{"type": "trip_started", "trip_id": "T-NAMED", "ts": "2026-03-01T09:00:00Z",
                          "passenger_id": "P1", "pickup": [116.40, 39.90], "dropoff": [116.45, 39.91],
                          "pickup_name": "国贸地铁站 A 口", "dropoff_name": "<b>Gate 3</b>"}]))
    trip = db.get(Trip, "T-NAMED")
    assert trip is not None and trip.plan is not None and "国贸".encode() not in trip.plan  # sealed with the plan
    act_as(Role.PASSENGER, kind="subject", id="P1")
    path = client.post("/api/v1/trips/T-NAMED/shares").json()["url"].removeprefix("http://127.0.0.1:8000")
    act_as()
    html = client.get(path, headers={"accept-language": "zh-CN"}).text
    assert "国贸地铁站 A 口" in html and "&lt;b&gt;Gate 3&lt;/b&gt;" in html and "<b>Gate" not in html


def test_views_are_counted_after_the_request_once_a_minute(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    """Family members polling one link never queue on its row: its count is bookkeeping (core.bookkeeping),
    written after the request's own transaction, at most once a minute per link; the rest is tallied."""
    share_id, path = share(client, act_as, db)
    act_as()
    for _ in range(3):
        assert client.get(f"{path}/position").status_code == 200
    db.expire_all()
    assert db.get(TripShare, share_id).views == 1  # type: ignore[union-attr]
    assert app.state.share_views.take(share_id) == 2  # written with the next one due


def test_an_erased_persons_still_valid_token_shares_nothing_and_no_link_shows_their_trip(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as) -> None:
    """The operator's app may still hold a token minted before the erasure: it makes no new link, and a link
    that exists anyway (made outside the API, or by an older copy of the data) shows nothing."""
    share(client, act_as, db)
    act_as(Role.PRIVACY_OFFICER, id="stf_DPO")
    assert client.post("/api/v1/subjects/P1/erase", json={"reason": "subject_request"}).status_code == 200
    act_as(Role.PASSENGER, kind="subject", id="P1")  # a token the app minted before the erasure, still valid
    refused = client.post("/api/v1/trips/T1/shares")
    assert refused.status_code == 410 and refused.json()["type"].endswith("/problems/share-gone"), refused.text
    trip = db.get(Trip, "T1")
    assert trip is not None
    _, token = shares.create(db, secret_key="test-secret-key-0123456789abcdef0123456789", trip=trip,
                             created_by="sos:inc_1")
    db.flush()
    for share_row in db.scalars(select(TripShare).where(TripShare.trip_id == "T1")):
        share_row.created_by, share_row.revoked_at = "subject:P1", None  # as if an older copy of the data
    db.commit()
    act_as()
    assert client.get(f"/s/{token}").status_code == 410
    assert client.get(f"/s/{token}/position").status_code == 410


def test_the_link_lives_24_hours_after_arrival_and_not_a_minute_more(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                     act_as) -> None:
    _, path = share(client, act_as, db)
    trip = db.get(Trip, "T1")
    assert trip is not None
    trip.status = "ended"
    for ago, status in ((timedelta(hours=23, minutes=59), 200), (timedelta(hours=24, minutes=1), 410),
                        (timedelta(hours=1), 200), (timedelta(hours=25), 410)):
        trip.ended_at = utcnow() - ago
        db.commit()
        assert client.get(path).status_code == status, ago
    assert timedelta(hours=24) == shares.LIVES_AFTER_ARRIVAL
