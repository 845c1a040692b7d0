"""Admission control: SOS is never refused; one principal's excess is 429, bulk work past its bound or on a
saturated process 503, each with Retry-After, before the request reaches the database."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import TEST_ACTOR, subject_token
from tests.conftest import make_settings
from tripguard.app import create_app
from tripguard.core.admission import Admission, Lane, Limits, Overloaded, admit, declared_lane
from tripguard.core.routes import api_routes
from tripguard.safety import contacts
from tripguard.security import service as security
from tripguard.security.permissions import Permission
from tripguard.telematics import api as telematics_api

PROBLEM = "application/problem+json"


def _app(database_url: str, tmp_path: Path, session_factory: sessionmaker[Session], **limits: object) -> FastAPI:
    return create_app(make_settings(database_url, tmp_path / "keys", **limits), session_factory=session_factory)


def _shed(lane: str, reason: str) -> float:
    return REGISTRY.get_sample_value("tripguard_admission_shed_total", {"lane": lane, "reason": reason}) or 0.0


@contextmanager
def _held(app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch, target: Any, name: str,
          request: Callable[[], Any]) -> Iterator[Future[Any]]:
    """`request` made in another thread and held inside its route (the first call of `target.name`) until the
    block ends."""
    release = threading.Event()
    real = getattr(target, name)
    calls = iter(range(1_000_000))

    if name == "_ingest":
        async def hold(*args: Any, **kwargs: Any) -> Any:
            if next(calls) == 0:
                await anyio.to_thread.run_sync(release.wait)
            return await real(*args, **kwargs)
    else:
        def hold(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            if next(calls) == 0:
                release.wait()
            return real(*args, **kwargs)

    monkeypatch.setattr(target, name, hold)
    admitted = app.state.admission.admitted
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request)
        deadline = time.monotonic() + 10
        while app.state.admission.admitted == admitted:  # until it is inside
            assert time.monotonic() < deadline and not future.done(), future.result() if future.done() else "stuck"
            time.sleep(0.01)
        try:
            yield future
        finally:
            release.set()
            future.result(10)


def _ingest_key(db: Session, app: FastAPI) -> str:
    _, key = security.create_api_key(db, settings=app.state.settings, actor=TEST_ACTOR, name="operator",
                                     scopes={Permission.TELEMATICS_INGEST, Permission.ALERTS_READ})
    db.flush()
    return key


def _press(client: TestClient, token: str) -> int:
    return client.post("/api/v1/sos", json={"lon": 121.47, "lat": 31.23},
                       headers={"Authorization": f"Bearer {token}"}).status_code


def test_bulk_past_its_bound_is_503_with_retry_after_while_sos_is_taken(
        database_url: str, tmp_path: Path, session_factory: sessionmaker[Session], db: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(database_url, tmp_path, session_factory, admission_bulk_requests=1, admission_retry_after_seconds=3)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {_ingest_key(db, app)}", "Content-Type": "application/x-ndjson"}
        before = _shed("bulk", "bulk_limit")
        with _held(app, client, monkeypatch, telematics_api, "_ingest",
                   lambda: client.post("/api/v1/telematics/events", content=b"", headers=headers)):
            refused = client.post("/api/v1/telematics/events", content=b"", headers=headers)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "3", refused.text
            assert refused.headers["content-type"] == PROBLEM and refused.json()["type"] == "/problems/overloaded"
            # Other bulk routes share the bound: a quarterly report, a CSV export.
            assert client.get("/api/v1/audit/verify", headers=headers).status_code == 503
            assert _press(client, subject_token("PSG-ADM-1")) == 201  # the emergency lane is never refused
            assert client.get("/api/v1/telematics/alerts", headers=headers).status_code == 200  # normal work goes on
        assert _shed("bulk", "bulk_limit") == before + 2
        assert client.post("/api/v1/telematics/events", content=b"", headers=headers).status_code != 503


def test_a_saturated_process_refuses_bulk_first(database_url: str, tmp_path: Path,
                                                session_factory: sessionmaker[Session], db: Session,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(database_url, tmp_path, session_factory, admission_busy_requests=1)
    passenger = subject_token("PSG-ADM-2")
    with TestClient(app) as client:
        key = _ingest_key(db, app)
        before = _shed("bulk", "saturated")
        with _held(app, client, monkeypatch, contacts, "listing",
                   lambda: client.get("/api/v1/me/contacts", headers={"Authorization": f"Bearer {passenger}"})):
            # One request in flight is "saturated" here: bulk is refused, other work and SOS are not.
            export = client.get("/console/incidents?format=csv", headers={"Authorization": f"Bearer {key}"})
            assert export.status_code == 503 and export.headers["retry-after"] == "1"
            ingest = client.post("/api/v1/telematics/events", content=b"",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"})
            assert ingest.status_code == 503
            assert client.get("/api/v1/telematics/alerts",
                              headers={"Authorization": f"Bearer {key}"}).status_code == 200
            assert _press(client, subject_token("PSG-ADM-3")) == 201
        assert _shed("bulk", "saturated") == before + 2


def test_one_principal_past_its_bound_is_429_and_its_sos_is_still_taken(
        database_url: str, tmp_path: Path, session_factory: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(database_url, tmp_path, session_factory, admission_principal_requests=1)
    passenger, other = subject_token("PSG-ADM-4"), subject_token("PSG-ADM-5")
    with TestClient(app) as client:
        before = _shed("normal", "principal")
        with _held(app, client, monkeypatch, contacts, "listing",
                   lambda: client.get("/api/v1/me/contacts", headers={"Authorization": f"Bearer {passenger}"})) as held:
            refused = client.get("/api/v1/me/contacts", headers={"Authorization": f"Bearer {passenger}"})
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1", refused.text
            assert refused.headers["content-type"] == PROBLEM
            assert refused.json()["type"] == "/problems/too-many-in-flight"
            assert _press(client, passenger) == 201  # the same principal's SOS
            assert client.get("/api/v1/me/contacts", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        assert held.result().status_code == 200
        assert _shed("normal", "principal") == before + 1
        # Its place is given back when the request ends.
        assert client.get("/api/v1/me/contacts", headers={"Authorization": f"Bearer {passenger}"}).status_code == 200
        assert app.state.admission.in_flight == {} and app.state.admission.admitted == 0


def test_a_console_page_past_the_bound_answers_problem_json_without_rendering(
        database_url: str, tmp_path: Path, session_factory: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's error page would read the session and take a thread: the very things being protected."""
    app = _app(database_url, tmp_path, session_factory, admission_principal_requests=1)
    passenger = subject_token("PSG-ADM-6")
    with TestClient(app) as client, _held(app, client, monkeypatch, contacts, "listing", lambda: client.get(
            "/api/v1/me/contacts", headers={"Authorization": f"Bearer {passenger}"})):
        page = client.get("/console/incidents", headers={"Authorization": f"Bearer {passenger}"})
        assert page.status_code == 429 and page.headers["content-type"] == PROBLEM


