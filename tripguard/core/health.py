"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from tripguard.core.db import READ_ONLY
from tripguard.core.errors import DomainError
from tripguard.security.auth import Public

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
def readyz(request: Request) -> Health:
    """The database answers and its schema is at the version this code expects."""
    try:
        with request.app.state.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # any database failure means not ready
        raise NotReady(f"database unavailable: {type(exc).__name__}") from exc
    if version != request.app.state.schema_head:
        raise NotReady(f"database schema is at {version}, expected {request.app.state.schema_head}")
    return Health(status="ready")


@router.get("/metrics", dependencies=[Public], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
