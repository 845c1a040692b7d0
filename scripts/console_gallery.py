"""The console gallery in docs/console.md: one screenshot of each page, in Chinese and English, of the demo.

`make gallery` (or `.venv/bin/python scripts/console_gallery.py`) runs `make run`'s own demo in a temporary
folder (`tripguard db upgrade`, `tripguard demo bootstrap`, `tripguard serve` with the demo city, in real time:
a faster clock would date the fleet's heartbeats in the past), on a configured base map, then signs in with the
printed accounts in Debian's Chromium and writes docs/console/<page>.<lang>.jpg and the gallery table in
docs/console.md. Beside the demo city's own cases it adds what the demo has none of yet: a trip share, a
complaint, a subject request and a breach.

The base map is `TRIPGUARD_MAP_TILES_URL` and its companions when they are set (the deployment's provider), or
`make run`'s default, OpenStreetMap, when this machine reaches it; otherwise `tripguard.sim.trace_tiles`, the
demo trips' own traces drawn as tiles (a stand-in on machines that reach no provider, and named so in the maps'
credit). Re-run it after a change to the console.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pyotp
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from tripguard.sim import trace_tiles

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "docs" / "console"
DOC = ROOT / "docs" / "console.md"
BEGIN, END = "<!-- gallery:begin -->", "<!-- gallery:end -->"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))
PORT = 18765
LANGUAGES = {"zh": "zh-CN", "en": "en"}
MAX_HEIGHT = 1800  # px of a long page kept in its screenshot
WAIT_SECONDS = 300  # for the demo city's first SOS case (its first press comes 40 s into the lap)


OSM_TILE = "https://tile.openstreetmap.org/0/0/0.png"


def reaches_openstreetmap() -> bool:
    try:
        return httpx.get(OSM_TILE, headers={"User-Agent": "TripGuard console gallery"}, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def base_map() -> Iterator[dict[str, str]]:
    """The deployment's tile settings when set, or `make run`'s own (OpenStreetMap) when it answers; else the
    trace tiles, served for the length of the run."""
    if os.environ.get("TRIPGUARD_MAP_TILES_URL") or reaches_openstreetmap():
        yield {}
        return
    with trace_tiles.serving() as url:
        yield {"TRIPGUARD_MAP_TILES_URL": url, "TRIPGUARD_MAP_TILES_ATTRIBUTION": trace_tiles.ATTRIBUTION,
               "TRIPGUARD_MAP_TILES_ATTRIBUTION_URL": trace_tiles.ATTRIBUTION_URL,
               "TRIPGUARD_MAP_TILES_MAX_ZOOM": str(trace_tiles.MAX_ZOOM)}


@contextmanager
def demo(folder: Path, tiles: dict[str, str]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """`make run`'s demo in `folder`; yields its URL, the bootstrap's printout and the environment."""
    base = f"http://127.0.0.1:{PORT}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRIPGUARD_") or k.startswith("TRIPGUARD_MAP")},
           **tiles, "TRIPGUARD_BASE_URL": base, "TRIPGUARD_DEMO_CITY": "true"}
    subprocess.run([TRIPGUARD, "db", "upgrade"], cwd=folder, env=env, check=True, capture_output=True)
    printed = subprocess.run([TRIPGUARD, "demo", "bootstrap"], cwd=folder, env=env, check=True, capture_output=True,
                             text=True).stdout
    with (folder / "serve.log").open("w") as log:
        server = subprocess.Popen([TRIPGUARD, "serve", "--port", str(PORT)], cwd=folder, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        until(lambda: ok(f"{base}/healthz") or server.poll() is not None, 300, "the server to start")
        if server.poll() is not None:
            raise SystemExit(f"the server stopped:\n{(folder / 'serve.log').read_text()[-3000:]}")
        yield base, printed, env
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def until(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(1)
    return found


def accounts_of(printed: str) -> dict[str, tuple[str, bool]]:
    """User name -> (password, asks for an authenticator code), from the bootstrap's accounts table."""
    table = r"^  (\S+)\s+(\S+)\s+[a-z_]+\s+(authenticator app \(TOTP\)|password only)$"
    rows = re.findall(table, printed, re.MULTILINE)
    return {name: (password, factor != "password only") for name, password, factor in rows}


