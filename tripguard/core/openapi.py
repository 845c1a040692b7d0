"""OpenAPI finishing: problem+json error responses everywhere, and each route's permission."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tripguard.core.errors import PROBLEM_MEDIA_TYPE, Problem
from tripguard.core.routes import api_routes

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ERROR_RESPONSES = {
    "401": "Not authenticated",
    "403": "Permission denied",
    "422": "Invalid input: `errors` names each field and why",
    "default": "Any other error, as RFC 9457 problem+json",
}


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
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                permission = permissions.get((path, method))
                operation["x-permission"] = permission.value if permission else None
                responses = operation.setdefault("responses", {})
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
