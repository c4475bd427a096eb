"""Which host names the server answers to, and which requests may change progress.

`HostMiddleware` (pure ASGI, outermost) runs before anything else on every request:

1. Behind a trusted reverse proxy (`proxy_headers` on and the direct peer in `forwarded_allow_ips`)
   it takes the client address from `X-Forwarded-For`, the scheme from `X-Forwarded-Proto` and the
   host name from `X-Forwarded-Host`; from anyone else those headers are ignored.
2. The host name (`Host`, or the trusted `X-Forwarded-Host`) must be one the server was told to
   answer to: the loopback names (127.0.0.1, localhost, [::1]) with any port, plus
   `Settings.allowed_hosts`. Anything else is answered 400 naming the host. This is what stops DNS
   rebinding: a page on evil.example whose name is rebound to 127.0.0.1 is same-origin with
   itself, so the browser lets it read our answers, but its requests say `Host: evil.example`.
3. A request that may change something (POST, PUT, PATCH, DELETE) is refused (403) when
   - `Sec-Fetch-Site: cross-site` (a page on another site made it), or
   - it carries an `Origin` that is not this server's (`scheme://host`, `null` included), or
   - it comes from a browser (it sends `Sec-Fetch-*` headers) but has no `Origin`. Every browser
     that sends Fetch Metadata also sends `Origin` on every POST, same-origin or not, so a missing
     one means something stripped it. Clients that send neither (curl, scripts, tests) are not
     browsers acting for a learner who visited another site, and are let through.

The validated host and origin are left in `scope["state"]` (`host`, `origin`) for the routes.

`grade_token(secret, learner, host)` is the per-page token that unsafe local grading requires
(see docs/web-app.md): pages carry `GRADE_TOKEN_SLOT`, a fixed-length placeholder, and this
middleware writes the learner's token into it on the way out (same length, so no Content-Length
changes and the cached page HTML stays shared by every learner).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the middleware's types only: the CLI parses host rules without the web stack installed
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    Refuse = Callable[[Scope, int, str], Response]


__all__ = [
    "LOOPBACK_HOSTS", "GRADE_TOKEN_SLOT", "AllowedHosts", "HostMiddleware", "HostRule", "TrustedProxies",
    "grade_token", "host_middleware_options", "is_same_origin", "origin_of", "parse_host_rule", "split_host",
]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GRADE_TOKEN_SLOT = "g" * 64  # as long as a grade token (hex HMAC-SHA256)
_NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.*-]+)(?::(\d{1,5}))?$")
_DEFAULT_PORT = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class HostRule:
    """One allowed host: a name (or `*.suffix`: any subdomain), with one port or any (None)."""

    name: str
    port: int | None = None

    def matches(self, name: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.name.startswith("*."):
            return name.endswith(self.name[1:]) and len(name) > len(self.name) - 1
        return name == self.name


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` -> (lower-case name, port or None); None when it is not a host name at all."""
    m = _HOST.match(value.strip().lower())
    if m is None or (m.group(2) is not None and not 0 < int(m.group(2)) < 65536):
        return None
    return m.group(1), int(m.group(2)) if m.group(2) else None


def parse_host_rule(text: str) -> HostRule:
    """An `--allowed-host` value: `name`, `name:port`, `*.domain`, an IPv4 address or `[IPv6]`."""
    split = split_host(text)
    accepted = "a host name (course.example.org), *.example.org, an IPv4 address or [IPv6], optionally :port"
    if split is None:
        raise ValueError(f"allowed host {text!r} is not {accepted}")
    name, port = split
    if name.startswith("["):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            raise ValueError(f"allowed host {text!r}: {name} is not an IPv6 address") from None
    elif name in ("*", "") or "*" in name[2:] or _NAME.match(name) is None:
        raise ValueError(f"allowed host {text!r} is not {accepted} (a bare * is not allowed)")
    return HostRule(name, port)


class AllowedHosts:
    """The loopback names (any port) plus the configured rules."""

    def __init__(self, extra: Iterable[str] = ()):
        self.rules = tuple(parse_host_rule(h) for h in (*LOOPBACK_HOSTS, *extra))

    def allows(self, host: str) -> bool:
        split = split_host(host)
        return split is not None and any(rule.matches(*split) for rule in self.rules)

    def describe(self) -> str:
        return ", ".join(r.name + (f":{r.port}" if r.port else "") for r in self.rules)


class TrustedProxies:
    """Addresses (or networks, or `*`) whose `X-Forwarded-*` headers are believed."""

    def __init__(self, entries: Iterable[str]):
        self.any = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            if entry.strip() == "*":
                self.any = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"forwarded-allow-ips entry {entry!r} is not an IP address, a network (10.0.0.0/8) or *") from None

    def trusts(self, address: str | None) -> bool:
        if address is None:
            return False
        if self.any:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


