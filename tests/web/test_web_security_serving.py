"""Issue 11, findings 5 and 7: oversized headers are refused at once by a real server; behind a
trusted reverse proxy X-Forwarded-* is believed (and from anyone else ignored); the cookie can be
marked Secure; no response that sets a cookie may be cached by a shared cache."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response

from straightline.course.content import Course
from straightline.web.app import create_app

from web_support import FIXTURE_CHAPTERS, JSON, make_settings  # noqa: E402


def raw_request(url: str, head: bytes, filler: int) -> bytes:
    """Send `head` then `filler` bytes of one header line; what the server answered (maybe early)."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as s:
        try:
            s.sendall(head + b"X-Filler: ")
            chunk = b"a" * 65536
            for _ in range(filler // len(chunk)):
                s.sendall(chunk)
            s.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished: what we want
        try:
            while data := s.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    return answer


def test_oversized_headers_are_refused_and_the_server_keeps_answering(tmp_path: Path, server_factory) -> None:
    server = server_factory(tmp_path / "d", db=f"sqlite:///{tmp_path / 'p.db'}", content_dir=FIXTURE_CHAPTERS)
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    small = raw_request(server.url, head, 0)
    assert small.startswith(b"HTTP/1.1 200"), small[:200]
    assert raw_request(server.url, head, 32 * 1024).startswith(b"HTTP/1.1 200")  # under the 64 KiB cap
    for _ in range(4):  # the attack: 64 MiB of headers, four times (the answer comes at 64 KiB)
        big = raw_request(server.url, head, 64 * 1024 * 1024)
        assert big.startswith(b"HTTP/1.1 400"), big[:200]
    assert httpx.get(server.url + "/healthz").status_code == 200


# ------------------------------------------------------------------------------------------------
# behind a reverse proxy (nginx rewrites Host; X-Forwarded-* from trusted addresses only)


def proxied_app(tmp_path: Path, course: Course, **overrides):
    options = {"allowed_hosts": ("course.example.org",), "proxy_headers": True, "forwarded_allow_ips": ("10.0.0.1",)}
    settings = make_settings(f"sqlite:///{tmp_path / 'p.db'}", tmp_path, **{**options, **overrides})
    return create_app(settings, course=course)


FORWARDED = {
    "Host": "127.0.0.1:8000",  # what nginx's proxy_pass sends by default
    "X-Forwarded-Host": "course.example.org",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-For": "203.0.113.7",
    "Origin": "https://course.example.org",
    "Sec-Fetch-Site": "same-origin",
}


def test_a_trusted_proxy_forwards_host_scheme_and_client(tmp_path: Path, fixture_course: Course) -> None:
    app = proxied_app(tmp_path, fixture_course)

    @app.get("/_where")
    async def where(request: Request) -> dict:
        return {"client": request.client.host, "scheme": request.url.scheme, "host": request.state.host}

    with TestClient(app, client=("10.0.0.1", 4000)) as proxy:
        r = proxy.post("/elements/a-check/check", data={"option": "1"}, headers={**JSON, **FORWARDED})
        assert r.status_code == 200, r.text
        seen = proxy.get("/_where", headers=FORWARDED).json()
        assert seen == {"client": "203.0.113.7", "scheme": "https", "host": "course.example.org"}
        # a name the server does not answer to is refused, even through the proxy
        evil = proxy.get("/", headers={**FORWARDED, "X-Forwarded-Host": "evil.example"})
        assert evil.status_code == 400 and "evil.example" in evil.text
    with TestClient(app, client=("10.0.0.9", 4000)) as stranger:  # not the proxy: its X-Forwarded-* are ignored
        assert stranger.get("/_where", headers=FORWARDED).json() == {"client": "10.0.0.9", "scheme": "http", "host": "127.0.0.1:8000"}
        r = stranger.post("/elements/a-check/check", data={"option": "1"}, headers={**JSON, **FORWARDED})
        assert r.status_code == 403 and "https://course.example.org" in r.json()["error"]["message"]


def test_without_proxy_headers_nothing_forwarded_is_believed(tmp_path: Path, fixture_course: Course) -> None:
    app = proxied_app(tmp_path, fixture_course, proxy_headers=False)
    with TestClient(app, client=("10.0.0.1", 4000)) as proxy:
        r = proxy.post("/elements/a-check/check", data={"option": "1"}, headers={**JSON, **FORWARDED})
        assert r.status_code == 403


# ------------------------------------------------------------------------------------------------
# cookies and caching


def test_the_cookie_can_be_marked_secure(tmp_path: Path, fixture_course: Course) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'p.db'}", tmp_path, cookie_secure=True), course=fixture_course)
    with TestClient(app, base_url="https://testserver") as c:
        cookie = c.get("/").headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_no_response_with_a_new_cookie_is_publicly_cacheable(client: TestClient, app) -> None:
    static = client.get("/static/app.css?v=1")
    assert static.status_code == 200 and "public" in static.headers["cache-control"]
    assert "set-cookie" not in static.headers  # static files need no learner: no cookie, so a cache may keep them
    assert "set-cookie" not in client.get("/healthz").headers
    for path in ["/", "/chapters/beta", "/static/app.css?v=1"]:
        with TestClient(app) as first_visit:
            r = first_visit.get(path)
            if "set-cookie" in r.headers:
                assert "public" not in r.headers.get("cache-control", ""), (path, r.headers.get("cache-control"))


def test_a_public_response_that_sets_a_cookie_becomes_private(tmp_path: Path, fixture_course: Course) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'p.db'}", tmp_path), course=fixture_course)

    @app.get("/_cached")
    async def cached() -> Response:
        return Response("x", headers={"Cache-Control": "public, max-age=600"})

    with TestClient(app) as c:
        first = c.get("/_cached")
        again = c.get("/_cached")  # now with the cookie
    assert "set-cookie" in first.headers and first.headers["cache-control"] == "private, max-age=600"
    assert "set-cookie" not in again.headers and again.headers["cache-control"] == "public, max-age=600"


@pytest.mark.parametrize("path", ["/", "/static/app.css"])
def test_static_files_and_pages_keep_their_security_headers(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff" and "frame-ancestors 'none'" in r.headers["content-security-policy"]
