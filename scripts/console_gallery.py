"""The console gallery in docs/console.md: one screenshot of each page, in Chinese and English.

`make gallery` (or `.venv/bin/python scripts/console_gallery.py`) builds a fresh TripGuard on SQLite
in a temporary directory, seeds it through the API and the services (a passenger with an emergency
contact on a trip that leaves its route, an SOS, a subject request, a breach), starts `tripguard
serve`, signs in with each role in Debian's Chromium, and writes docs/console/<page>.<lang>.jpg and
the gallery table in docs/console.md. Re-run it after a change to the console.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pyotp
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks' server helper, run as a script from any directory
from bench.latency import served

OUT = ROOT / "docs" / "console"
DOC = ROOT / "docs" / "console.md"
BEGIN, END = "<!-- gallery:begin -->", "<!-- gallery:end -->"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "gallery-password-1"
ACCOUNTS = {"agent": ("safety_agent", "李安全"), "dpo": ("privacy_officer", "周隐私"),
            "sysadmin": ("system_admin", "王系统"), "auditor": ("audit_admin", "赵审计"),
            "supervisor": ("supervisor", "钱监督"), "secadmin": ("security_admin", "孙安全")}
LANGUAGES = {"zh": "zh-CN", "en": "en"}
MAX_HEIGHT = 1800  # px of a long page kept in its screenshot


def seed(env: dict[str, str]) -> dict[str, str]:
    """Accounts, a notice, a passenger with a verified contact, a subject request and a breach."""
    os.environ.update(env)
    from datetime import UTC, datetime

    from tripguard.app import create_app
    from tripguard.audit.actor import Actor
    from tripguard.core.clock import utcnow
    from tripguard.core.db import make_engine, make_sessionmaker
    from tripguard.core.settings import get_settings
    from tripguard.privacy import access, breaches
    from tripguard.privacy import service as privacy
    from tripguard.privacy.models import SubjectRequest
    from tripguard.security import service
    from tripguard.security.permissions import Permission, Role
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    create_app(settings)  # the keys
    actor = Actor("cli", "gallery")
    vault = build_vault(settings)
    with make_sessionmaker(make_engine(settings.database_url))() as session:
        for username, (role, name) in ACCOUNTS.items():
            service.create_staff(session, actor=actor, username=username, display_name=name, password=PASSWORD,
                                 roles={Role(role)})
        _, api_key = service.create_api_key(session, settings, actor=actor, name="调度后台",
                                            scopes={Permission.TELEMATICS_INGEST, Permission.SUBJECT_WRITE})
        privacy.publish_notice(session, actor=actor, version="2026-11", purposes=["emergency", "support"],
                               categories=["user.name", "user.phone"], retention_zh="行程结束后两年",
                               retention_en="two years after the trip", text_zh="我们为行程安全处理您的姓名和电话。",
                               text_en="We process your name and phone for trip safety.")
        privacy.upsert_subject(session, vault, actor=actor, subject_id="P1", kind="passenger", notice_version="2026-11",
                               values={"name": "韩梅梅", "phone": "13800005555"})
        privacy.upsert_subject(session, vault, actor=actor, subject_id="D1", kind="driver", notice_version="2026-11",
                               values={"name": "张师傅", "phone": "13800006666"})
        now = utcnow()
        request = SubjectRequest(id="req_GALLERY", idempotency_key="gallery", subject_id="P1", kind="correction",
                                 status="verified", received_at=now, due_at=now + timedelta(days=15),
                                 hard_due_at=now + timedelta(days=30), verified_at=now, code_attempts=0)
        session.add(request)
        session.flush()
        access.write_field(vault, session, request, "correction", '{"name": "韩梅"}')
        breaches.open_breach(session, actor=actor, title="客服工单导出外泄", serious=True,
                             occurred_from=datetime(2026, 11, 20, 8, tzinfo=UTC),
                             occurred_to=datetime(2026, 11, 21, 18, tzinfo=UTC), categories=["phone", "name"],
                             cause="一名客服导出了工单列表", harm="可能收到骚扰电话", measures="已停用导出并更换密钥",
                             advice="警惕自称平台客服的来电", contact="privacy@example.com")
        session.commit()
    return {"api_key": api_key}


def trip_events() -> bytes:
    """A Beijing trip that leaves its planned route (a route-deviation alert and a case)."""
    start = datetime_now() - 600
    route = [[116.30 + i * 0.004, 39.90] for i in range(26)]
    lines = [{"type": "trip_started", "trip_id": "T-GALLERY", "ts": iso(start), "vehicle_id": "V1", "driver_id": "D1",
              "passenger_id": "P1", "pickup": route[0], "dropoff": route[-1], "route": route}]
    for i in range(40):
        lon, lat = (116.30 + i * 0.002, 39.90) if i < 20 else (116.34, 39.90 + (i - 19) * 0.002)
        lines.append({"type": "ping", "trip_id": "T-GALLERY", "ts": iso(start + 15 * i), "lon": lon, "lat": lat,
                      "speed_mps": 9.0})
    return "\n".join(json.dumps(line) for line in lines).encode() + b"\n"


def verify_contact(database_url: str, contact_id: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE safety_contacts SET verified_at = created_at WHERE id = :id"), {"id": contact_id})
    engine.dispose()


def datetime_now() -> float:
    return time.time()


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def subject_token(secret: str, subject: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": subject, "role": "passenger", "aud": "tripguard", "iat": now, "exp": now + 600},
                      secret, algorithm="HS256")


def sign_in(page: Any, username: str) -> None:
    page.goto("/console/sign-in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    secret = page.text_content("[data-testid=totp-secret]").strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    page.wait_for_url("**/console")


def shoot(page: Any, name: str, lang: str, path: str, shots: list[tuple[str, str]]) -> None:
    page.goto(f"/console/lang/{'zh_CN' if lang == 'zh' else 'en'}?next={path}" if path.startswith("/console")
              else path)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1200)  # live pages: the stream's first events, the map's layers
    file = OUT / f"{name}.{lang}.jpg"
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT)
    page.screenshot(path=str(file), type="jpeg", quality=65, full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": height})
    if (name, path) not in shots:
        shots.append((name, path))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subject_secret = secrets.token_urlsafe(32)
        port = 18765
        env = {**os.environ, "TRIPGUARD_DATABASE_URL": f"sqlite:///{tmp}/gallery.db", "TRIPGUARD_KEY_DIR": f"{tmp}/keys",
               "TRIPGUARD_ENV": "test", "TRIPGUARD_SECRET_KEY": secrets.token_urlsafe(32),
               "TRIPGUARD_SUBJECT_TOKEN_SECRET": subject_secret, "TRIPGUARD_BASE_URL": f"http://127.0.0.1:{port}",
               "TRIPGUARD_LOCALE": "zh_CN"}
        tripguard = str(Path(sys.executable).with_name("tripguard"))
        subprocess.run([tripguard, "db", "upgrade"], env=env, check=True, capture_output=True)
        seeded = seed(env)
        with served(env, port) as base:
            api = {"Authorization": f"Bearer {seeded['api_key']}"}
            httpx.put(f"{base}/api/v1/telematics/vehicles/V1", json={"plate": "京A·D1234", "colour": "白色",
                                                                    "model": "比亚迪秦"}, headers=api, timeout=10)
            httpx.post(f"{base}/api/v1/telematics/events", content=trip_events(),
                       headers={**api, "content-type": "application/x-ndjson"}, timeout=30)
            passenger = {"Authorization": f"Bearer {subject_token(subject_secret, 'P1')}"}
            contact = httpx.post(f"{base}/api/v1/me/contacts", json={"name": "李雷", "phone": "13800007777"},
                                 headers=passenger, timeout=10).json()
            verify_contact(env["TRIPGUARD_DATABASE_URL"], contact["id"])  # as if they had typed the SMS code
            share = httpx.post(f"{base}/api/v1/trips/T-GALLERY/shares", json={}, headers=passenger, timeout=10).json()
            httpx.post(f"{base}/api/v1/complaints", json={"trip_id": "T-GALLERY", "category": "conduct",
                                                          "text": "司机一路打电话"},
                       headers={**passenger, "Idempotency-Key": "gallery-complaint"}, timeout=10)
            case = httpx.post(f"{base}/api/v1/sos", json={"lon": 116.34, "lat": 39.93},
                              headers={**passenger, "Idempotency-Key": "gallery"}, timeout=10).json()["incident_id"]
            shots: list[tuple[str, str]] = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                pages = {
                    None: [("sign-in", "/console/sign-in"), ("share", share.get("url", "/s/").replace(base, ""))],
                    "agent": [("home", "/console"), ("live-map", "/console/live"), ("sos-queue", "/console/incidents"),
                              ("case", f"/console/incidents/{case}"), ("trips", "/console/trips"),
                              ("trip", "/console/trips/T-GALLERY"), ("check-ins", "/console/check-ins"),
                              ("devices", "/console/devices"), ("not-found", "/console/no-such-page")],
                    "auditor": [("audit-log", "/console/audit")],
                    "sysadmin": [("api-keys", "/console/api-keys")],
                    "secadmin": [("staff", "/console/staff")],
                    "dpo": [("privacy-home", "/console"), ("catalogue", "/console/privacy/catalogue"),
                            ("requests", "/console/privacy/requests"), ("request", "/console/privacy/requests/req_GALLERY"),
                            ("retention", "/console/privacy/retention"), ("breaches", "/console/privacy/breaches"),
                            ("notices", "/console/privacy/notices")],
                    "supervisor": [("complaints", "/console/complaints"), ("answer-templates", "/console/complaints/templates")],
                }
                for account, items in pages.items():
                    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 860},
                                                  locale="zh-CN")
                    page = context.new_page()
                    if account:
                        sign_in(page, account)
                    for lang in LANGUAGES:
                        if account is None:
                            context.add_cookies([{"name": "tg_lang", "value": "zh_CN" if lang == "zh" else "en",
                                                  "url": base}])
                        for name, path in items:
                            shoot(page, name, lang, path, shots)
                    context.close()
                browser.close()
    write_doc(shots)
    print(f"{len(shots)} pages, {2 * len(shots)} screenshots in {OUT.relative_to(ROOT)}")
    return 0


def write_doc(shots: list[tuple[str, str]]) -> None:
    rows = ["| Page | 中文 | English |", "| --- | --- | --- |"]
    for name, path in shots:
        shown = path if not path.startswith("/s/") else "/s/{token}"
        rows.append(f"| `{shown}` | ![{name} zh](console/{name}.zh.jpg) | ![{name} en](console/{name}.en.jpg) |")
    table = "\n".join(rows)
    text = DOC.read_text() if DOC.exists() else f"# The console\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
