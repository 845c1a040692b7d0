"""`tripguard cluster up`: the scaled-out set on this machine, one command (honcho runs it).

2 API replicas (the background jobs left to the scheduler), 2 monitor workers splitting the shards
and standing by for each other's, the outbox worker and the scheduler, all against the configured
PostgreSQL and NATS. honcho prefixes each process's output with its name and stops them all on
Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))


def halves(shards: int) -> tuple[str, str]:
    """The two monitor workers' shards: "0-3" and "4-7" of 8 (one shard: both "0", the second on standby)."""
    if shards == 1:
        return "0", "0"
    middle = shards // 2
    return f"0-{middle - 1}", f"{middle}-{shards - 1}"


def procfile(*, shards: int, ports: tuple[int, int] = (8001, 8002), host: str = "127.0.0.1") -> dict[str, str]:
    first, second = halves(shards)
    return {
        "api1": f"{TRIPGUARD} serve --host {host} --port {ports[0]}",
        "api2": f"{TRIPGUARD} serve --host {host} --port {ports[1]}",
        "monitor1": f"{TRIPGUARD} worker monitor --shards {first} --standby {second}",
        "monitor2": f"{TRIPGUARD} worker monitor --shards {second} --standby {first}",
        "outbox": f"{TRIPGUARD} worker outbox",
        "scheduler": f"{TRIPGUARD} scheduler",
    }


def run(processes: dict[str, str], env: dict[str, str]) -> int:
    from honcho.manager import Manager

    manager = Manager()
    for name, command in processes.items():
        manager.add_process(name, command, env=env)
    manager.loop()
    return int(manager.returncode or 0)
