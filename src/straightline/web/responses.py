"""Content negotiation and error responses shared by the routes.

A request can ask for three kinds of answer:
- JSON (`Accept: application/json`): API clients and tests;
- an HTML fragment (`X-Straightline-Fragment: 1`): the page's JavaScript swapping one element;
- a full page (anything else): plain browsers, including with JavaScript off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

if TYPE_CHECKING:
    from .deps import AppContext

__all__ = ["FRAGMENT_HEADER", "STATUS_TITLES", "error_response", "wants_fragment", "wants_json"]

FRAGMENT_HEADER = "x-straightline-fragment"
STATUS_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Not yet",
    413: "Too large",
    422: "Cannot use that input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def wants_fragment(request: Request) -> bool:
    return request.headers.get(FRAGMENT_HEADER) == "1"


def error_response(
    request: Request,
    ctx: "AppContext | None",
    status: int,
    message: str,
    *,
    field: str | None = None,
    accepted: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error answered in the form the client asked for; `message` is shown to the learner."""
    title = STATUS_TITLES.get(status, "Error")
    if wants_json(request) or ctx is None:
        body: dict[str, Any] = {"status": status, "title": title, "message": message}
        if field is not None:
            body["field"] = field
        if accepted is not None:
            body["accepted"] = accepted
        return JSONResponse({"error": body}, status_code=status, headers=headers)
    if wants_fragment(request):
        from markupsafe import escape

        html = f'<p class="field-error request-error" role="alert">{escape(message)}</p>'
        return HTMLResponse(html, status_code=status, headers={**(headers or {}), "X-Straightline-Error": "1"})
    return HTMLResponse(ctx.renderer.error_page(status, title, message), status_code=status, headers=headers)
