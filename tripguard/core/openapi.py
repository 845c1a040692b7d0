"""OpenAPI finishing: problem+json error responses everywhere, and each route's permission."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tripguard.core.admission import Lane, declared_lane
from tripguard.core.errors import PROBLEM_MEDIA_TYPE, Problem
from tripguard.core.routes import api_routes

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ERROR_RESPONSES = {
    "401": "Not authenticated",
    "403": "Permission denied",
    "422": "Invalid input: `errors` names each field and why",
    "default": "Any other error, as RFC 9457 problem+json",
}
# What admission control (core.admission) may answer, by the route's lane: never anything for an SOS.
_TOO_MANY = {"429": "Too many requests of this principal in flight: retry after `Retry-After` seconds"}
_BUSY = {"503": "Busy: bulk work is refused first while the server is saturated; retry after `Retry-After` seconds"}
_ADMISSION_RESPONSES = {Lane.NORMAL: _TOO_MANY, Lane.BULK: _TOO_MANY | _BUSY,
                        Lane.BULK_WHEN_DOWNLOADED: _TOO_MANY | _BUSY}
RETRY_AFTER = {"description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}}


def install_openapi(app: FastAPI, permission_of: Any) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem_schema.pop("$defs", {}))
        components["Problem"] = problem_schema
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        permissions = {
            (info.path, method.lower()): permission_of(info.route.dependant)
            for info in api_routes(app) for method in info.methods
        }
        lanes = {(info.path, method.lower()): declared_lane(info.route.dependant)
                 for info in api_routes(app) for method in info.methods}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                permission = permissions.get((path, method))
                operation["x-permission"] = permission.value if permission else None
                lane = lanes.get((path, method), Lane.NORMAL)
                operation["x-admission"] = lane.value
                responses = operation.setdefault("responses", {})
                for code, description in _ADMISSION_RESPONSES.get(lane, {}).items():
                    responses[code] = {"description": description, "headers": {"Retry-After": RETRY_AFTER},
                                       "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}
                for code, description in _ERROR_RESPONSES.items():
                    if code in ("401", "403") and (permission is None or permission.value == "public"):
                        continue
                    responses[code] = {
                        "description": description,
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
