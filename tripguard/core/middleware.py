"""Pure ASGI middleware: request ids, security headers, access log and Prometheus metrics."""

from __future__ import annotations

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


def origin_of(url_template: str) -> str:
    """scheme://host of a tile URL template such as https://{s}.tile.example.com/{z}/{x}/{y}.png."""
    scheme, _, rest = url_template.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].replace('{s}', '*')}"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool, image_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.hsts = hsts
        # The live map's tiles come from the configured tile server.
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
