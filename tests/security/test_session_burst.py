"""One principal cannot starve the server: a burst of parallel requests on one staff session, idle past its
last-seen interval, leaves SOS answering. A real `tripguard serve` process (its threads, its connections),
on this run's backend."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Self

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

PHONES = Path(__file__).with_name("sos_phones.py")
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


class Phones:
    """People pressing SOS on their own phones: a process of their own (tests/security/sos_phones.py), so that
    a press is timed as a phone times it, never behind the event loop of this test's burst (whose client took
    as much CPU as the server: a press timed here once waited 6.4 s for it, one from a phone 0.7 s)."""

    def __init__(self, base: str, callers: list[str], *, at_least: int) -> None:
        self.process = subprocess.Popen([sys.executable, str(PHONES), base, str(PRESS_BOUND * 3), str(at_least)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self._say(json.dumps([subject_token(caller) for caller in callers]))
        assert self.process.stderr is not None
        ready = self.process.stderr.readline()
        assert ready.strip() == "ready", ready + self.process.stderr.read()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:  # a failure before `stop`
            self.process.kill()
            self.process.communicate()

    def _say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def go(self) -> None:
        """A press every 0.1 s from now on, one per caller at most."""
        self._say("go")

    def stop(self) -> list[tuple[int, float]]:
        """No more presses (once `at_least` were made): each one's status (0: no answer) and seconds."""
        out, err = self.process.communicate("stop\n", timeout=60)
        assert self.process.returncode == 0, err
        return [(int(status), float(seconds)) for status, seconds in json.loads(out)]


async def _burst_while_pressing(base: str, cookie: str, phones: Phones) -> tuple[list[int], float]:
    """BURST parallel requests on one session, while `phones` press SOS (other people, on their own
    connections) every 0.1 s until the burst is answered. Returns the burst's statuses (0: no answer) and
    how long it took."""
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60, connect=10),
                                 cookies={SESSION_COOKIE: cookie}) as burster:
        async def one() -> int:
            try:
                answer = await burster.get("/api/v1/me/agreement")
            except httpx.HTTPError:
                return 0
            return answer.status_code

        started = time.monotonic()
        phones.go()
        statuses = await asyncio.gather(*(one() for _ in range(BURST)))
        return list(statuses), time.monotonic() - started


def test_a_burst_on_one_idle_session_leaves_sos_answering(site: Site) -> None:
    cookie = _signed_in_cookie(site)
    _idle_past_touch_interval(site.url)
    with Phones(site.base, [f"PSG-BURST-{n}" for n in range(100)], at_least=5) as phones:
        statuses, took = asyncio.run(_burst_while_pressing(site.base, cookie, phones))
        presses = phones.stop()
    slow = [(status, round(seconds, 2)) for status, seconds in presses if status != 201 or seconds >= PRESS_BOUND]
    assert not slow, f"{len(slow)} of {len(presses)} presses not answered within {PRESS_BOUND} s: {slow[:10]}"
    # Every request of the burst is answered: served, or refused at once with 429 (never a 5xx or a hang).
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    assert statuses.count(200) > 0 and took < 30, (statuses.count(200), took)
    started = time.monotonic()
    assert httpx.get(f"{site.base}/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 1


async def _readers_while_pressing(base: str, readers: int, phones: Phones) -> list[int]:
    """`readers` passengers, one request each in flight (each well within its own bound), reading their
    contacts (a database read and an audit entry) while `phones` press SOS every 0.1 s."""
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    tokens = [subject_token(f"PSG-READ-{n}") for n in range(readers)]
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60, connect=10)) as app:
        async def read(n: int) -> int:
            try:
                answer = await app.get("/api/v1/me/contacts", headers={"Authorization": f"Bearer {tokens[n]}"})
            except httpx.HTTPError:
                return 0
            return answer.status_code

        phones.go()
        return list(await asyncio.gather(*(read(n) for n in range(readers))))


def test_many_principals_each_within_its_bound_leave_sos_answering(site: Site) -> None:
    """200 passengers reading at once, none past its own bound, froze the embedded server for two minutes
    (every thread waiting for a connection or the writer, the request holding it waiting for a thread) and
    every SOS got 503. Requests past the process's running bound now wait without a thread."""
    with Phones(site.base, [f"PSG-CALL-{n}" for n in range(60)], at_least=20) as phones:
        statuses = asyncio.run(_readers_while_pressing(site.base, 200, phones))
        presses = phones.stop()
    slow = [(status, round(seconds, 2)) for status, seconds in presses if status != 201 or seconds >= PRESS_BOUND]
    assert not slow, f"{len(slow)} of {len(presses)} presses not answered within {PRESS_BOUND} s: {slow[:10]}"
    assert set(statuses) <= {200, 503} and statuses.count(200) > 0, sorted(set(statuses))
    started = time.monotonic()
    assert httpx.get(f"{site.base}/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 1
