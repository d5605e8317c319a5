"""The OpenAPI document describes the error answers the app really gives.

Every error body is `{"detail": "<a sentence>"}`; a validation error (422) adds `errors`, the
problems one by one (`loc`, `msg`, `type`). FastAPI's default document promised
`{"detail": [ValidationError]}` for 422 and left 400, 405, 413, 415 and 5xx out. Here every
operation gets its 422 (when it takes input) in the real shape, any other 4xx and 5xx as
`ErrorOut`, and the error codes a route already names keep their descriptions. Path ids are
described with the range and alphabet app/web/params.py lets through.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.web.params import CONVERSATION_ID_SCHEMA, ROW_ID_SCHEMA

ERROR_OUT: dict[str, Any] = {
    "title": "ErrorOut",
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "what went wrong, for people"}},
    "required": ["detail"],
}
VALIDATION_ERROR_OUT: dict[str, Any] = {
    "title": "ValidationErrorOut",
    "type": "object",
    "properties": {
        "detail": {
            "type": "string",
            "description": "one sentence per problem, e.g. 'params.temperature: must be <= 2'",
        },
        "errors": {
            "type": "array",
            "description": "the problems one by one (absent when the service refused the input)",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
                "required": ["loc", "msg", "type"],
            },
        },
    },
    "required": ["detail"],
}
HEALTH_OUT: dict[str, Any] = {
    "title": "HealthOut",
    "type": "object",
    "properties": {"status": {"type": "string"}, "database": {"type": "string"}},
    "required": ["status"],
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _describe_ids(operation: dict[str, Any]) -> None:
    """Path ids with the range and alphabet the app accepts (others are 404s)."""
    for parameter in operation.get("parameters", []):
        name = parameter.get("name", "")
        if parameter.get("in") != "path":
            continue
        if name == "conversation_id":
            parameter["schema"] = {**parameter.get("schema", {}), **CONVERSATION_ID_SCHEMA}
        elif name.endswith("_id"):
            parameter["schema"] = {**parameter.get("schema", {}), **ROW_ID_SCHEMA}


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the error responses of every operation in place; return the document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorOut"] = ERROR_OUT
    schemas["ValidationErrorOut"] = VALIDATION_ERROR_OUT
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            _describe_ids(operation)
            responses = operation.setdefault("responses", {})
            takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
            if takes_input and "422" not in responses:
                responses["422"] = {"description": "Invalid input"}
            for code, response in responses.items():
                if code == "422":
                    response["content"] = _json("ValidationErrorOut")
                elif code[0] in "45":
                    response["content"] = _json("ErrorOut")
            responses.setdefault(
                "4XX",
                {
                    "description": "Refused; `detail` says why (e.g. 400 unknown Host, 404 not "
                    "found, 405 method, 409 not now, 413 body too large, 415 not JSON)",
                    "content": _json("ErrorOut"),
                },
            )
            responses.setdefault(
                "5XX",
                {"description": "The app or a model server failed", "content": _json("ErrorOut")},
            )
            if path == "/healthz":
                responses["503"] = {
                    "description": "The database cannot be reached",
                    "content": _json("HealthOut"),
                }
                schemas["HealthOut"] = HEALTH_OUT
    # FastAPI's 422 schemas, no longer referenced.
    referenced = json.dumps(document.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and f'/{unused}"' not in referenced:
            del schemas[unused]
    return document


def install(app: FastAPI) -> None:
    """Make app.openapi() (and /openapi.json, /docs) serve the document with its errors."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
