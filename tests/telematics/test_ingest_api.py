"""Event ingest over HTTP: batches, line errors, safe re-sends, alerts stored once and sent on."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import drain
from tripguard.core.clock import utcnow
from tripguard.notify.models import OutboxMessage
from tripguard.security.permissions import Role
from tripguard.telematics.models import TripAlert

ROUTE = [[-8.61 + i * 0.001, 41.14] for i in range(30)]

pytestmark = pytest.mark.drain_by_hand


def trip_with_deviation(trip_id: str = "T1") -> list[dict[str, object]]:
    events: list[dict[str, object]] = [{"type": "trip_started", "trip_id": trip_id, "ts": "2026-03-01T08:00:00Z",
                                        "vehicle_id": "V1", "pickup": ROUTE[0], "dropoff": ROUTE[-1], "route": ROUTE}]
    for n in range(12):
        lat = 41.14 + (0.006 if n >= 4 else 0.0)  # ~670 m north of the route from the fifth ping on
        events.append({"type": "ping", "trip_id": trip_id, "ts": f"2026-03-01T08:0{n * 15 // 60}:{n * 15 % 60:02d}Z",
                       "lon": ROUTE[n][0], "lat": lat})
    return events


def ndjson(events: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def post(client: TestClient, body: bytes, content_type: str = "application/x-ndjson"):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/telematics/events", content=body, headers={"content-type": content_type})


def test_ndjson_batch_raises_and_stores_an_alert(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"webhook_url": "http://127.0.0.1:9/hooks"})
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    report = post(client, ndjson(trip_with_deviation())).json()
    assert report == {"accepted": 13, "rejected": [], "alerts": 0}  # the monitor raises it just after
    assert len(drain(app)) == 1
    alert = db.scalars(select(TripAlert)).one()
    assert (alert.trip_id, alert.kind, alert.severity) == ("T1", "route_deviation", "high")
    webhook = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "webhook")).one()
    assert webhook.content["payload"]["kind"] == "route_deviation"  # type: ignore[index]


def test_resending_a_batch_changes_nothing(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    body = ndjson(trip_with_deviation())
    post(client, body)
    assert len(drain(app)) == 1
    post(client, body)
    assert drain(app) == []
    assert len(db.scalars(select(TripAlert)).all()) == 1


def test_bad_lines_are_named_and_the_good_ones_kept(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    lines = ndjson(trip_with_deviation()[:3]).decode().splitlines()
    lines.insert(1, '{"type": "ping", "trip_id": "T1", "ts": "yesterday", "lon": 1, "lat": 1}')
    lines.insert(3, "not json at all")
    report = post(client, ("\n".join(lines) + "\n").encode()).json()
    assert report["accepted"] == 3
    assert [r["line"] for r in report["rejected"]] == [2, 4]
    assert "RFC 3339" in report["rejected"][0]["reason"]


def test_json_array_is_accepted(client: TestClient, act_as, app) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    response = post(client, json.dumps(trip_with_deviation("T2")).encode(), "application/json")
    assert response.status_code == 200 and response.json()["accepted"] == 13
    assert len(drain(app)) == 1


def test_nothing_valid_is_a_422_naming_the_lines(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    response = post(client, b'{"type": "ping"}\n[1, 2]\n')
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["line 1", "line 2"]
    assert post(client, b"\n\n").status_code == 422


def test_staff_read_alerts_but_cannot_ingest(client: TestClient, act_as, app) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation()))
    drain(app)
    act_as(Role.SAFETY_AGENT)
    assert post(client, ndjson(trip_with_deviation("T3"))).status_code == 403
    alerts = client.get("/api/v1/telematics/alerts", params={"trip_id": "T1"}).json()
    assert [a["kind"] for a in alerts] == ["route_deviation"]


def test_a_restart_picks_up_the_trips_under_way(client: TestClient, db: Session, act_as, app, settings,  # type: ignore[no-untyped-def]
                                                session_factory) -> None:
    from tripguard.app import create_app
    from tripguard.security.auth import resolve_principal

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = trip_with_deviation()
    post(client, ndjson(events[:6]))
    assert drain(app) == []  # off the route since the fifth ping
    restarted = create_app(settings, session_factory=session_factory)
    restarted.dependency_overrides[resolve_principal] = app.dependency_overrides[resolve_principal]
    with TestClient(restarted, base_url="http://testserver") as after:
        post(after, ndjson(events[6:]))
        assert len(drain(restarted)) == 1
    alert = db.scalars(select(TripAlert)).one()
    assert alert.kind == "route_deviation" and alert.evidence["since"] == "2026-03-01T08:01:00Z"


def test_an_alert_whose_batch_failed_is_stored_with_the_next(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                              monkeypatch, app) -> None:
    """A slice whose transaction fails is applied again from the checkpoint (what the monitor thread does on
    any failure): its alert is raised again and stored once."""
    import pytest

    from tripguard.telematics.store import trips

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    real_record = trips.record

    def fail_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(trips, "record", real_record)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(trips, "record", fail_once)
    assert post(client, ndjson(trip_with_deviation())).status_code == 200
    with pytest.raises(RuntimeError):
        drain(app)
    assert db.scalars(select(TripAlert)).all() == []
    app.state.embedded_monitor.recover()
    beat = {"type": "device_heartbeat", "device_id": "DEV1", "vehicle_id": "V1", "ts": "2026-03-01T08:02:50Z"}
    post(client, ndjson([beat]))
    assert len(drain(app)) == 1
    assert db.scalars(select(TripAlert)).one().kind == "route_deviation"


def test_an_idempotency_key_answers_a_retry_with_the_first_report(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                  act_as, app) -> None:
    from tripguard.telematics.models import Trip

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    body = ndjson(trip_with_deviation())
    headers = {"content-type": "application/x-ndjson", "Idempotency-Key": "batch-0001"}
    first = client.post("/api/v1/telematics/events", content=body, headers=headers).json()
    again = client.post("/api/v1/telematics/events", content=body, headers=headers).json()
    assert first == again == {"accepted": 13, "rejected": [], "alerts": 0}
    assert len(drain(app)) == 1
    assert db.get(Trip, "T1").points == 12  # type: ignore[union-attr]  # the retry was not processed
    post(client, body)  # without a key the content decides: nothing new
    assert drain(app) == []
    bad = client.post("/api/v1/telematics/events", content=body,
                      headers={"content-type": "application/x-ndjson", "Idempotency-Key": "x" * 129})
    assert bad.status_code == 422


def test_a_resent_ping_is_counted_once_when_the_trip_ends(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    from tripguard.telematics.models import Trip

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = trip_with_deviation()
    post(client, ndjson(events[:8]))
    post(client, ndjson(events[4:]))  # pings 4-7 sent twice
    post(client, ndjson([{"type": "trip_ended", "trip_id": "T1", "ts": "2026-03-01T08:03:00Z"}]))
    drain(app)
    assert db.get(Trip, "T1").points == 12  # type: ignore[union-attr]


def test_the_operator_sets_the_thresholds(settings, session_factory) -> None:  # type: ignore[no-untyped-def]
    import pytest
    from pydantic import ValidationError

    from tripguard.app import create_app
    from tripguard.security.auth import resolve_principal
    from tripguard.security.principal import Principal

    with pytest.raises(ValidationError, match="unknown monitor thresholds"):
        settings.model_validate({**settings.model_dump(), "monitor_thresholds": {"stop_minutes": 5}})
    patient = create_app(settings.model_copy(update={"monitor_thresholds": {"deviation_seconds": 600}}),
                         session_factory=session_factory)
    principal = Principal.for_roles("api_key", "key_TEST", frozenset({Role.INTEGRATION}), name="Test")  # type: ignore[arg-type]
    patient.dependency_overrides[resolve_principal] = lambda: principal
    with TestClient(patient, base_url="http://testserver") as client:
        post(client, ndjson(trip_with_deviation()))
        assert drain(patient) == []  # off the route 105 s < 600 s


def test_events_outside_a_plausible_window_are_refused_per_line(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    """A trip_started dated 9999 once moved the watermark and raised 135 false gps_lost alerts."""
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    events = [
        *trip_with_deviation("T1")[:3],
        {"type": "trip_started", "trip_id": "T9999", "ts": "9999-12-31T23:59:59Z"},
        {"type": "trip_started", "trip_id": "T2199", "ts": "2199-01-01T00:00:00Z"},  # plausible year, a day off
        {"type": "ping", "trip_id": "T1", "ts": "2026-03-01T08:00:20+23:59", "lon": -8.61, "lat": 41.14},
        {"type": "ping", "trip_id": "T1", "ts": "9999-12-31T23:59:59-14:00", "lon": -8.61, "lat": 41.14},
        {"type": "trip_started", "trip_id": "bad id\u0000", "ts": "2026-03-01T08:00:00Z"},
    ]
    report = post(client, ndjson(events))
    assert report.status_code == 200, report.text
    reasons = {r["line"]: r["reason"] for r in report.json()["rejected"]}
    assert set(reasons) == {4, 5, 6, 7, 8}, reasons
    assert "1970 and 2200" in reasons[4] and "a day ahead" in reasons[5] and "offset" in reasons[6]
    assert "id" in reasons[8]
    assert report.json()["accepted"] == 3
    drain(app)
    assert db.scalars(select(TripAlert).where(TripAlert.kind == "gps_lost")).all() == []
    ahead = (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = post(client, ndjson([{"type": "trip_started", "trip_id": "TF", "ts": ahead}]))
    assert future.status_code == 422 and "ahead of the server's clock" in future.text


def test_the_replay_refuses_the_same_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from tripguard.cli import app as cli

    events = [*trip_with_deviation("T1"), {"type": "trip_started", "trip_id": "T9", "ts": "2031-01-01T00:00:00Z"}]
    file = tmp_path / "events.ndjson"
    file.write_bytes(ndjson(events))
    result = CliRunner().invoke(cli, ["monitor", "replay", str(file)])
    assert result.exit_code == 1 and "line 14: ts is more than a day ahead" in result.output
    assert "gps_lost" not in result.output


def test_nested_json_and_extreme_offsets_are_4xx_not_5xx(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    deep = b"[" * 100_000 + b"]" * 100_000
    assert post(client, deep, content_type="application/json").status_code == 422
    assert post(client, b'{"type":"ping","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n").status_code == 422
    act_as(Role.AUDIT_ADMIN)
    for when in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-03-01T08:00:00+99:00"):
        assert client.get("/api/v1/audit/entries", params={"since": when}).status_code == 422, when


def test_ingest_reads_lines_as_the_line_parser_does(client: TestClient, act_as, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The server reads a batch with the replay reader (Arrow), and answers as the line parser would."""
    from tripguard.telematics.ingest import reader
    from tripguard.telematics.ingest.columns import parse_ndjson_columns

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    used = []
    monkeypatch.setattr(reader, "take_rows", lambda *a: used.append(1) or _take_rows(*a))
    good = [json.dumps(e) for trip in ("T7", "T8", "T9") for e in trip_with_deviation(trip)]  # enough to halve
    lines = [*good[:4], '{"type":"ping","trip_id":"T7","ts":"2026-03-01T08:00:20Z","lon":"x","lat":1}',
             '{"type":"ping","trip_id":"T7","ts":"2026-03-01T08:00:21Z","lon":1,"lat":1,"x":Inf}', "null",
             '{"type":"ping","trip_id":"T7","ts":"2026-03-01T08:00:22Z","lon":1,"lat":1,"lat":2}', *good[4:]]
    report = post(client, "\n".join(lines).encode()).json()
    expected_columns, expected = parse_ndjson_columns(lines)
    assert used, "the reader's Arrow path ran"
    assert report["accepted"] == len(expected_columns) == len(good) + 1  # a repeated key: the last one counts
    assert [(r["line"], r["reason"]) for r in report["rejected"]] == [(e.line, e.reason) for e in expected]
    assert [r["line"] for r in report["rejected"]] == [5, 6, 7]


