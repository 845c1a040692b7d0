"""Hostile values in every query and path parameter, and deep JSON in every JSON body, as staff, an API key and
a subject: never a 500 (the sweep of the review of #27, kept as a guard beside the fuzz)."""

from __future__ import annotations

import os
import re

from fastapi.testclient import TestClient

from tripguard.security.permissions import STAFF_ROLES, Role

BAD_ALL = ["0001-01", "9999W52", "0000Q1", "2026-13", "2026W53", "1969-12-31", "1970-01-01T00:00:00Z",
       "-1", "0", "99999999999999999999999", "1e309", "NaN", "%00", "\u0000", "x" * 5000, "２０２６Q1",  # noqa: RUF001 - full-width digits on purpose
       "2026Q１", "0001-01-01", "9999-12-31T23:59:59Z", "2026-02-30", "2026-W01", "../../etc/passwd", "①"]  # noqa: RUF001 - full-width digit
# `make test` sweeps with one value of each kind (a period, a date, a huge number, a control character, a long
# string, a path); `make fuzz` (TRIPGUARD_FUZZ=1) with every one.
BAD = BAD_ALL if os.environ.get("TRIPGUARD_FUZZ") else ["9999W52", "2026-02-30", "99999999999999999999999",
                                                        "\u0000", "x" * 5000, "../../etc/passwd"]
DEEP = "[" * 5000 + "]" * 5000


def _sweep(client: TestClient) -> list[str]:
    spec = client.get("/api/v1/openapi.json").json()
    failures: list[str] = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = op.get("parameters", [])
            path_params = [p["name"] for p in params if p["in"] == "path"]
            query_params = [p["name"] for p in params if p["in"] == "query"]
            for bad in BAD:
                url = path
                for name in path_params:
                    url = url.replace("{" + name + "}", re.sub(r"[/]", "_", bad) or "x")
                for target in ["path", *query_params]:
                    q = {} if target == "path" else {target: bad}
                    if target != "path" and path_params:
                        url2 = path
                        for name in path_params:
                            url2 = url2.replace("{" + name + "}", "2026Q1" if "quarter" in name else "x1")
                    else:
                        url2 = url
                    try:
                        r = client.request(method.upper(), url2, params=q,
                                           json={} if method in ("post", "put", "patch") else None)
                    except Exception as exc:  # noqa: BLE001
                        if type(exc).__name__ != "InvalidURL":
                            failures.append(f"{method} {url2} {q!r}: raised {type(exc).__name__}: {exc}"[:300])
                        continue
                    if r.status_code >= 500:
                        failures.append(f"{method} {url2} {q!r}: {r.status_code} {r.text[:200]}")
                    if target == "path" and not path_params:
                        break
            if method in ("post", "put", "patch") and "requestBody" in op:
                url = path
                for name in path_params:
                    url = url.replace("{" + name + "}", "x1")
                for body in (DEEP, '{"a":' * 3000 + "1" + "}" * 3000):
                    try:
                        r = client.request(method.upper(), url, content=body.encode(),
                                           headers={"content-type": "application/json"})
                    except Exception as exc:  # noqa: BLE001
                        failures.append(f"{method} {url} deep: raised {type(exc).__name__}")
                        continue
                    if r.status_code >= 500:
                        failures.append(f"{method} {url} deep: {r.status_code} {r.text[:200]}")
    return failures


def test_staff_sweep(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(*STAFF_ROLES)
    failures = _sweep(client)
    print("\n".join(failures))
    assert failures == []


def test_api_key_sweep(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    failures = _sweep(client)
    print("\n".join(failures))
    assert failures == []


def test_worker_sweep(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.COURIER, Role.DRIVER, Role.PASSENGER, Role.CUSTOMER, kind="subject", id="cou_SWEEP")
    failures = _sweep(client)
    print("\n".join(failures))
    assert failures == []
