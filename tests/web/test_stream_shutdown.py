"""A server shutting down ends its live streams (the browser reconnects), instead of an open console
keeping the old process alive."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx2 as httpx

from tests.builders import sign_in_with_enrolment, staff
from tests.processes import TRIPGUARD, free_port, process_env, wait_healthy
from tripguard.app import create_app
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import Settings
from tripguard.security.permissions import Role


def test_stopping_the_server_ends_open_streams_and_the_process(cli_site: Settings, tmp_path: Path) -> None:
    create_app(cli_site)  # the keys
    with make_sessionmaker(make_engine(cli_site.database_url))() as session:
        staff(session, "agent.li", Role.SAFETY_AGENT)
    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen([TRIPGUARD, "serve", "--port", str(port)], env=process_env(cli_site),
                              stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, log, 90)  # a bound, not a target: imports are slow on a busy machine
        with httpx.Client(base_url=base, timeout=10) as agent:
            sign_in_with_enrolment(agent, "agent.li")  # type: ignore[arg-type]
            lines = []
            with agent.stream("GET", "/console/live/stream") as stream:
                for line in stream.iter_lines():
                    lines.append(line)
                    if line == "event: hello":
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
