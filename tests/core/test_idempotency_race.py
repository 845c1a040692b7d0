"""Parallel requests with one Idempotency-Key: the first answer or 409 "in progress", never a 500."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx2 as httpx

from tests.builders import TEST_ACTOR
from tests.conftest import fresh_database, make_settings
from tests.web.conftest import serve_in_thread
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.security import service
from tripguard.security.permissions import Permission


def _events(n: int) -> bytes:
    lines = [{"type": "trip_started", "trip_id": f"R{k}", "ts": "2026-03-01T08:00:00Z"} for k in range(n)]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def test_thirty_parallel_retries_of_one_ingest_batch(tmp_path: Path) -> None:
    url = fresh_database("tg_idem", tmp_path)
    # A race of the idempotency key, not of admission: every retry is let in to run at once.
    settings = make_settings(url, tmp_path / "keys", admission_bulk_requests=64, admission_busy_requests=64,
                             admission_running_requests=32)
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        _, api_key = service.create_api_key(session, settings=settings, actor=TEST_ACTOR, name="dispatch",
                                            scopes={Permission.TELEMATICS_INGEST})
    engine.dispose()
    answers: list[tuple[int, str]] = []
    with serve_in_thread(create_app(settings)) as base:
        barrier = threading.Barrier(30)

        def send() -> None:
            barrier.wait()
            response = httpx.post(f"{base}/api/v1/telematics/events", content=_events(300), timeout=60,
                                  headers={"authorization": f"Bearer {api_key}", "idempotency-key": "batch-7",
                                           "content-type": "application/x-ndjson"})
            answers.append((response.status_code, response.text))

        threads = [threading.Thread(target=send) for _ in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = sorted(code for code, _ in answers)
        assert set(codes) <= {200, 409}, codes
        assert codes.count(200) >= 1
        reports = {text for code, text in answers if code == 200}
        assert len(reports) == 1  # every 200 is the first answer
        again = httpx.post(f"{base}/api/v1/telematics/events", content=_events(300), timeout=60,
                           headers={"authorization": f"Bearer {api_key}", "idempotency-key": "batch-7",
                                    "content-type": "application/x-ndjson"})
        assert again.status_code == 200 and again.text in reports
        # A failed request frees its key: the retry is processed.
        bad = httpx.post(f"{base}/api/v1/telematics/events", content=b"not json\n", timeout=60,
                         headers={"authorization": f"Bearer {api_key}", "idempotency-key": "batch-8",
                                  "content-type": "application/x-ndjson"})
        assert bad.status_code == 422
        good = httpx.post(f"{base}/api/v1/telematics/events", content=_events(2), timeout=60,
                          headers={"authorization": f"Bearer {api_key}", "idempotency-key": "batch-8",
                                   "content-type": "application/x-ndjson"})
        assert good.status_code == 200 and good.json()["accepted"] == 2
