"""Domain errors carry their HTTP status; one handler renders RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tripguard.core.routes import allowed_methods

logger = logging.getLogger("tripguard.errors")
PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


class DomainError(Exception):
    status = 400
    type = "about:blank"
    title = "Bad request"
    shown_as_page = True  # on a console page, answered with a page in the console's shell

    def __init__(self, detail: str | None = None, *, errors: list[FieldProblem] | None = None,
                 extensions: dict[str, Any] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.extensions = extensions or {}  # RFC 9457 extension members (e.g. a refused worker's `blockers`)

    def headers(self) -> dict[str, str]:
        return {}


class NotAuthenticated(DomainError):
    status, type, title = 401, "/problems/not-authenticated", "Not authenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="tripguard"'}


class PermissionDenied(DomainError):
    status, type, title = 403, "/problems/permission-denied", "Permission denied"


class AgreementUnsigned(PermissionDenied):
    type, title = "/problems/agreement-unsigned", "Confidentiality agreement not signed"


class AccessSuspended(PermissionDenied):
    type, title = "/problems/access-suspended", "Access suspended"


class NotClearedToWork(PermissionDenied):
    """A driver or courier the dispatch gate refuses opens no one's data (`blockers` says why)."""

    type, title = "/problems/not-cleared-to-work", "Not cleared to work"


class WorkerIneligible(DomainError):
    """Work given to a worker the dispatch gate refuses (`blockers` says why); an operator may override
    with a reason."""

    status, type, title = 409, "/problems/worker-ineligible", "Worker not eligible"


class OwnDecision(PermissionDenied):
    """Separation of duties: the staff member is the person the decision is about."""

    type, title = "/problems/own-decision", "Decision about yourself"


class NotFound(DomainError):
    status, type, title = 404, "/problems/not-found", "Not found"


class Conflict(DomainError):
    status, type, title = 409, "/problems/conflict", "Conflict"


class MethodNotAllowed(DomainError):
    status, type, title = 405, "/problems/method-not-allowed", "Method not allowed"


class InvalidInput(DomainError):
    status, type, title = 422, "/problems/invalid-input", "Invalid input"


class TooManyRequests(DomainError):
    status, type, title = 429, "/problems/too-many-requests", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 60):
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class DatabaseUnavailable(DomainError):
    """The database did not answer in time (a partition, a hung primary, every connection busy)."""

    status, type, title = 503, "/problems/database-unavailable", "Service unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    type_: str = "about:blank",
    detail: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        type=type_, title=title, status=status, detail=detail, instance=request.url.path,
        errors=errors,
    ).model_dump(exclude_none=True)
    body.update({k: v for k, v in (extensions or {}).items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] or [str(loc[0]) if loc else "request"]
    return ".".join(parts)


def _html_page(request: Request) -> bool:
    """Pages people open in a browser answer errors with a page: the console and the share links. A
    script there that asks for a problem (a live stream refused: the page says why) gets one."""
    path = request.url.path
    if any(kind in request.headers.get("accept", "") for kind in ("application/problem+json", "text/event-stream")):
        return False
    return path.startswith("/console") or (path.startswith("/s/") and not path.endswith("/position"))


HtmlRenderer = Callable[[Request, DomainError], Response]


def install_error_handlers(app: FastAPI, *, html_renderer: HtmlRenderer | None = None) -> None:
    """`html_renderer` draws a console or share page's error as a page (web's shell; core knows no pages)."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if html_renderer is not None and exc.shown_as_page and _html_page(request):
            return await run_in_threadpool(html_renderer, request, exc)  # it may read the signed-in principal
        return problem_response(
            request, status=exc.status, title=exc.title, type_=exc.type, detail=exc.detail,
            errors=exc.errors, headers=exc.headers(), extensions=exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            FieldProblem(field=_field_name(tuple(e.get("loc", ()))), message=str(e.get("msg")))
            for e in exc.errors()
        ]
        if html_renderer is not None and _html_page(request):
            return await run_in_threadpool(html_renderer, request, InvalidInput(
                "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors))
        return problem_response(
            request, status=422, title="Invalid input", type_="/problems/invalid-input",
            detail="; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        page_error = {404: NotFound, 405: MethodNotAllowed}.get(exc.status_code)
        if html_renderer is not None and page_error is not None and _html_page(request):
            response: Response = await run_in_threadpool(html_renderer, request, page_error())
            response.headers.update(headers)
            return response
        return problem_response(
            request, status=exc.status_code, title=_title_for(exc.status_code),
            detail=str(exc.detail) if exc.detail else None, headers=headers,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced to store the same thing (the same Idempotency-Key, most often): the loser
        # is told to retry, and its retry gets the winner's answer. Never a 500.
        logger.warning("integrity conflict", extra={"path": request.url.path})
        return problem_response(request, status=409, title="Conflict", type_="/problems/concurrent-request",
                                detail="a concurrent request stored the same thing first; retry to get its answer",
                                headers={"Retry-After": "1"})

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database went away mid-request (a restart, a failover, a cut connection), a timeout ended
        # a statement or a lock wait, or no pooled connection came free in time: nothing of the
        # request was committed, and a retry (with the same Idempotency-Key) is the right move.
        logger.warning("database unavailable", extra={"path": getattr(request.scope.get("route"), "path", "unmatched"),
                                                      "error": type(exc).__name__})
        return problem_response(request, status=503, title="Service unavailable",
                                type_="/problems/database-unavailable",
                                detail="the database did not answer; nothing was stored, retry (with the same "
                                       "Idempotency-Key)", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The route's template, never the path: a share link's token or an id must not reach the logs.
        route = request.scope.get("route")
        logger.exception("unhandled error", extra={"path": getattr(route, "path", "unmatched")})
        return problem_response(request, status=500, title="Internal server error")


def _title_for(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