def seed(base: str, printed: str, env: dict[str, str], folder: Path) -> dict[str, str]:
    """What the demo has none of yet: the first passenger's trip shared, a complaint about it, their access
    request, and a breach for the privacy office. Returns the share page's path."""
    api_key = re.search(r"Authorization: Bearer (tg_\S+)", printed)
    token = re.search(r"passenger P-DEMO-001 \([^)]*\): (\S+)", printed)
    if not (api_key and token):
        raise SystemExit(f"the demo's bootstrap printed no API key or no passenger token:\n{printed}")
    api = {"Authorization": f"Bearer {api_key[1]}"}
    passenger = {"Authorization": f"Bearer {token[1]}"}

    def first_passengers_trip() -> str | None:
        listed = httpx.get(f"{base}/api/v1/telematics/trips", params={"status": "active", "limit": 1000},
                           headers=api, timeout=30)
        listed.raise_for_status()
        return next((t["id"] for t in listed.json() if t["passenger_id"] == "P-DEMO-001"), None)

    trip = until(first_passengers_trip, 120, "P-DEMO-001's trip")
    share = httpx.post(f"{base}/api/v1/trips/{trip}/shares", json={}, headers=passenger, timeout=30)
    share.raise_for_status()
    httpx.post(f"{base}/api/v1/complaints", json={"trip_id": trip, "category": "conduct", "text": "司机一路打电话"},
               headers={**passenger, "Idempotency-Key": "gallery-complaint"}, timeout=30).raise_for_status()
    httpx.post(f"{base}/api/v1/me/requests", json={"kind": "access"},
               headers={**passenger, "Idempotency-Key": "gallery-request"}, timeout=30).raise_for_status()
    open_breach(env, folder)
    return {"share": str(share.json()["url"]).replace(base, "")}


def open_breach(env: dict[str, str], folder: Path) -> None:
    """A breach, opened through the service in the demo's folder (the privacy office's form does the same)."""
    code = """
from datetime import UTC, datetime
from tripguard.audit.actor import Actor
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.settings import get_settings
from tripguard.privacy import breaches
with make_sessionmaker(make_engine(get_settings().database_url))() as session:
    breaches.open_breach(session, actor=Actor("cli", "gallery"), title="客服工单导出外泄", serious=True,
                         occurred_from=datetime(2026, 11, 20, 8, tzinfo=UTC),
                         occurred_to=datetime(2026, 11, 21, 18, tzinfo=UTC), categories=["phone", "name"],
                         cause="一名客服导出了工单列表", harm="可能收到骚扰电话", measures="已停用导出并更换密钥",
                         advice="警惕自称平台客服的来电", contact="privacy@example.com")
    session.commit()
"""
    subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True)


def sign_in(page: Any, username: str, accounts: dict[str, tuple[str, bool]]) -> None:
    password, second_factor = accounts[username]
    page.goto("/console/sign-in")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    if second_factor:
        secret = page.text_content("[data-testid=totp-secret]").strip()
        page.fill("#code", pyotp.TOTP(secret).now())
        page.click("main button[type=submit]")
    page.wait_for_url("**/console")


def sign_agreement(page: Any) -> None:
    """The confidentiality agreement in force, before a page that opens personal data."""
    page.goto("/console/agreement")
    if page.locator("[data-testid=sign]").count():
        page.click("[data-testid=sign]")
        page.wait_for_load_state("load")


def first_link(page: Any, path: str, selector: str) -> str:
    """The first link on a list page; the list is reloaded until it has one (the demo city's first case)."""
    deadline = time.monotonic() + WAIT_SECONDS
    page.goto(path)
    while not page.locator(selector).count():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {selector} on {path}")
        page.wait_for_timeout(2000)
        page.reload()
    return str(page.locator(selector).first.get_attribute("href"))


