"""Phones pressing SOS, in a process of their own: `python tests/security/sos_phones.py BASE TIMEOUT AT_LEAST`.

A press is timed where a phone would time it, not on the event loop of the test that drives a burst of
hundreds of requests at the server (the burst's own client took as much CPU as the server, and a press timed
there waited for it: 6.4 s where a press from another process took 0.7 s in the same burst).

Standard input: a JSON list of subject tokens (one per press, in order), then `go`, then `stop`. From `go`,
a press every `INTERVAL` s until `stop` (at least AT_LEAST, at most one per token); then the presses'
[status, seconds] (status 0: no answer) as one JSON line on standard output. `ready` on standard error
says the phones are set up.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import httpx2 as httpx

INTERVAL = 0.1


async def _press(phones: httpx.AsyncClient, token: str, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    try:
        answer = await phones.post("/api/v1/sos", json={"lon": 121.47, "lat": 31.23},
                                   headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError:
        return 0, time.monotonic() - started
    return answer.status_code, time.monotonic() - started


async def _run(base: str, timeout: float, tokens: list[str], stop: threading.Event, at_least: int,
               ) -> list[tuple[int, float]]:
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as phones:
        presses: list[asyncio.Task[tuple[int, float]]] = []
        while len(presses) < len(tokens) and (not stop.is_set() or len(presses) < at_least):
            presses.append(asyncio.create_task(_press(phones, tokens[len(presses)], timeout)))
            await asyncio.sleep(INTERVAL)
        return list(await asyncio.gather(*presses))


def main() -> None:
    base, timeout, at_least = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    tokens: list[str] = json.loads(sys.stdin.readline())
    stop = threading.Event()
    print("ready", file=sys.stderr, flush=True)
    assert sys.stdin.readline().strip() == "go"
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print(json.dumps(asyncio.run(_run(base, timeout, tokens, stop, at_least))), flush=True)


if __name__ == "__main__":
    main()
