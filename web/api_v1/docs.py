"""How the API describes itself in the OpenAPI schema: the error answers every route shares, and
problem+json as their media type."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from web.problems import PROBLEM, Problem


def _error(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": Problem, "description": description}
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return answer


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No valid token.", **{"WWW-Authenticate": "Bearer"}),
    404: _error("No such object, or not within the token's branches (the two are not told apart)."),
    422: _error("The request did not validate (`errors` points at each field) or cannot be carried out."),
    429: _error("The token's request budget is spent.", **{"Retry-After": "Seconds until a request is admitted."}),
    503: _error("Overloaded for a moment: retry.", **{"Retry-After": "Seconds to wait."}),
}
# routes that change something: a read-only token is refused, and they take a JSON body
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body is not well-formed JSON in UTF-8."),
    403: _error("The token is read-only."),
    413: _error("The body is larger than 1 MiB."),
    415: _error("The body is not JSON."),
}


def install_openapi(app: FastAPI, prefix: str) -> None:
    """The schema as FastAPI builds it, with the API's error answers as application/problem+json
    (FastAPI documents every model as application/json)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            for path, operations in schema.get("paths", {}).items():
                if not path.startswith(prefix):
                    continue
                for operation in operations.values():
                    for status, answer in operation.get("responses", {}).items():
                        content = answer.get("content", {})
                        if status[0] in "45" and "application/json" in content:
                            content[PROBLEM] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
