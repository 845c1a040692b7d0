"""The application's HTTP routes, flattened (FastAPI keeps included routers nested)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    route: APIRoute


def api_routes(app: FastAPI) -> Iterator[RouteInfo]:
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute):
            yield RouteInfo(path=context.path or original.path,
                            methods=frozenset(context.methods or original.methods or ()), route=original)


# Each app's routes, compiled once (an app's routes do not change once it serves).
_Patterns = list[tuple[re.Pattern[str], frozenset[str]]]
_PATTERNS: WeakKeyDictionary[FastAPI, _Patterns] = WeakKeyDictionary()


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at `path` (Starlette's 405 names only the first route's)."""
    compiled = _PATTERNS.get(app)
    if compiled is None:
        compiled = [(compile_path(info.path)[0], info.methods) for info in api_routes(app)]
        _PATTERNS[app] = compiled
    methods: set[str] = set()
    for pattern, route_methods in compiled:
        if pattern.match(path):
            methods |= route_methods
    return sorted(methods)


# Routes built once per process, shared by every app made in it. FastAPI builds an included router's routes
# (their dependencies, their response models) lazily, on the first request an app gets for them, and again for
# every new app: about 0.2 s of CPU per app for the API's first two requests, a quarter of the suite's time
# where each test makes its own app. Shared, the routes cannot hold one app as the provider of their dependency
# overrides; they read the overrides of the app serving the request.
SERVING_APP: ContextVar[Any] = ContextVar("tripguard_serving_app", default=None)


class ServingAppOverrides:
    """A shared router's `dependency_overrides_provider`: the overrides of the app serving this request."""

    @property
    def dependency_overrides(self) -> dict[Callable[..., Any], Callable[..., Any]]:
        app = SERVING_APP.get()
        return app.dependency_overrides if app is not None else {}


class ServingAppMiddleware:
    """Names the app serving the request (`SERVING_APP`), for `ServingAppOverrides`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = SERVING_APP.set(scope.get("app"))
        try:
            await self.app(scope, receive, send)
        finally:
            SERVING_APP.reset(token)
