"""HTTP behaviour shared by every route: problem+json, request ids, security headers, health, metrics, logs."""

from __future__ import annotations

import logging
from ipaddress import ip_network

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from tests import builders
from tripguard.core.logging import JsonFormatter
from tripguard.security.permissions import Role


def test_security_headers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers  # plain HTTP here


def test_hsts_when_served_over_tls(database_url, tmp_path, session_factory) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings
    from tripguard.app import create_app

    app = create_app(make_settings(database_url, tmp_path, base_url="https://tripguard.example.com"),
                     session_factory=session_factory)
    with TestClient(app) as client:
        assert "max-age=" in client.get("/healthz").headers["strict-transport-security"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-12345678"}).headers["x-request-id"] == "abc-12345678"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 32


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong = client.delete("/api/v1/staff")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"


def test_malformed_json_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post("/api/v1/auth/sign-in", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["errors"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/api/v1/staff/stf_SECRETID/roles")
    with TestClient(client.app, client=("127.0.0.1", 50000)) as prometheus:
        body = prometheus.get("/metrics").text
    assert "tripguard_http_requests_total" in body
    assert "stf_SECRETID" not in body


def test_metrics_are_for_the_monitoring_network_or_a_token(app, settings) -> None:  # type: ignore[no-untyped-def]
    """/metrics was public: anyone could read SOS and breach counts (issue #27). It is served to
    TRIPGUARD_METRICS_ALLOW (default: this host) and with TRIPGUARD_METRICS_TOKEN, to no one else."""
    token = "metrics-token-0123456789abcdef"

    def get(peer: str, **headers: str) -> int:
        with TestClient(app, client=(peer, 40000)) as client:
            answer = client.get("/metrics", headers=headers)
        if answer.status_code == 403:
            assert answer.headers["content-type"] == "application/problem+json"
            assert "tripguard_" not in answer.text
        return answer.status_code

    assert [get(peer) for peer in ("127.0.0.1", "::1", "203.0.113.5", "10.1.2.3", "testclient")] == \
        [200, 200, 403, 403, 403]
    assert get("203.0.113.5", authorization=f"Bearer {token}") == 403  # no token configured: none works
    app.state.settings = settings.model_copy(update={"metrics_token": SecretStr(token)})
    assert get("203.0.113.5", authorization=f"Bearer {token}") == 200
    assert get("203.0.113.5", authorization=f"Bearer {token[:-1]}x") == 403
    assert get("203.0.113.5", authorization=token) == 403
    app.state.settings = settings.model_copy(update={"metrics_allow": [ip_network("10.0.0.0/8")]})
    assert (get("10.1.2.3"), get("127.0.0.1")) == (200, 403)
    # X-Forwarded-For counts only from a trusted proxy, and then names the client that is checked.
    assert get("203.0.113.5", **{"x-forwarded-for": "10.1.2.3"}) == 403
    app.state.settings = settings.model_copy(update={"trusted_proxies": [ip_network("127.0.0.1/32")]})
    assert get("127.0.0.1", **{"x-forwarded-for": "203.0.113.9"}) == 403  # the internet, through our proxy
    assert get("127.0.0.1") == 200  # Prometheus on this host, not through the proxy


def test_the_metrics_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from tripguard.core.settings import Settings

    monkeypatch.setenv("TRIPGUARD_METRICS_ALLOW", "10.0.0.0/8, 192.0.2.7")
    assert [str(n) for n in Settings().metrics_allow] == ["10.0.0.0/8", "192.0.2.7/32"]
    monkeypatch.setenv("TRIPGUARD_METRICS_ALLOW", "")
    assert Settings().metrics_allow == []
    monkeypatch.setenv("TRIPGUARD_METRICS_TOKEN", "short")
    with pytest.raises(ValidationError, match="24 characters"):
        Settings()


def test_logs_hold_no_passwords_or_tokens(client: TestClient, db: Session, caplog: pytest.LogCaptureFixture) -> None:
    builders.staff(db, "log.check", Role.TRAINER)
    logger = logging.getLogger("tripguard")  # it does not propagate to the root logger
    logger.addHandler(caplog.handler)
    try:
        client.post("/api/v1/auth/sign-in", json={"username": "log.check", "password": builders.PASSWORD})
        client.post("/api/v1/auth/sign-in", json={"username": "log.check", "password": "wrong-password-xyz"})
    finally:
        logger.removeHandler(caplog.handler)
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(record) + str(record.__dict__) for record in caplog.records)
    assert caplog.records, "requests are logged"
    assert builders.PASSWORD not in text and "wrong-password-xyz" not in text
    session_cookie = client.cookies.get("tg_session")
    assert session_cookie and session_cookie not in text


def test_control_characters_are_refused_with_the_field(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    # Found by the fuzz on PostgreSQL, which cannot store NUL: this was a 500.
    act_as(Role.SYSTEM_ADMIN)
    response = client.post("/api/v1/staff", json={"username": "nul.test", "display_name": "王\u0000芳",
                                                   "password": "a long enough passphrase"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "display_name"
    assert client.post("/api/v1/staff/stf%00X/disable").status_code == 422
    assert client.post("/api/v1/auth/sign-in", json={"username": "a\u0000", "password": "x"}).status_code == 422
