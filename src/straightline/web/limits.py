"""Request body limits: bodies larger than the route's limit are answered 413 before the app runs.

The limit for a path comes from `Settings.body_limit_for(path)` (64 KiB by default; exceptions by
path prefix in `Settings.body_limits`, e.g. progress import and the Build-It submission route).
The body is read here, up to the limit, and replayed to the app, so a chunked upload without a
Content-Length cannot get past the limit either.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str], int],
        too_large: Callable[[Scope, int], Response],
    ):
        self.app, self.limit_for, self.too_large = app, limit_for, too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await self.too_large(scope, limit)(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await self.too_large(scope, limit)(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
