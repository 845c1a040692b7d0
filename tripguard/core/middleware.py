"""Pure ASGI middleware: request ids, security headers, access log, Prometheus metrics, body first."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tripguard.core.logging import request_id_var

logger = logging.getLogger("tripguard.http")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

REQUESTS = Counter("tripguard_http_requests_total", "HTTP requests", ["method", "route", "status"])
SHED = Counter("tripguard_admission_shed_total", "Requests refused by admission control (core.admission): 429 "
               "for one principal's excess, 503 for bulk work", ["lane", "reason"])
LATENCY = Histogram(
    "tripguard_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
# Swagger UI (at /docs only) loads from its CDN and bootstraps with an inline script.
_DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {_DOCS_CDN}; "
    f"style-src 'self' 'unsafe-inline' {_DOCS_CDN}; img-src 'self' data: https://fastapi.tiangolo.com; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool, image_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.hsts = hsts
        # The maps' tiles come from the configured tile server (core.basemap.tile_origins).
        self.csp = CSP.replace("img-src 'self' data:", " ".join(["img-src 'self' data:", *image_origins]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        started = time.perf_counter()
        status_holder: dict[str, int] = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                existing = {k.lower() for k, _ in message.get("headers", [])}
                if b"content-security-policy" not in existing:
                    csp = DOCS_CSP if path.startswith("/docs") else self.csp
                    extra.append((b"content-security-policy", csp.encode()))
                if self.hsts:
                    extra.append(
                        (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
                    )
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status_holder["status"])).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            logger.info(
                "request",
                extra={
                    "method": scope["method"], "path": route, "status": status_holder["status"],
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


def _route_template(scope: Scope) -> str:
    # The matched route's template, never the concrete path: ids and tokens stay out of logs.
    route: Any = scope.get("route")
    return getattr(route, "path", None) or scope.get("root_path") or "unmatched"


class BodyFirstMiddleware:
    """Read a request's whole body before the app sees the request, within a size cap and a time limit.

    So no handler, dependency or database transaction ever waits on a slow or stalled client: on SQLite
    a transaction holds the single writer, and an upload that sent its headers and then went silent
    would otherwise hold it (and every SOS behind it) until the client gave up. A body over the cap is
    a 413, one not finished in time a 408, and JSON holding a lone surrogate a 400,
    each before any work is done.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _problem(send, 413, "Content Too Large", f"a request body is at most {self.max_bytes} bytes")
            return
        try:
            body = await asyncio.wait_for(_read_body(receive, self.max_bytes), self.timeout)
        except TimeoutError:
            await _problem(send, 408, "Request Timeout",
                           f"the request body did not arrive within {self.timeout:g} seconds")
            return
        except _TooLarge:
            await _problem(send, 413, "Content Too Large", f"a request body is at most {self.max_bytes} bytes")
            return
        except _Disconnected:
            return
        problem = json_body_problem(body, headers.get(b"content-type", b""))
        if problem is not None:
            await _problem(send, 400, "Bad Request", problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as Starlette expects

        await self.app(scope, replay, send)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_body_problem(body: bytes, content_type: bytes) -> str | None:
    """Why a JSON body cannot be taken (a lone surrogate: no column, no cipher, no page can hold it), or
    None. Cheap for the usual body: it is parsed here only when it holds a surrogate escape."""
    if b"json" not in content_type.lower() or b"ndjson" in content_type.lower():
        return None
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(json.loads(body), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character"
        except (ValueError, RecursionError):
            return None  # not JSON, or nested past reason: the route's own parsing answers 400/422
    return None


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
