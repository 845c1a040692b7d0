"""A server shutting down ends its live streams (the browser reconnects), instead of an open console
keeping the old process alive."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx2 as httpx

from tests.builders import sign_in_with_enrolment, staff
from tests.conftest import SUBJECT_SECRET
from tests.telematics.test_monitor_worker_faults import TRIPGUARD, _free_port
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings
from tripguard.security.permissions import Role


def test_stopping_the_server_ends_open_streams_and_the_process(cli_site: Settings, tmp_path: Path) -> None:
    create_app(cli_site)  # the keys
    with make_sessionmaker(make_engine(cli_site.database_url))() as session:
        staff(session, "agent.li", Role.SAFETY_AGENT)
    port = _free_port()
    env = {**os.environ, "TRIPGUARD_DATABASE_URL": cli_site.database_url, "TRIPGUARD_KEY_DIR": str(cli_site.key_dir),
           "TRIPGUARD_ENV": "test", "TRIPGUARD_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
           "TRIPGUARD_SUBJECT_TOKEN_SECRET": SUBJECT_SECRET}
    log = tmp_path / "serve.log"
    server = subprocess.Popen([TRIPGUARD, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=log.open("w"))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, log.read_text()[-2000:]
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as agent:
            sign_in_with_enrolment(agent, "agent.li")  # type: ignore[arg-type]
            lines = []
            with agent.stream("GET", "/console/live/stream") as stream:
                for line in stream.iter_lines():
                    lines.append(line)
                    if line.startswith(": connected"):
                        stopped_at = time.monotonic()
                        server.send_signal(signal.SIGTERM)
            ended_after = time.monotonic() - stopped_at
        assert "event: closing" in lines, lines  # the stream says why it ends
        server.wait(10)
        assert time.monotonic() - stopped_at < 10 and ended_after < 5
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