def grade_token(secret: str, learner_id: str, host: str) -> str:
    """The token a page rendered for `learner_id` under `host` carries (hex HMAC-SHA256)."""
    message = f"straightline.grade|{learner_id}|{host.lower()}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _last(value: str | None) -> str | None:
    """The value the nearest proxy added (the last of a comma-separated list)."""
    if value is None:
        return None
    last = value.split(",")[-1].strip()
    return last or None


def is_same_origin(origin: str, host: str) -> bool:
    """Whether `Origin` names `host` (the scheme is the Origin's own: a TLS-terminating proxy that
    does not say X-Forwarded-Proto must not make every POST fail)."""
    scheme, _, _ = origin.lower().partition("://")
    return scheme in ("http", "https") and origin.lower() == origin_of(scheme, host)


def origin_of(scheme: str, host: str) -> str:
    """`scheme://host` as a browser writes it in `Origin` (no default port)."""
    split = split_host(host)
    if split is None:
        return f"{scheme}://{host}"
    name, port = split
    return f"{scheme}://{name}" + ("" if port in (None, _DEFAULT_PORT.get(scheme)) else f":{port}")


class HostMiddleware:
    """See the module docstring. `grade_secret`: fill the pages' grade-token slot (unsafe local grading)."""

    def __init__(
        self, app: ASGIApp, *, allowed: AllowedHosts, refuse: Refuse,
        proxies: TrustedProxies | None = None, grade_secret: str | None = None,
    ):
        self.app, self.allowed, self.refuse = app, allowed, refuse
        self.proxies, self.grade_secret = proxies, grade_secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = self._forwarded(scope) or _header(scope, b"host") or ""
        problem = self._check(scope, host)
        if problem is not None:
            status, message = problem
            await self.refuse(scope, status, message)(scope, receive, send)
            return
        scheme = scope.get("scheme", "http").replace("ws", "http")
        state = scope.setdefault("state", {})
        state["host"], state["origin"] = host.lower(), origin_of(scheme, host)
        if self.grade_secret is not None:
            send = self._with_grade_token(scope, send)
        await self.app(scope, receive, send)

    def _forwarded(self, scope: Scope) -> str | None:
        """Apply a trusted proxy's X-Forwarded-For/-Proto (to the scope); its X-Forwarded-Host."""
        client = scope.get("client")
        if self.proxies is None or not self.proxies.trusts(client[0] if client else None):
            return None
        proto = _last(_header(scope, b"x-forwarded-proto"))
        if proto in ("http", "https"):
            scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        chain = [a.strip() for a in (_header(scope, b"x-forwarded-for") or "").split(",") if a.strip()]
        for address in reversed(chain):  # the nearest untrusted hop is the client
            if not self.proxies.trusts(address) or address == chain[0]:
                scope["client"] = (address, 0)
                break
        return _last(_header(scope, b"x-forwarded-host"))

    def _check(self, scope: Scope, host: str) -> tuple[int, str] | None:
        if not self.allowed.allows(host):
            shown = host[:100] if host else "(none)"
            return 400, (
                f"This server does not answer to the host name {shown!r}; it answers to {self.allowed.describe()}. "
                "Serving a class under another name? Start it with --allowed-host NAME "
                "(or STRAIGHTLINE_ALLOWED_HOSTS=NAME,...)."
            )
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            return None
        site = _header(scope, b"sec-fetch-site")
        origin = _header(scope, b"origin")
        scheme = scope.get("scheme", "http")
        if site == "cross-site":
            return 403, "A page on another site may not change progress here (Sec-Fetch-Site: cross-site)."
        if origin is not None and not is_same_origin(origin, host):
            return 403, f"Requests from {origin[:100]} may not change progress here (this server is {origin_of(scheme, host)})."
        if origin is None and (site is not None or _header(scope, b"sec-fetch-mode") is not None):
            return 403, "A browser request that changes progress must carry an Origin header; this one has none."
        return None

    def _with_grade_token(self, scope: Scope, send: Send) -> Send:
        slot = GRADE_TOKEN_SLOT.encode()
        html = False

        async def send_filled(message: Message) -> None:
            nonlocal html
            if message["type"] == "http.response.start":
                html = any(k == b"content-type" and v.startswith(b"text/html") for k, v in message.get("headers", ()))
            elif message["type"] == "http.response.body" and html and slot in message.get("body", b""):
                state = scope.get("state", {})
                token = grade_token(self.grade_secret or "", state.get("learner_id", ""), state.get("host", ""))
                message = {**message, "body": message["body"].replace(slot, token.encode())}
            await send(message)

        return send_filled
