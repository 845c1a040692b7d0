"""The application's HTTP routes, flattened (FastAPI keeps included routers nested)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import compile_path


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