from tripguard.telematics.ingest.arrow_rows import take_rows as _take_rows  # noqa: E402  the original, for the spy above


def test_events_too_old_to_take_are_refused_per_line(client: TestClient, db: Session, act_as, app) -> None:  # type: ignore[no-untyped-def]
    """A trip_started dated 1970-01-01 was taken and raised a false gps_lost (issue #27): an event more than the
    allowed lateness behind the stream, a day behind its batch, or before its trip began is a line error."""
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert post(client, ndjson(trip_with_deviation("T1")[:3])).json()["accepted"] == 3
    old = post(client, ndjson([
        {"type": "trip_started", "trip_id": "T1970", "ts": "1970-01-01T00:00:00Z"},
        {"type": "ping", "trip_id": "T1", "ts": "2026-03-01T06:59:59Z", "lon": -8.61, "lat": 41.14},  # 1 h late
        {"type": "ping", "trip_id": "T1", "ts": "2026-03-01T07:59:00Z", "lon": -8.61, "lat": 41.14},  # before start
        {"type": "trip_started", "trip_id": "T2", "ts": "2026-03-01T08:00:40Z"},
        {"type": "ping", "trip_id": "T2", "ts": "2026-03-01T08:00:35Z", "lon": -8.61, "lat": 41.14},  # before T2
        {"type": "ping", "trip_id": "T1", "ts": "2026-03-01T07:30:00Z", "lon": -8.61, "lat": 41.14}]))
    # (the last: 30 minutes late is within the hour, but before T1 began at 08:00)
    assert old.status_code == 200, old.text
    reasons = {r["line"]: r["reason"] for r in old.json()["rejected"]}
    assert set(reasons) == {1, 2, 3, 5, 6}, reasons
    assert "behind the stream" in reasons[2] and "1 h" in reasons[2]
    assert all("before its trip began" in reasons[n] for n in (3, 5, 6)), reasons
    assert "behind" in reasons[1]
    post(client, ndjson([{"type": "ping", "trip_id": "T1", "ts": "2026-03-01T08:05:00Z", "lon": -8.61, "lat": 41.14}]))
    drain(app)
    assert db.scalars(select(TripAlert).where(TripAlert.trip_id == "T1970")).all() == []
    # Alone in its batch, the 1970 trip is still refused, by the stream this process has seen.
    alone = post(client, ndjson([{"type": "trip_started", "trip_id": "T1970", "ts": "1970-01-01T00:00:00Z"}]))
    assert alone.status_code == 422 and "behind the stream" in alone.text
    # A day behind the rest of its batch is a broken clock, whatever the stream.
    assert "a day behind" in post(client, ndjson([
        {"type": "trip_started", "trip_id": "T3", "ts": "2026-03-01T08:06:00Z"},
        {"type": "trip_started", "trip_id": "T4", "ts": "2026-03-01T08:06:00Z"},
        {"type": "trip_started", "trip_id": "T5", "ts": "2026-02-27T08:06:00Z"}])).json()["rejected"][0]["reason"]


