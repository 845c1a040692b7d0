"""Bodies are read whole before any route runs: a stalled or slow upload never holds the database writer."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from tests import builders
from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.middleware import json_body_problem
from tripguard.security import service
from tripguard.security.permissions import Permission

STALL_SECONDS = 6


def _stalled_upload(base: str, api_key: str) -> socket.socket:
    """Headers promising 1,000 bytes, then a few, then silence."""
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.sendall(b"POST /api/v1/telematics/events HTTP/1.1\r\nHost: x\r\n"
                 + f"Authorization: Bearer {api_key}\r\n".encode()
                 + b"Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n{\"type\":\"ping\"")
    return sock


def _slow_batch(base: str, api_key: str) -> None:
    """A real batch sent in small pieces over a couple of seconds."""
    line = b'{"type":"trip_started","trip_id":"SLOW%d","ts":"2026-03-01T08:00:00Z"}\n'
    body = b"".join(line.replace(b"%d", str(n).encode()) for n in range(400))

    def pieces():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), len(body) // 10):
            time.sleep(0.2)
            yield body[start:start + len(body) // 10]

    httpx.post(f"{base}/api/v1/telematics/events", content=pieces(), timeout=30,
               headers={"authorization": f"Bearer {api_key}", "content-type": "application/x-ndjson"})


def test_sos_gets_through_a_stalled_upload_and_a_slow_batch(tmp_path: Path) -> None:
    url = fresh_database("tg_stall", tmp_path)
    settings = make_settings(url, tmp_path / "keys", body_timeout_seconds=STALL_SECONDS)
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        _, api_key = service.create_api_key(session, settings=settings, actor=TEST_ACTOR, name="dispatch",
                                            scopes={Permission.TELEMATICS_INGEST})
    engine.dispose()
    with serve_in_thread(create_app(settings)) as base:
        stalled = _stalled_upload(base, api_key)
        slow = threading.Thread(target=_slow_batch, args=(base, api_key))
        slow.start()
        time.sleep(0.3)  # both are now mid-body
        started = time.monotonic()
        codes = [httpx.post(f"{base}/api/v1/sos", json={}, timeout=STALL_SECONDS,
                            headers={"authorization": f"Bearer {builders.subject_token(f'P_STALL_{n}')}"}).status_code
                 for n in range(20)]
        waited = time.monotonic() - started
        assert codes == [201] * 20
        # Answered while the stalled upload was still hanging: nothing waited for it.
        assert waited < STALL_SECONDS, f"20 SOS presses took {waited:.1f} s next to a stalled upload"
        stalled.settimeout(STALL_SECONDS + 10)
        answer = stalled.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        stalled.close()
        slow.join(timeout=30)


@pytest.mark.parametrize(("body", "problem"), [
    (b'{"note": "\\ud800"}', True),  # a lone high surrogate
    (b'{"note": "x\\udfff"}', True),  # a lone low surrogate
    (b'{"note": "\\ud83d\\ude00"}', False),  # a pair: one emoji
    (b'{"note": "\\\\ud800"}', False),  # an escaped backslash, then text
    (b'{"note": "plain"}', False),
    (b"not json \\ud800", False),  # left to the route's own validation
])
def test_lone_surrogates_are_refused_before_any_route(body: bytes, problem: bool) -> None:
    assert (json_body_problem(body, b"application/json") is not None) is problem


def test_oversized_and_surrogate_bodies_are_4xx(client) -> None:  # type: ignore[no-untyped-def]
    big = client.post("/api/v1/sos", content=b"{" + b" " * (17 * 1024 * 1024) + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    lone = client.post("/api/v1/sos", content=b'{"order_id": "\\ud800"}', headers={"content-type": "application/json"})
    assert lone.status_code == 400 and "surrogate" in lone.json()["detail"]
