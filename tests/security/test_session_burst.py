"""One principal cannot starve the server: a burst of parallel requests on one staff session, idle past its
last-seen interval, leaves SOS answering. A real `tripguard serve` process (its threads, its connections),
on this run's backend."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import update

from tests.builders import PASSWORD, staff, subject_token
from tests.conftest import fresh_database, make_settings
from tests.processes import TRIPGUARD, free_port, process_env, wait_healthy
from tripguard.app import create_app
from tripguard.core.clock import utcnow
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.security.auth import SESSION_COOKIE
from tripguard.security.models import StaffSession
from tripguard.security.permissions import Role
from tripguard.security.service import SESSION_TOUCH_INTERVAL

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
BURST = 200
PRESS_BOUND = 3.0  # seconds: generous on a shared 2-core machine (before the fix: no answer for minutes)


@dataclass(frozen=True)
class Site:
    base: str
    url: str
    log: Path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url = fresh_database(f"tg_burst_{WORKER}", tmp_path)
    settings = make_settings(url, tmp_path / "keys")
    create_app(settings)  # the keys
    with make_sessionmaker(make_engine(url))() as db:
        staff(db, "trainer.zhao", Role.TRAINER)  # any role will do: a trainer needs no second factor
    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen([TRIPGUARD, "serve", "--port", str(port)], env=process_env(settings),
                              stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, log, 60)
        yield Site(base, url, log)
    finally:
        server.kill()  # not SIGTERM: a frozen server ignored it
        server.wait()


def _signed_in_cookie(site: Site) -> str:
    with httpx.Client(base_url=site.base, timeout=10) as client:
        answer = client.post("/api/v1/auth/sign-in", json={"username": "trainer.zhao", "password": PASSWORD})
        assert answer.status_code == 200 and answer.json()["status"] == "signed_in", answer.text
        return str(client.cookies[SESSION_COOKIE])


def _idle_past_touch_interval(url: str) -> None:
    with unit_of_work(make_sessionmaker(make_engine(url))) as db:
        db.execute(update(StaffSession).values(last_seen_at=utcnow() - SESSION_TOUCH_INTERVAL - timedelta(seconds=5)))


async def _press(phones: httpx.AsyncClient, caller: str) -> tuple[int, float]:
    """One SOS press by `caller`: its status (0: no answer) and how long it took."""
    started = time.monotonic()
    try:
        answer = await phones.post("/api/v1/sos", json={"lon": 121.47, "lat": 31.23},
                                   headers={"Authorization": f"Bearer {subject_token(caller)}"})
    except httpx.HTTPError:
        return 0, time.monotonic() - started
    return answer.status_code, time.monotonic() - started


async def _burst_while_pressing(base: str, cookie: str) -> tuple[list[int], list[tuple[int, float]], float]:
    """BURST parallel requests on one session; SOS presses (other people, on their own connections) every
    0.1 s until the burst is answered. Returns the burst's statuses (0: no answer), each press's (status,
    seconds) and how long the burst took."""
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with (httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60, connect=10),
                                  cookies={SESSION_COOKIE: cookie}) as burster,
                httpx.AsyncClient(base_url=base, timeout=PRESS_BOUND * 3) as phones):
        async def one() -> int:
            try:
                answer = await burster.get("/api/v1/me/agreement")
            except httpx.HTTPError:
                return 0
            return answer.status_code

        started = time.monotonic()
        burst = asyncio.gather(*(one() for _ in range(BURST)))
        presses = []
        while (not burst.done() and len(presses) < 100) or len(presses) < 5:
            presses.append(asyncio.create_task(_press(phones, f"PSG-BURST-{len(presses)}")))
            await asyncio.sleep(0.1)
        statuses = await burst
        took = time.monotonic() - started
        return statuses, list(await asyncio.gather(*presses)), took


def test_a_burst_on_one_idle_session_leaves_sos_answering(site: Site) -> None:
    cookie = _signed_in_cookie(site)
    _idle_past_touch_interval(site.url)
    statuses, presses, took = asyncio.run(_burst_while_pressing(site.base, cookie))
    slow = [(status, round(seconds, 2)) for status, seconds in presses if status != 201 or seconds >= PRESS_BOUND]
    assert not slow, f"{len(slow)} of {len(presses)} presses not answered within {PRESS_BOUND} s: {slow[:10]}"
    # Every request of the burst is answered: served, or refused at once with 429 (never a 5xx or a hang).
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    assert statuses.count(200) > 0 and took < 30, (statuses.count(200), took)
    started = time.monotonic()
    assert httpx.get(f"{site.base}/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 1


async def _readers_while_pressing(base: str, readers: int) -> tuple[list[int], list[tuple[int, float]]]:
    """`readers` passengers, one request each in flight (each well within its own bound), reading their
    contacts (a database read and an audit entry) while SOS presses arrive every 0.1 s."""
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    tokens = [subject_token(f"PSG-READ-{n}") for n in range(readers)]
    async with (httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60, connect=10)) as app,
                httpx.AsyncClient(base_url=base, timeout=PRESS_BOUND * 3) as phones):
        async def read(n: int) -> int:
            try:
                answer = await app.get("/api/v1/me/contacts", headers={"Authorization": f"Bearer {tokens[n]}"})
            except httpx.HTTPError:
                return 0
            return answer.status_code

        reads = asyncio.gather(*(read(n) for n in range(readers)))
        presses = []
        while (not reads.done() and len(presses) < 60) or len(presses) < 20:
            presses.append(asyncio.create_task(_press(phones, f"PSG-CALL-{len(presses)}")))
            await asyncio.sleep(0.1)
        return list(await reads), list(await asyncio.gather(*presses))


def test_many_principals_each_within_its_bound_leave_sos_answering(site: Site) -> None:
    """200 passengers reading at once, none past its own bound, froze the embedded server for two minutes
    (every thread waiting for a connection or the writer, the request holding it waiting for a thread) and
    every SOS got 503. Requests past the process's running bound now wait without a thread."""
    statuses, presses = asyncio.run(_readers_while_pressing(site.base, 200))
    slow = [(status, round(seconds, 2)) for status, seconds in presses if status != 201 or seconds >= PRESS_BOUND]
    assert not slow, f"{len(slow)} of {len(presses)} presses not answered within {PRESS_BOUND} s: {slow[:10]}"
    assert set(statuses) <= {200, 503} and statuses.count(200) > 0, sorted(set(statuses))
    started = time.monotonic()
    assert httpx.get(f"{site.base}/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 1