def test_scale_out_refuses_the_same_lines_by_the_replicas_own_stream(db: Session) -> None:
    """Scaled out, the API replica checks the batch before publishing it (`service.accept`): the same three rules,
    against the newest event time this replica took (`NatsBus.mark`) and the stored trips."""
    from tripguard.telematics import service
    from tripguard.telematics.ingest import lateness

    stored = [json.dumps(e) for e in trip_with_deviation("T1")[:2]]
    first = service.accept(stored, 4)
    assert first.accepted == 2 and first.mark > 0
    lines = [json.dumps({"type": "trip_started", "trip_id": "T1970", "ts": "1970-01-01T00:00:00Z"}),
             json.dumps({"type": "ping", "trip_id": "T9", "ts": "2026-03-01T07:59:00Z", "lon": 1, "lat": 1}),
             json.dumps({"type": "ping", "trip_id": "T9", "ts": "2026-03-01T08:01:00Z", "lon": 1, "lat": 1})]
    later = service.accept(lines, 4, mark=first.mark, max_lateness=3600,
                           starts=lambda ids: {"T9": first.mark} if "T9" in ids else {})
    assert later.accepted == 1 and later.mark > first.mark
    assert [(e.line, e.reason.split(" (")[0]) for e in later.rejected] == [
        (1, "ts is more than a day behind the rest of the batch"), (2, "ts is before its trip began")]
    alone = service.accept([lines[0]], 4, mark=later.mark)
    assert alone.accepted == 0 and "behind the stream" in alone.rejected[0].reason
    assert lateness.stored_starts(db)(["T404"]) == {}
