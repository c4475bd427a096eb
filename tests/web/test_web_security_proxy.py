"""Issue 11, finding 7: the nginx configuration that docs/web-app.md ("Behind nginx") shows is run
in front of a real server: pages, a POST and the learner cookie work through it, and a host name
the server was not given is still refused."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from web_support import FIXTURE_CHAPTERS, JSON, REPO, free_port  # noqa: E402

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed; `make test` installs it (apt-get install nginx)")

DOC = REPO / "docs" / "web-app.md"


def documented_server_block() -> str:
    text = DOC.read_text()
    block = text.split("<!-- tested-nginx-config: begin -->", 1)[1].split("<!-- tested-nginx-config: end -->", 1)[0]
    return block.strip().removeprefix("```nginx").removesuffix("```").strip()


def nginx_conf(tmp: Path, listen: int, upstream: int) -> Path:
    """The documented server block, on free ports, inside a main configuration of its own."""
    server = documented_server_block()
    assert "listen 80;" in server and "proxy_pass http://127.0.0.1:8000;" in server
    server = server.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    server = server.replace("proxy_pass http://127.0.0.1:8000;", f"proxy_pass http://127.0.0.1:{upstream};")
    temp = "".join(f"    {kind}_temp_path {tmp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} warn;\n"
        + "events { worker_connections 64; }\n"
        + f"http {{\n    access_log off;\n{temp}    {server}\n}}\n"
    )
    return conf


@pytest.fixture
def nginx_in_front(tmp_path: Path, server_factory):
    app = server_factory(
        tmp_path / "d", db=f"sqlite:///{tmp_path / 'p.db'}", content_dir=FIXTURE_CHAPTERS,
        extra_args=["--allowed-host", "course.example.org", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"],
    )
    port = free_port()
    conf = nginx_conf(tmp_path, port, int(app.url.rsplit(":", 1)[1]))
    check = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/healthz", headers={"Host": f"course.example.org:{port}"})
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url, port
    proc.send_signal(signal.SIGQUIT)
    proc.wait(timeout=30)


def test_a_post_works_through_the_documented_nginx(nginx_in_front) -> None:
    url, port = nginx_in_front
    public = f"course.example.org:{port}"
    browser = {"Host": public, "Origin": f"http://{public}", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    with httpx.Client(base_url=url, headers=browser, timeout=60) as c:
        home = c.get("/")
        assert home.status_code == 200 and "straightline_learner=" in home.headers["set-cookie"]
        r = c.post("/elements/a-check/check", data={"option": "1"}, headers=JSON)
        assert r.status_code == 200, r.text
        assert c.get("/elements/a-check", headers=JSON).json()["state"] is not None  # same learner, stored
        # a page on another site, through the same proxy: refused
        r = c.post("/elements/a-check/check", data={"option": "1"}, headers={**JSON, "Origin": "http://evil.example"})
        assert r.status_code == 403
        # a name the server was not given (a rebinding page reaching the proxy) is refused by the app
        r = c.get("/", headers={"Host": f"evil.example:{port}"})
        assert r.status_code == 400 and re.search(r"evil\.example", r.text)
