"""The live streams' protocol (console.streams): ids on every event, heartbeats, catch-up from the last
event id, resync when a viewer falls behind, and a cursor from a stranger never breaks anything."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx2 as httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import (
    PASSWORD,
    TEST_ACTOR,
    sign_as_staff,
    sign_in_with_enrolment,
    subject_token,
)
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.console import streams
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.fanout import RESYNC
from tripguard.security import service
from tripguard.security.permissions import Role
from tripguard.telematics.detection.feed import LiveFeed

Event = dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("streams")
    database_url = fresh_database(f"tg_streams_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", tmp)
    settings = make_settings(database_url, Path(tmp) / "keys")
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        sign_as_staff(session, service.create_staff(session, actor=TEST_ACTOR, username="agent.wu", display_name="吴",
                                                    password=PASSWORD, roles={Role.SAFETY_AGENT}))
        service.create_staff(session, actor=TEST_ACTOR, username="trainer.he", display_name="何", password=PASSWORD,
                             roles={Role.TRAINER})
        session.commit()
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def agent(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        sign_in_with_enrolment(client, "agent.wu")  # type: ignore[arg-type]
        yield client


def read_events(client: httpx.Client, url: str, *, until: str | None = None, count: int = 50,
                headers: dict[str, str] | None = None) -> list[Event]:
    """The stream's events, until one of kind `until` (or `count` of them)."""
    events: list[Event] = []
    current: Event = {}
    with client.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(":")
                current[name] = value.strip()
                continue
            if not current:
                continue
            events.append({"event": "message", **current})
            current = {}
            if events[-1]["event"] == until or len(events) >= count:
                break
    return events


def press_sos(server: str, key: str) -> str:
    """A press by a passenger of their own (one with a case open gets that case back)."""
    press = httpx.post(f"{server}/api/v1/sos", json={"lon": 116.4, "lat": 39.9},
                       headers={"Authorization": f"Bearer {subject_token(f'psg_{key}')}", "Idempotency-Key": key},
                       timeout=10)
    assert press.status_code == 201, press.text
    return str(press.json()["incident_id"])


def cases(events: list[Event]) -> list[str]:
    return [json.loads(e["data"])["id"] for e in events if e["event"] == "message"]


def test_every_event_carries_an_id_and_a_quiet_stream_sends_heartbeats(
        agent: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "HEARTBEAT_SECONDS", 0.2)
    events = read_events(agent, "/console/incidents/stream", count=4)
    assert [e["event"] for e in events] == ["hello", "heartbeat", "heartbeat", "heartbeat"]
    hello = json.loads(events[0]["data"])
    assert hello["heartbeat_s"] == 0.2 and isinstance(hello["open"], list)
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and ids[-1] > ids[0]
    assert abs(ids[0] / 1000 - datetime.now(UTC).timestamp()) < 60  # a cursor is the server's clock, in ms


def test_a_viewer_back_from_a_gap_is_sent_the_cases_opened_during_it(
        agent: httpx.Client, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "HEARTBEAT_SECONDS", 0.3)
    cursor = read_events(agent, "/console/incidents/stream", until="hello")[-1]["id"]
    missed = press_sos(server, "gap-1")  # published while nobody watched: only the catch-up can show it

    by_header = read_events(agent, "/console/incidents/stream", until="heartbeat",
                            headers={"Last-Event-ID": cursor})
    assert missed in cases(by_header)
    assert missed in json.loads(by_header[0]["data"])["open"]  # and it waits for an agent
    assert missed in [item["id"] for item in json.loads(by_header[0]["data"])["live"]]  # the map marks its trip
    by_query = read_events(agent, f"/console/incidents/stream?last_event_id={cursor}", until="heartbeat")
    assert missed in cases(by_query)
    without = read_events(agent, "/console/incidents/stream", until="heartbeat")
    assert cases(without) == []  # a first connection gets state (hello), not history

    later = by_header[-1]["id"]  # a cursor after the press, beyond the catch-up margin
    monkeypatch.setattr(streams, "CATCH_UP_MARGIN", timedelta(0))
    assert missed not in cases(read_events(agent, "/console/incidents/stream", until="heartbeat",
                                           headers={"Last-Event-ID": later}))


def test_a_live_case_arrives_on_an_open_stream(agent: httpx.Client, server: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setattr(streams, "HEARTBEAT_SECONDS", 5)
    pressed: list[str] = []
    timer = threading.Timer(0.5, lambda: pressed.append(press_sos(server, "live-1")))
    timer.start()
    events = read_events(agent, "/console/incidents/stream", count=2)
    timer.join()
    assert events[1]["event"] == "message" and cases(events) == pressed


@pytest.mark.parametrize("cursor", ["", "abc", "١٢٣", "-5", "1" * 14, "99999999999999", "12.5", "0x10", "\ud800"])
def test_a_cursor_not_ours_is_ignored_and_never_an_error(agent: httpx.Client, cursor: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "HEARTBEAT_SECONDS", 0.1)
    raw = cursor.encode("utf-8", "surrogatepass")
    as_header = read_events(agent, "/console/incidents/stream", until="heartbeat",
                            headers={"Last-Event-ID": raw})  # type: ignore[dict-item]
    as_query = read_events(agent, "/console/incidents/stream?" + urlencode({"last_event_id": raw}), until="heartbeat")
    assert as_header[0]["event"] == as_query[0]["event"] == "hello"


@given(st.text(max_size=20))
def test_since_cursor_is_none_or_inside_the_catch_up_window(value: str) -> None:
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    since = streams.since_cursor(value, now=now)
    assert since is None or now - streams.CATCH_UP_HORIZON <= since <= now - streams.CATCH_UP_MARGIN


def test_since_cursor_clamps_the_future_and_the_distant_past() -> None:
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    ms = int(now.timestamp() * 1000)
    assert streams.since_cursor(str(ms), now=now) == now - streams.CATCH_UP_MARGIN
    assert streams.since_cursor(str(ms + 3_600_000), now=now) == now - streams.CATCH_UP_MARGIN
    assert streams.since_cursor("0", now=now) == now - streams.CATCH_UP_HORIZON
    assert streams.since_cursor(str(ms - 60_000), now=now) == now - timedelta(minutes=1) - streams.CATCH_UP_MARGIN


def test_only_case_handlers_open_the_case_stream(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as trainer:
        signed = trainer.post("/api/v1/auth/sign-in", json={"username": "trainer.he", "password": PASSWORD})
        assert signed.json()["status"] == "signed_in"
        assert trainer.get("/console/incidents/stream").status_code == 403
    assert httpx.get(f"{server}/console/incidents/stream", timeout=10, follow_redirects=False).status_code == 303


def test_a_viewer_that_falls_behind_is_told_to_resync_instead_of_losing_a_case() -> None:
    async def scenario() -> list[object]:
        feed = LiveFeed()
        queue = feed.open_viewer(frozenset({"incident", "position"}))
        feed.apply([{"type": "incident", "id": "inc_1"}])
        feed.apply([{"type": "position", "trip_id": "T", "lon": 0, "lat": 0, "ts": "x"}] * 1000)
        feed.apply([{"type": "trip_ended", "trip_id": "T"}])  # not a kind this viewer takes
        await asyncio.sleep(0)
        return [queue.get_nowait() for _ in range(queue.qsize())]

    received = asyncio.run(scenario())
    # The case went with the flood, and the viewer knows to read what it missed afresh.
    assert received[0] is RESYNC and len(received) == 2 and received[1]["type"] == "position"  # type: ignore[index]
