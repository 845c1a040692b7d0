"""`tripguard cluster up`: the scaled-out set on this machine, one command, kept running by supervisord.

2 API replicas (the background jobs left to the scheduler), 2 monitor workers splitting the shards
and standing by for each other's, the outbox worker and the scheduler, all against the configured
PostgreSQL and NATS. supervisord (the maintained process supervisor) restarts a process that dies,
backing off while it keeps failing, and leaves the others running; Ctrl-C (or SIGTERM) stops them
all. Each process writes to its own log file; supervisord's own lines (spawned, exited, restarted)
go to the terminal. In production, run the same commands as systemd units (docs/operations.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
SUPERVISORD = str(Path(sys.executable).with_name("supervisord"))

# A process that stays up START_SECONDS counts as started; one that dies sooner is tried again after
# 1 s, 2 s, 3 s … (supervisord's backoff), START_RETRIES times in a row before it is given up as FATAL.
START_SECONDS = 3
START_RETRIES = 60  # about half an hour of tries: a database down that long needs a person anyway
STOP_WAIT_SECONDS = 20  # SIGTERM, then SIGKILL after this: an API replica drains its requests first


def halves(shards: int) -> tuple[str, str]:
    """The two monitor workers' shards: "0-3" and "4-7" of 8 (one shard: both "0", the second on standby)."""
    if shards == 1:
        return "0", "0"
    middle = shards // 2
    return f"0-{middle - 1}", f"{middle}-{shards - 1}"


# On one machine the monitor workers (detection over every ping: bulk work) yield the CPU to the API replicas,
# the scheduler and the outbox, which carry an SOS, its escalation and its messages.
BULK_NICENESS = 10


def procfile(*, shards: int, ports: tuple[int, int] = (8001, 8002), host: str = "127.0.0.1") -> dict[str, str]:
    first, second = halves(shards)
    bulk = f"nice -n {BULK_NICENESS} {TRIPGUARD}"
    return {
        "api1": f"{TRIPGUARD} serve --host {host} --port {ports[0]}",
        "api2": f"{TRIPGUARD} serve --host {host} --port {ports[1]}",
        "monitor1": f"{bulk} worker monitor --shards {first} --standby {second}",
        "monitor2": f"{bulk} worker monitor --shards {second} --standby {first}",
        "outbox": f"{TRIPGUARD} worker outbox",
        "scheduler": f"{TRIPGUARD} scheduler",
    }


def supervisord_conf(processes: dict[str, str], run_dir: Path) -> str:
    """supervisord's configuration for the set: every process restarted when it dies, stopped as a group."""
    lines = ["[supervisord]", "nodaemon=true", "logfile=/dev/stdout", "logfile_maxbytes=0", "loglevel=info",
             f"pidfile={run_dir / 'supervisord.pid'}", f"childlogdir={run_dir}", "",
             "[unix_http_server]", f"file={run_dir / 'supervisor.sock'}", "chmod=0700", "",
             "[rpcinterface:supervisor]",
             "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
             "[supervisorctl]", f"serverurl=unix://{run_dir / 'supervisor.sock'}", ""]
    for name, command in processes.items():
        lines += [f"[program:{name}]", f"command={command}", "autostart=true", "autorestart=true",
                  f"startsecs={START_SECONDS}", f"startretries={START_RETRIES}", "stopsignal=TERM",
                  f"stopwaitsecs={STOP_WAIT_SECONDS}", "stopasgroup=true", "killasgroup=true",
                  "redirect_stderr=true", f"stdout_logfile={run_dir / f'{name}.log'}",
                  "stdout_logfile_maxbytes=50MB", "stdout_logfile_backups=3", ""]
    return "\n".join(lines)


def run(processes: dict[str, str], env: dict[str, str], run_dir: Path) -> NoReturn:
    """Run the set under supervisord in the foreground until it is stopped (this process becomes it)."""
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = run_dir / "supervisord.conf"
    conf.write_text(supervisord_conf(processes, run_dir))
    print(f"logs in {run_dir}/<process>.log; status: supervisorctl -c {conf} status", flush=True)
    # exec: supervisord takes this process's place, so Ctrl-C and SIGTERM reach it and stop the whole set.
    os.execve(SUPERVISORD, [SUPERVISORD, "-c", str(conf)], env)  # noqa: S606 - our own supervisord, no shell wanted
