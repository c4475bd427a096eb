"""Learner identity: a random id in a signed cookie, created on a learner's first visit.

The cookie value is `<id>.<signature>` (itsdangerous, HMAC-SHA1 with a salt, keyed by the app's
secret). A cookie whose signature does not match — forged, edited, signed by another server, or an
id spliced onto someone else's signature — is ignored: the request is treated as coming from a new
learner, never as anyone else. Nothing is written to the database until the learner does something.

`LearnerMiddleware` (pure ASGI) puts the id in `request.state.learner_id` and sets the cookie on
the response when it issued a new one. Static files and the health check never issue one (they
need no learner, and a shared cache may keep them). A response that does carry a new cookie is
never `Cache-Control: public`: `public` becomes `private`, so that no proxy or shared cache hands
one learner's cookie to another.
"""

from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie

from itsdangerous import BadSignature, Signer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LearnerCookies", "LearnerMiddleware", "new_learner_id"]

_ID = re.compile(r"^[0-9a-f]{32}$")
NO_COOKIE_PREFIXES = ("/static/", "/healthz")


def new_learner_id() -> str:
    return secrets.token_hex(16)


class LearnerCookies:
    """Signs and verifies learner cookies."""

    def __init__(self, secret_key: str, *, name: str, max_age_s: int, secure: bool = False):
        self._signer = Signer(secret_key, salt="straightline.learner")
        self.name, self.max_age_s, self.secure = name, max_age_s, secure

    def sign(self, learner_id: str) -> str:
        return self._signer.sign(learner_id).decode("ascii")

    def verify(self, value: str | None) -> str | None:
        """The learner id in a cookie value, or None when it is missing, malformed or not ours."""
        if not value or len(value) > 200:
            return None
        try:
            learner_id = self._signer.unsign(value).decode("ascii")
        except (BadSignature, UnicodeError):
            return None
        return learner_id if _ID.match(learner_id) else None

    def header(self, learner_id: str) -> bytes:
        parts = [
            f"{self.name}={self.sign(learner_id)}",
            "Path=/",
            f"Max-Age={self.max_age_s}",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts).encode("latin-1")


def _cookie_value(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header is the same as none
                continue
            if name in jar:
                return jar[name].value
    return None


def _private(key: bytes, value: bytes) -> tuple[bytes, bytes]:
    """A Cache-Control header that allows shared caches is narrowed to the browser's own cache."""
    if key.lower() == b"cache-control" and b"public" in value.lower():
        return key, re.sub(rb"(?i)\bpublic\b", b"private", value)
    return key, value


class LearnerMiddleware:
    def __init__(self, app: ASGIApp, cookies: LearnerCookies):
        self.app, self.cookies = app, cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        learner_id = self.cookies.verify(_cookie_value(scope, self.cookies.name))
        issued = learner_id is None and not scope["path"].startswith(NO_COOKIE_PREFIXES)
        if learner_id is None:
            learner_id = new_learner_id()
        scope.setdefault("state", {})["learner_id"] = learner_id

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and issued:
                headers = [_private(k, v) for k, v in message.get("headers", [])]
                headers.append((b"set-cookie", self.cookies.header(learner_id)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
