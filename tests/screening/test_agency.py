"""A screening agency that times out, fails, refuses, calls back twice or sends a forged signature
leaves every applicant in a correct state, with nothing lost; the HTTP adapter against a live stub."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import CALLBACK_SECRET, apply, callback, run_agency
from tripguard.core.clock import utcnow
from tripguard.core.errors import DomainError
from tripguard.screening.agency import take_callback
from tripguard.screening.models import AgencyEvent, Applicant, Check, Report
from tripguard.screening.providers import AgencyError, AgencyRefused, HttpScreeningAgency, sign
from tripguard.screening.service import Rules
from tripguard.security.permissions import Role


def _report(db: Session, worker_id: str) -> Report:
    db.expire_all()
    return db.scalars(select(Report).where(Report.applicant_id == worker_id, Report.kind == "initial")).one()


def _make_due(db: Session) -> None:
    db.execute(update(Report).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.commit()


@pytest.mark.parametrize("scenario", ["008", "009"])  # the simulated agency times out / answers 5xx
def test_an_agency_that_does_not_answer_is_retried_then_a_person_looks(
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as,  # type: ignore[no-untyped-def]
        scenario: str) -> None:
    assert apply(client, act_as, "drv_t", scenario).status_code == 201
    first = run_agency(screening_app, session_factory)
    assert (first.sent, first.retried, first.failed) == (0, 1, 0)
    report = _report(db, "drv_t")
    assert report.status == "queued" and report.attempts == 1 and report.last_error
    assert report.next_attempt_at > utcnow() + timedelta(seconds=5)  # backed off, not hammered
    assert run_agency(screening_app, session_factory).retried == 0  # not due yet
    for _ in range(screening_app.state.settings.screening_max_attempts - 1):
        _make_due(db)
        run_agency(screening_app, session_factory)
    report = _report(db, "drv_t")
    assert report.status == "failed" and report.attempts == screening_app.state.settings.screening_max_attempts
    applicant = db.get(Applicant, "drv_t")
    assert applicant is not None and applicant.status == "review"  # before an officer, not waiting for ever
    _make_due(db)
    assert run_agency(screening_app, session_factory).sent == 0  # a failed report is not sent again


def test_a_dispatcher_that_died_mid_request_is_replaced_once_its_claim_runs_out(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    assert apply(client, act_as, "drv_c", "001").status_code == 201
    # Claimed (attempts 1, held) but never answered: the process died while asking.
    db.execute(update(Report).values(attempts=1, next_attempt_at=utcnow() + timedelta(minutes=1)))
    db.commit()
    assert run_agency(screening_app, session_factory).sent == 0  # the claim still holds
    _make_due(db)
    assert run_agency(screening_app, session_factory).sent == 1
    db.expire_all()
    assert db.get(Applicant, "drv_c").status == "active"  # type: ignore[union-attr]


def _http_app(screening_app: FastAPI, agency: HttpScreeningAgency) -> None:
    screening_app.state.screening_agency = agency


def test_results_that_come_back_as_callbacks_are_taken_once_and_only_when_signed(
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as,  # type: ignore[no-untyped-def]
        stub_agency: StubAgency) -> None:
    _http_app(screening_app, stub_agency.adapter)
    assert apply(client, act_as, "drv_h", "001", role="courier").status_code == 201
    assert run_agency(screening_app, session_factory).sent == 1
    sent = stub_agency.requests[0]
    assert sent["path"] == "/reports" and sent["auth"] == "Bearer agency-key"
    assert sent["body"]["candidate"] == "drv_h" and sent["body"]["role"] == "courier"
    assert sent["body"]["selfie"] and sent["body"]["name"] == "李师傅"  # for the name match and liveness
    report_id = sent["body"]["reference"]
    assert _report(db, "drv_h").status == "requested"

    def done(check: str, event: str, result: str = "clear",
             facts: dict[str, object] | None = None) -> dict[str, object]:
        return {"id": event, "type": "check.completed", "report": report_id, "check": check, "status": "complete",
                "result": result, "facts": facts if facts is not None else {}}

    # A forged signature, a stale one, a missing one: refused, nothing stored.
    forged = callback(client, done("identity", "e1", facts={"name_match": True}), secret="not-the-secret")
    assert forged.status_code == 400 and "bad-signature" in forged.text
    stale = callback(client, done("identity", "e1", facts={"name_match": True}), at=int(time.time()) - 3600)
    assert stale.status_code == 400
    unsigned = client.post("/api/v1/screening/callbacks", content=b"{}")
    assert unsigned.status_code == 400
    assert db.scalars(select(AgencyEvent)).first() is None

    assert callback(client, done("identity", "e1", facts={"name_match": True})).json() == {"received": "taken"}
    assert callback(client, done("identity", "e1", facts={"name_match": True})).json() == {"received": "duplicate"}
    assert callback(client, done("criminal_record", "e2", facts={"records": []})).status_code == 200
    db.expire_all()
    assert db.get(Applicant, "drv_h").status == "screening"  # type: ignore[union-attr]  # credit still pending
    assert callback(client, done("credit", "e3", facts={"credit_score": 700})).status_code == 200
    db.expire_all()
    assert db.get(Applicant, "drv_h").status == "active"  # type: ignore[union-attr]
    assert _report(db, "drv_h").status == "complete"
    # the same answer under a new event id (an agency's retry after a lost response) changes nothing
    assert callback(client, done("credit", "e4", facts={"credit_score": 700})).json() == {"received": "taken"}
    db.expire_all()
    assert db.get(Applicant, "drv_h").status == "active"  # type: ignore[union-attr]

    # Bad events are clear errors, never a 500.
    assert callback(client, {"id": "e5", "type": "check.completed", "report": "rep_nope", "check": "credit",
                             "status": "complete", "result": "clear", "facts": {}}).status_code == 404
    assert callback(client, done("astrology", "e6")).status_code == 422
    assert callback(client, {"id": "e7", "type": "party"}).status_code == 422
    assert callback(client, {"type": "record.found"}).status_code == 422
    assert callback(client, {"id": "e8", "type": "record.found", "worker": "drv_h", "records": []}).status_code == 422
    raw = b"\xff\xfe not json"
    header = sign(CALLBACK_SECRET.encode(), raw, int(time.time()))
    assert client.post("/api/v1/screening/callbacks", content=raw,
                       headers={"X-Screening-Signature": header}).status_code == 422
    # Signed, but nested past reason (issue #27): 100,000 brackets were a RecursionError, a 500; facts nested
    # 500 deep parsed, then broke what stores and shows them. Both are 422s, and nothing is kept.
    deep_facts = {"id": "e9", "type": "check.completed", "report": report_id, "check": "identity",
                  "status": "complete", "result": "clear", "facts": {"x": json.loads("[" * 500 + "]" * 500)}}
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"id":"e10","x":' + b"{\"a\":" * 50_000 + b"1" + b"}" * 50_001,
                json.dumps(deep_facts).encode()):
        header = sign(CALLBACK_SECRET.encode(), raw, int(time.time()))
        deep = client.post("/api/v1/screening/callbacks", content=raw,
                           headers={"X-Screening-Signature": header, "Content-Type": "application/json"})
        assert deep.status_code == 422 and "nested" in deep.text, deep.text[:300]
    assert db.get(AgencyEvent, "simulated:e9") is None


def test_a_check_the_agency_cannot_finish_goes_to_a_person(
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as,  # type: ignore[no-untyped-def]
        stub_agency: StubAgency) -> None:
    _http_app(screening_app, stub_agency.adapter)
    assert apply(client, act_as, "drv_s", "001", role="courier").status_code == 201
    run_agency(screening_app, session_factory)
    report_id = stub_agency.requests[0]["body"]["reference"]
    for event, check, status in (("s1", "identity", "complete"), ("s2", "criminal_record", "suspended"),
                                 ("s3", "credit", "complete")):
        facts = {"identity": {"name_match": True}, "credit": {"credit_score": 650}}.get(check, {})
        body = {"id": event, "type": "check.completed", "report": report_id, "check": check, "status": status,
                "result": "clear" if status == "complete" else None, "facts": facts}
        assert callback(client, body).status_code == 200
    db.expire_all()
    applicant = db.get(Applicant, "drv_s")
    assert applicant is not None and applicant.status == "review" and applicant.outcome == "consider"


@pytest.mark.parametrize(("status", "outcome"), [(503, "retried"), (429, "retried"), (400, "failed"),
                                                 (401, "failed")])
def test_the_http_adapter_retries_what_may_pass_and_fails_what_cannot(
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as,  # type: ignore[no-untyped-def]
        stub_agency: StubAgency, status: int, outcome: str) -> None:
    stub_agency.answer = status
    _http_app(screening_app, stub_agency.adapter)
    assert apply(client, act_as, "drv_x", "001").status_code == 201
    result = run_agency(screening_app, session_factory)
    assert getattr(result, outcome) == 1
    db.expire_all()
    assert db.get(Applicant, "drv_x").status == ("screening" if outcome == "retried" else "review")  # type: ignore[union-attr]


def test_the_http_adapter_times_out() -> None:
    silent = ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    threading.Thread(target=silent.serve_forever, daemon=True).start()
    try:
        agency = HttpScreeningAgency(f"http://127.0.0.1:{silent.server_address[1]}", "k", "http://cb",
                                     timeout_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(AgencyError):
            agency.request(report_id="r", applicant_id="a", id_number="x", name="n", role="driver", selfie=None)
        assert time.monotonic() - started < 5
        closed = HttpScreeningAgency("http://127.0.0.1:9", "k", "http://cb", timeout_seconds=0.3)
        with pytest.raises(AgencyError):
            closed.unenroll(applicant_id="a")
    finally:
        silent.shutdown()


def test_a_new_record_while_under_review_waits_for_the_officer_and_leavers_are_unenrolled(
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session], act_as, gate,  # type: ignore[no-untyped-def]
        stub_agency: StubAgency) -> None:
    assert apply(client, act_as, "drv_r", "006").status_code == 201
    run_agency(screening_app, session_factory)
    assert callback(client, {"id": "r1", "type": "record.found", "worker": "drv_r",
                             "records": ["violent_crime"]}).status_code == 200
    db.expire_all()
    applicant = db.get(Applicant, "drv_r")
    assert applicant is not None and applicant.status == "review" and applicant.outcome == "reject"
    records = db.scalars(select(Check).where(Check.applicant_id == "drv_r", Check.kind == "criminal_record")).all()
    assert len(records) == 2  # the first report's and the pushed one, both kept
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.post("/api/v1/applicants/drv_r/offboard").json()["status"] == "offboarded"
    assert client.post("/api/v1/applicants/drv_r/offboard").json()["status"] == "offboarded"  # a retry
    answer = gate("drv_r")
    assert [b["code"] for b in answer["blockers"]] == ["worker.offboarded"]
    _http_app(screening_app, stub_agency.adapter)
    assert run_agency(screening_app, session_factory).sent == 1
    assert stub_agency.requests[-1]["method"] == "DELETE" and stub_agency.requests[-1]["path"] == "/monitoring/drv_r"
    db.expire_all()
    assert db.scalars(select(Report).where(Report.kind == "unenroll")).one().status == "complete"
    # someone who left may apply again, and is screened afresh
    again = apply(client, act_as, "drv_r", "001")
    assert again.status_code == 201 and again.json()["status"] == "screening"


# --- a stand-in agency server for the HTTP adapter -------------------------------------------------

class StubAgency:
    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.answer = 202
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                owner.requests.append({"method": self.command, "path": self.path, "body": body,
                                       "auth": self.headers.get("authorization")})
                self.send_response(owner.answer)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.adapter = HttpScreeningAgency(f"http://127.0.0.1:{self.server.server_address[1]}", "agency-key",
                                           "http://testserver/api/v1/screening/callbacks", timeout_seconds=2)


class _Silent(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        time.sleep(2)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def stub_agency() -> Iterator[StubAgency]:
    stub = StubAgency()
    threading.Thread(target=stub.server.serve_forever, daemon=True).start()
    yield stub
    stub.server.shutdown()


def test_refusal_is_not_retried() -> None:
    assert issubclass(AgencyRefused, Exception) and not issubclass(AgencyRefused, AgencyError)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                     max_leaves=12)
_EVENTS = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=120) | st.integers(),
    "type": st.sampled_from(["check.completed", "record.found", "x"]) | _JSON,
    "report": st.text(max_size=50) | _JSON, "worker": st.sampled_from(["drv_p", "nobody"]) | _JSON,
    "check": st.sampled_from(["identity", "credit", "astrology"]) | _JSON,
    "status": st.sampled_from(["complete", "suspended", "pending"]) | _JSON,
    "result": st.sampled_from(["clear", "consider", None]) | _JSON, "facts": _JSON, "records": _JSON})


@hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=_EVENTS, raw=st.binary(max_size=200), header=st.text(max_size=120))
def test_no_callback_is_ever_an_error_of_ours(db: Session, screening_app: FastAPI, event: dict[str, object],
                                              raw: bytes, header: str) -> None:
    """Signed or not, well-formed or not: a callback is taken or refused with a clear problem, never a crash."""
    vault, rules = screening_app.state.vault, Rules(webhook_url=None)
    signed = json.dumps(event).encode()
    for body, signature in ((signed, sign(CALLBACK_SECRET.encode(), signed, int(time.time()))), (raw, header)):
        try:
            take_callback(db, vault=vault, rules=rules, secret=CALLBACK_SECRET, agency="simulated", raw=body,
                          signature=signature, now=int(time.time()))
        except DomainError:
            pass
        finally:
            db.rollback()
