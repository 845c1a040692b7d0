"""Order intake and privacy labels through the running server.

    .venv/bin/python -m bench.orders [--orders 2000] [--labels 300] [--threads 8] [--database-url …]

Starts `tripguard serve` (one process; SQLite unless `--database-url`) on a fresh database with a
published notice and an API key for the operator's backend, then from this second process, over
keep-alive connections in `--threads` threads: posts `--orders` orders (each sealing name, phone,
address and notes under a new customer's key, audited), then asks for `--labels` labels as PDF and as
PNG. Reports requests per second and the p50/p99 of each.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import numpy as np

from bench.latency import bench_site, served
from bench.report import machine_line, write_section
from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.privacy import service as privacy
from tripguard.security import service as security
from tripguard.security.permissions import Permission


def prepare(directory: Path, database_url: str | None) -> tuple[dict[str, str], str]:
    env, settings = bench_site(directory, database_url)
    engine = make_engine(settings.database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        privacy.publish_notice(session, actor=CLI_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name"], retention_zh="72小时", retention_en="72 hours",
                               text_zh="告知", text_en="notice")
        _, secret = security.create_api_key(session, settings=settings, actor=CLI_ACTOR, name="orders",
                                            scopes={Permission.ORDER_SUBMIT, Permission.LABEL_PRINT})
    engine.dispose()
    return env, secret


def order(n: int) -> dict[str, object]:
    return {"id": f"ord_{n}", "customer_id": f"cus_{n}", "merchant_id": f"m_{n % 50}", "city": "beijing",
            "notice_version": "ord-1", "customer": {"name": "王小明", "phone": f"138{n:08d}"[:11]},
            "address": f"北京市朝阳区建国路{n % 200}号SOHO现代城{n % 9 + 1}号楼3单元{n % 30 + 1}01室",
            "items": [{"name": "宫保鸡丁", "quantity": 1}, {"name": "米饭", "quantity": 2}],
            "notes": "到了打电话，别按门铃"}


def run(base: str, key: str, count: int, threads: int, request: Callable[[httpx.Client, int], httpx.Response]
        ) -> tuple[float, np.ndarray]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(count))

    def work() -> None:
        with httpx.Client(base_url=base, timeout=60, headers={"authorization": f"Bearer {key}"}) as client:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                started = time.perf_counter()
                response = request(client, n)
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started), np.array(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--port", type=int, default=8781)
    args = parser.parse_args()
    backend = "postgres" if args.database_url else "sqlite"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env, key = prepare(Path(tmp), args.database_url)
        with served(env, args.port) as base:
            measures = [
                ("order intake (`POST /api/v1/orders`)", args.orders,
                 lambda c, n: c.post("/api/v1/orders", json=order(n))),
                ("label as PDF", args.labels, lambda c, n: c.get(f"/api/v1/orders/ord_{n}/label")),
                ("label as PNG", args.labels, lambda c, n: c.get(f"/api/v1/orders/ord_{n}/label?format=png")),
            ]
            for label, count, request in measures:
                if label.startswith("label"):  # warmed first, unmeasured: the font parsed, render processes started
                    run(base, key, 2 * args.threads, args.threads, request)
                rate, times = run(base, key, count, args.threads, request)
                print(f"{backend} {label}: {rate:,.0f}/s, p50 {np.percentile(times, 50):.1f} ms, "
                      f"p99 {np.percentile(times, 99):.1f} ms")
                rows.append(f"| {backend} | {label} | {count:,} | {rate:,.0f} | {np.percentile(times, 50):.1f} ms | "
                            f"{np.percentile(times, 99):.1f} ms |")
    body = "\n".join([
        "## Orders and labels (`bench/orders.py`)", "",
        (f"Command: `.venv/bin/python -m bench.orders --orders {args.orders} --labels {args.labels} "
         f"--threads {args.threads}`. {machine_line()} One `tripguard serve` process ({backend}); requests from "
         f"{args.threads} threads of a second process over keep-alive connections. Each order seals four fields "
         "under a new customer's key and is audited; each label opens three of them, masks them and renders a "
         "PDF with an embedded CJK font subset (the PNG is that PDF rasterised); each kind of label is first asked "
         f"{2 * args.threads} times unmeasured (the font parsed, the render processes started)."), "",
        "| backend | measure | requests | per second | p50 | p99 |", "| --- | --- | ---: | ---: | ---: | ---: |",
        *rows])
    write_section(f"orders-{backend}", body)


if __name__ == "__main__":
    main()