def shoot(page: Any, name: str, lang: str, path: str, shots: list[tuple[str, str]]) -> None:
    page.goto(f"/console/lang/{'zh_CN' if lang == 'zh' else 'en'}?next={path}" if path.startswith("/console")
              else path)
    page.wait_for_load_state("load")
    page.wait_for_timeout(2000)  # live pages: the stream's first events, the map's fit to them
    try:
        page.wait_for_function("() => !document.querySelector('.leaflet-tile:not(.leaflet-tile-loaded)')",
                               timeout=30_000)
    except PlaywrightTimeout:
        print(f"{name}.{lang}: some map tiles had not loaded after 30 s", file=sys.stderr)
    file = OUT / f"{name}.{lang}.jpg"
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT)
    page.screenshot(path=str(file), type="jpeg", quality=65, full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": height})
    if (name, path) not in shots:
        shots.append((name, path))


# Each account's pages: (name, path); "first:<list>:<selector>" is the first link of that kind on the list. The
# safety agent comes last: by then the demo city has raised its first cases and alerts.
PAGES: dict[str, list[tuple[str, str]]] = {
    "auditor": [("audit-log", "/console/audit")],
    "admin": [("api-keys", "/console/api-keys"), ("messages", "/console/messages")],
    "security": [("staff", "/console/staff")],
    "dpo": [("privacy-home", "/console"), ("catalogue", "/console/privacy/catalogue"),
            ("requests", "/console/privacy/requests"),
            ("request", "first:/console/privacy/requests:a[href^='/console/privacy/requests/req_']"),
            ("retention", "/console/privacy/retention"), ("breaches", "/console/privacy/breaches"),
            ("notices", "/console/privacy/notices")],
    "screener": [("screening-queue", "/console/screening/queue"), ("applicant", "/console/screening/D-DEMO-APPLICANT")],
    "kitchen": [("orders", "/console/orders"), ("order", "/console/orders/O-DEMO-1")],
    "trainer": [("training", "/console/training")],
    "supervisor": [("reports", "/console/reports"), ("supervision", "/console/supervision"),
                   ("complaints", "/console/complaints"), ("answer-templates", "/console/complaints/templates")],
    "hr": [("discipline", "/console/discipline")],
    "agent": [("home", "/console"), ("live-map", "/console/live"), ("sos-queue", "/console/incidents"),
              ("case", "first:/console/incidents:a[href^='/console/incidents/inc_']"),
              ("trips", "/console/trips"), ("trip", "first:/console/trips:a[href^='/console/trips/demo-']"),
              ("check-ins", "/console/check-ins"), ("devices", "/console/devices"),
              ("not-found", "/console/no-such-page")],
}
NEEDS_AGREEMENT = {"screener", "kitchen", "dpo", "agent"}


def resolve(page: Any, path: str) -> str:
    if not path.startswith("first:"):
        return path
    _, listing, selector = path.split(":", 2)
    return first_link(page, listing, selector)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    shots: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, base_map() as tiles, demo(Path(tmp), tiles) as (base, printed, env):
        accounts = accounts_of(printed)
        if len(accounts) != 12:
            raise SystemExit(f"the demo's bootstrap printed {len(accounts)} accounts, not 12:\n{printed}")
        seeded = seed(base, printed, env, Path(tmp))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            visits: list[tuple[str | None, list[tuple[str, str]]]] = [
                (None, [("sign-in", "/console/sign-in"), ("share", seeded["share"])]), *PAGES.items()]
            for account, items in visits:
                context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 860}, locale="zh-CN")
                page = context.new_page()
                if account:
                    sign_in(page, account, accounts)
                    if account in NEEDS_AGREEMENT:
                        sign_agreement(page)
                resolved = [(name, resolve(page, path)) for name, path in items]
                for lang in LANGUAGES:
                    if account is None:
                        context.add_cookies([{"name": "tg_lang", "value": "zh_CN" if lang == "zh" else "en",
                                              "url": base}])
                    for name, path in resolved:
                        shoot(page, name, lang, path, shots)
                context.close()
            browser.close()
    write_doc(shots)
    print(f"{len(shots)} pages, {2 * len(shots)} screenshots in {OUT.relative_to(ROOT)} "
          f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    return 0


def write_doc(shots: list[tuple[str, str]]) -> None:
    rows = ["| Page | 中文 | English |", "| --- | --- | --- |"]
    for name, path in shots:
        shown = "/s/{token}" if path.startswith("/s/") else re.sub(r"(inc|req)_[0-9A-Z]{26}", r"\1_…", path)
        shown = re.sub(r"/trips/demo-[^/]+", "/trips/demo-…", shown)
        rows.append(f"| `{shown}` | ![{name} zh](console/{name}.zh.jpg) | ![{name} en](console/{name}.en.jpg) |")
    table = "\n".join(rows)
    text = DOC.read_text() if DOC.exists() else f"# The console\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
