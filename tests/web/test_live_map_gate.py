"""The live map (every active trip's position) is for the emergency purpose only, and every opening is audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit.models import AuditEntry
from tripguard.security.permissions import Role


def test_an_integration_key_cannot_watch_the_city(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.get("/console/live/snapshot").status_code == 403
    assert client.get("/console/live/stream").status_code == 403
    act_as(Role.SUPERVISOR)
    assert client.get("/console/live/snapshot").status_code == 403


def test_an_agent_opening_the_live_view_is_audited(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SAFETY_AGENT, id="stf_AGENT")
    assert client.get("/console/live/snapshot").status_code == 200
    opened = db.scalars(select(AuditEntry).where(AuditEntry.action == "live_map.open")).all()
    assert [(e.actor_id, e.purpose, e.target_id) for e in opened] == [("stf_AGENT", "emergency", "snapshot")]


def test_scripts_never_hand_operator_text_to_leaflet_as_html() -> None:
    """Leaflet renders a string tooltip or popup as HTML: ours get DOM text nodes (asText)."""
    import re

    from tripguard.console.shell import STATIC_DIR

    assert (STATIC_DIR / "live.js").exists()  # the scripts are where the app serves them from
    for script in STATIC_DIR.glob("*.js"):
        if script.name.endswith(".min.js"):
            continue
        for call in re.findall(r"bind(?:Tooltip|Popup)\(([^)]*)\)", script.read_text()):
            assert call.startswith("asText("), f"{script.name}: bindTooltip/bindPopup({call})"


def test_html_in_a_trip_id_never_reaches_the_map(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    report = client.post("/api/v1/telematics/events", headers={"content-type": "application/x-ndjson"},
                         content=b'{"type":"trip_started","trip_id":"<img src=x onerror=alert(1)>",'
                                 b'"ts":"2026-03-01T08:00:00Z"}\n')
    assert report.status_code == 422 and "id" in report.text


def test_a_refused_live_stream_says_why_to_the_script_that_asks(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    """The page's EventSource cannot read a refusal; the script asks again for a problem and shows it
    ("sign the confidentiality agreement"), instead of reconnecting for ever."""
    act_as(Role.SAFETY_AGENT, id="stf_NEW", signed=False)
    for accept in ("application/problem+json", "text/event-stream"):
        refused = client.get("/console/live/stream", headers={"Accept": accept})
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == "/problems/agreement-unsigned"
    page = client.get("/console/live/stream", headers={"Accept": "text/html"})  # a person opening the address
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
