"""Liveness, readiness and Prometheus metrics (for the monitoring network or a token holder only)."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from tripguard.core.deps import AppEngine, SchemaHead, settings_of
from tripguard.core.errors import PROBLEM_MEDIA_TYPE, DomainError
from tripguard.core.migrations import current_revision
from tripguard.security.auth import Public
from tripguard.security.rate_limit import client_address

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class NotReady(DomainError):
    status, type, title = 503, "/problems/not-ready", "Not ready"


@router.get("/healthz", dependencies=[Public])
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", dependencies=[Public])
def readyz(engine: AppEngine, schema_head: SchemaHead) -> Health:
    """The database answers and its schema is at the version this code expects."""
    try:
        version = current_revision(engine)
    except Exception as exc:  # any database failure means not ready
        raise NotReady(f"database unavailable: {type(exc).__name__}") from exc
    if version != schema_head:
        raise NotReady(f"database schema is at {version}, expected {schema_head}")
    return Health(status="ready")


class MetricsRefused(DomainError):
    status, type, title = 403, "/problems/metrics-refused", "Metrics are for the monitoring network"
    shown_as_page = False


def metrics_reader(request: Request, authorization: Annotated[str | None, Header(max_length=512)] = None) -> None:
    """/metrics counts SOS presses, breaches and alerts: it is served to the networks of
    TRIPGUARD_METRICS_ALLOW (default: this host) and to whoever holds TRIPGUARD_METRICS_TOKEN, no one else.
    The address is the peer's, or behind a trusted proxy (TRIPGUARD_TRUSTED_PROXIES) the client's."""
    settings = settings_of(request.app)
    token = settings.metrics_token
    if token is not None and authorization is not None and authorization.startswith("Bearer ") and \
            hmac.compare_digest(authorization[7:].strip().encode(), token.get_secret_value().encode()):
        return
    try:
        address = ipaddress.ip_address(client_address(request, settings.trusted_proxies))
    except ValueError:
        address = None
    if address is not None and any(address in network for network in settings.metrics_allow):
        return
    raise MetricsRefused("served to the monitoring network (TRIPGUARD_METRICS_ALLOW) or with its bearer token")


@router.get("/metrics", dependencies=[Public, Depends(metrics_reader)], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
                       403: {"description": "not from the monitoring network, and no valid token",
                             "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}})
def metrics() -> Response:
    """Prometheus metrics, for the monitoring network (TRIPGUARD_METRICS_ALLOW) or with
    `Authorization: Bearer <TRIPGUARD_METRICS_TOKEN>`."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
