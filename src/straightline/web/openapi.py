"""What every operation of the OpenAPI schema can answer besides its own responses.

Some answers come from the layers around the routes, not from a route: a query parameter (or form
field) that is not UTF-8 text or holds NUL (422, `textcheck.py`), a bad Host or an unparsable body
(400), a cross-site write (403) and a body over its limit (413, `limits.py`). `document_errors`
adds them to every operation, and gives every error response its real content: the JSON error
object for `Accept: application/json`, an HTML page otherwise. FastAPI's own 422 schema
(`HTTPValidationError`) is replaced, since the app's validation handler answers the error object.
The Build-It routes read their body themselves (a form or JSON); their bodies are described here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["ERROR_CONTENT", "document_errors"]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "title": {"type": "string"},
                "message": {"type": "string", "description": "what is wrong, naming the value and what is accepted"},
                "field": {"type": "string", "description": "the parameter or field at fault"},
                "accepted": {"type": "string"},
                "reason": {"type": "string"},
            },
        }
    },
}
ERROR_CONTENT: dict[str, Any] = {
    "application/json": {"schema": ERROR_SCHEMA},
    "text/html": {"schema": {"type": "string"}},
}
_EVERY: dict[str, str] = {
    "400": "a Host this server does not answer to, or a body that does not parse",
    "422": "a query parameter or field holds text that is not UTF-8 or has NUL or a lone surrogate (or a value "
    "not accepted); the message names it",
}
_WRITES: dict[str, str] = {
    "403": "sent by a page on another site",
    "413": "the request body is over this route's limit",
}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    kinds = ("application/x-www-form-urlencoded", "multipart/form-data", "application/json")
    return {"required": bool(required), "content": {kind: {"schema": schema} for kind in kinds}}


_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/elements/{element_id}/submission"): _body(
        {"code": {"type": "string", "description": "your Python source (at most 256 KiB)"}}, ["code"]
    ),
    ("post", "/elements/{element_id}/run"): _body(
        {"steps": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Euler steps (euler_sample only)"}}, []
    ),
}
_HTML_TOO = {"post": ("/elements/{element_id}/submission", "/elements/{element_id}/run")}


def _complete(method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    extra = {**_EVERY, **(_WRITES if method in ("post", "put", "patch", "delete") else {})}
    for code, text in extra.items():
        responses.setdefault(code, {"description": text})
    for code, response in responses.items():
        if code[:1] in ("4", "5"):
            response["content"] = ERROR_CONTENT


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` list the answers described in the module docstring on every operation."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    _complete(method, operation)
                    if (method, path) in _BODIES:
                        operation.setdefault("requestBody", _BODIES[method, path])
                    if path in _HTML_TOO.get(method, ()):  # the element's new HTML for a fragment request
                        operation["responses"]["200"].setdefault("content", {})["text/html"] = {"schema": {"type": "string"}}
            schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
            schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
