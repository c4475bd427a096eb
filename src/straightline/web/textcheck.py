"""Text hygiene at the edge: text that is not valid UTF-8, or holds U+0000 or a lone surrogate, is
refused with 422 naming the field, before any route runs.

`TextHygieneMiddleware` checks, on every request:
- the query string: each parameter's name and value, percent-decoded, must be UTF-8 without NUL;
- a form body (urlencoded, or the text fields of a multipart body): likewise;
- a JSON body (`application/json`, `*+json`): `texthygiene.loads_strict` (UTF-8, no NUL or lone
  surrogate anywhere, no NaN/Infinity, numbers that fit a float, nested at most 32 levels).
Uploaded files (multipart parts with a filename) are left to their route: the progress import
checks its file the same way and names the JSON path of a problem. It runs inside the body-size
limit, so the body it reads is bounded; it replays the body to the app.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..course.texthygiene import JsonProblem, loads_strict, text_problem

__all__ = ["TextHygieneMiddleware", "TextRefused", "check_form", "check_json", "check_multipart"]


class TextRefused(ValueError):
    """Refused text: `field` names the parameter or body field, `message` says what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _text(raw: bytes, field: str, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextRefused(field, f"{what} {field!r} is not valid UTF-8 (byte {exc.start}); send UTF-8 text") from None
    problem = text_problem(text)
    if problem:
        raise TextRefused(field, f"{what} {field!r} {problem}")
    return text


def check_form(raw: bytes, what: str = "field") -> None:
    """A query string or urlencoded body: every name and value UTF-8 without NUL."""
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(name.replace(b"+", b" "))
        shown = name_bytes.decode("utf-8", "replace").replace("\x00", "\ufffd")[:40]
        _text(name_bytes, shown, f"the name of {what}")
        _text(unquote_to_bytes(value.replace(b"+", b" ")), shown, what)


def check_json(raw: bytes) -> None:
    if not raw.strip():
        return
    try:
        loads_strict(raw)
    except JsonProblem as exc:
        field = exc.where or "body"
        raise TextRefused(field, f"the JSON {'field ' + repr(field) if exc.where else 'body'} {exc.message}") from None


def check_multipart(raw: bytes, content_type: bytes) -> None:
    """The text fields of a multipart body (parts without a filename)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        return  # the route's parser answers 400
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    header: list[bytes] = [b"", b""]

    def on_part_begin() -> None:
        parts.append(({}, bytearray()))

    def on_header_end() -> None:
        parts[-1][0][header[0].lower()] = header[1]
        header[:] = [b"", b""]

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_part_data": lambda data, start, end: parts[-1][1].extend(data[start:end]),
        "on_header_field": lambda data, start, end: header.__setitem__(0, header[0] + data[start:end]),
        "on_header_value": lambda data, start, end: header.__setitem__(1, header[1] + data[start:end]),
        "on_header_end": on_header_end,
    }
    try:
        MultipartParser(boundary, callbacks).write(raw)
    except Exception:  # malformed: the route's own parser answers it (400)
        return
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"")
        shown = name.decode("utf-8", "replace").replace("\x00", "\ufffd")[:40]
        _text(name, shown, "the name of field")
        if b"filename" not in disposition:
            _text(bytes(data), shown, "field")


def check_body(raw: bytes, content_type: bytes) -> None:
    kind = content_type.split(b";", 1)[0].strip().lower()
    if kind == b"application/x-www-form-urlencoded":
        check_form(raw)
    elif kind == b"multipart/form-data":
        check_multipart(raw, content_type)
    elif kind == b"application/json" or kind.endswith(b"+json"):
        check_json(raw)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class TextHygieneMiddleware:
    """See the module docstring; `refuse(scope, field, message)` builds the 422 response."""

    def __init__(self, app: ASGIApp, refuse: Callable[[Scope, str, str], Response]):
        self.app, self.refuse = app, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_form(scope.get("query_string", b""), "parameter")
        except TextRefused as exc:
            await self.refuse(scope, exc.field, exc.message)(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"")
        try:
            check_body(body, content_type)
        except TextRefused as exc:
            await self.refuse(scope, exc.field, exc.message)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
