"""A pytest plugin: each test's wall and CPU seconds (this process and the children it waited for), one JSON
line per test, and the session's, to compare two commits side by side on a busy machine, where the wall clock
of a run varies 1.5x from one run to the next and CPU time a few per cent (docs/benchmarks.md, "Test suite time").

    PYTHONPATH=. TRIPGUARD_TEST_CPU_OUT=/tmp/cpu.jsonl .venv/bin/pytest -q -p no:cacheprovider -p bench.pytest_cpu \
        tests/safety
    python -m bench.pytest_cpu /tmp/before.jsonl /tmp/after.jsonl   # the totals side by side
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Generator
from typing import Any

import pytest

OUT = os.environ.get("TRIPGUARD_TEST_CPU_OUT", "test-cpu.jsonl")


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _write(name: str, wall: float, cpu: float, child: float) -> None:
    with open(OUT, "a") as out:
        row = {"id": name, "wall": round(wall, 4), "cpu": round(cpu, 4), "child": round(child, 4)}
        out.write(json.dumps(row) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Generator[None, None, None]:
    wall, (cpu, child) = time.perf_counter(), _cpu()
    yield
    now, (cpu_now, child_now) = time.perf_counter(), _cpu()
    _write(item.nodeid, now - wall, cpu_now - cpu, child_now - child)


_started: dict[str, Any] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _started.update(wall=time.perf_counter(), cpu=_cpu())


def pytest_sessionfinish(session: pytest.Session) -> None:
    cpu, child = _cpu()
    _write("SESSION", time.perf_counter() - _started["wall"], cpu - _started["cpu"][0], child - _started["cpu"][1])


def main(paths: list[str]) -> None:
    for path in paths:
        with open(path) as lines:
            rows = [json.loads(line) for line in lines]
        tests = [r for r in rows if r["id"] != "SESSION"]
        print(f"{path}: {len(tests)} tests, wall {sum(r['wall'] for r in tests):.1f} s, "
              f"CPU {sum(r['cpu'] + r['child'] for r in tests):.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