def test_each_route_declares_its_lane(app: FastAPI) -> None:
    lanes = {(method, info.path): declared_lane(info.route.dependant)
             for info in api_routes(app) for method in info.methods}
    assert [route for route, lane in lanes.items() if lane is Lane.EMERGENCY] == [("POST", "/api/v1/sos")]
    for bulk in [("POST", "/api/v1/telematics/events"), ("GET", "/api/v1/orders/{order_id}/label"),
                 ("GET", "/console/reports/quarterly"), ("GET", "/api/v1/me/requests/{request_id}/export"),
                 ("GET", "/api/v1/me/training/attempts/{attempt_id}/certificate"),
                 ("POST", "/api/v1/me/screening/disputes"), ("GET", "/api/v1/audit/verify")]:
        assert lanes[bulk] is Lane.BULK, bulk
    assert lanes[("GET", "/console/incidents")] is Lane.BULK_WHEN_DOWNLOADED
    assert lanes[("GET", "/api/v1/incidents")] is Lane.NORMAL
    # Every route has the admission first, before the principal or a database session.
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            first = context.dependant.dependencies[0]
            assert first.call is admit, context.path


def _bare(running: int, queue_seconds: float) -> Admission:
    return Admission(Limits(per_principal=100, per_api_key=100, bulk=100, busy=100, retry_after=1, running=running,
                            queue_seconds=queue_seconds), lambda request: None)


def test_requests_past_the_running_bound_wait_their_turn_first_come_first_served() -> None:
    admission = _bare(running=2, queue_seconds=5)
    request: Any = SimpleNamespace(scope={}, query_params={})

    async def scenario() -> list[str]:
        order: list[str] = []
        first, second = await admission.enter(request), await admission.enter(request)
        assert first and second and admission.admitted == 2

        async def waiter(name: str) -> None:
            ticket = await admission.enter(request)
            order.append(name)
            assert ticket is not None
            admission.leave(ticket)

        third, fourth = asyncio.create_task(waiter("third")), asyncio.create_task(waiter("fourth"))
        await asyncio.sleep(0.05)
        assert order == [] and len(admission._waiting) == 2  # no place: they wait, holding no thread
        admission.leave(first)
        await asyncio.gather(third, fourth)
        admission.leave(second)
        return order

    assert asyncio.run(scenario()) == ["third", "fourth"]
    assert admission.admitted == 0 and not admission._waiting


def test_a_request_without_a_turn_in_time_is_503_and_a_cancelled_one_gives_its_place_back() -> None:
    admission = _bare(running=1, queue_seconds=0.1)
    request: Any = SimpleNamespace(scope={}, query_params={})

    async def scenario() -> None:
        holder = await admission.enter(request)
        assert holder is not None
        with pytest.raises(Overloaded) as refused:
            await admission.enter(request)
        assert refused.value.status == 503 and refused.value.headers() == {"Retry-After": "1"}
        gone = asyncio.create_task(admission.enter(request))
        await asyncio.sleep(0.02)
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        admission.leave(holder)
        assert admission.admitted == 0 and not admission._waiting  # nothing counted for the two that left

    asyncio.run(scenario())
