"""Issue 11, finding 1 (critical): DNS rebinding. A page on evil.example whose name is rebound to
127.0.0.1 is same-origin with itself, so its requests carry `Host: evil.example` and a matching
`Origin`: the server must refuse every route under a host name it was not told to answer to, and,
grading without a sandbox, run code only for a page it rendered for that learner and host name.
Also: which state-changing requests are refused (Sec-Fetch-Site, Origin), and host rules."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from straightline.course.content import Course
from straightline.web.app import create_app
from straightline.web.hosts import AllowedHosts, grade_token, parse_host_rule
from straightline.web.settings import Settings

from web_support import FIXTURE_CHAPTERS, GOOD_CFM_LOSS as GOOD, JSON, SECRET, make_settings  # noqa: E402

GATE_ANSWER = {"answer": "trajectories cannot cross because solutions are unique"}


def stealing(marker: Path, secret: Path) -> str:
    """A passing solution that also copies the server's cookie secret to `marker` (as the issue's
    steal.py did): it only works where the code runs unsandboxed."""
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text(pathlib.Path({str(secret)!r}).read_text())\n" + GOOD


# ------------------------------------------------------------------------------------------------
# the attack, against a real server process grading without a sandbox


def test_a_rebound_host_name_gets_nothing_from_any_route(tmp_path: Path, server_factory) -> None:
    data = tmp_path / "data"
    server = server_factory(
        data, db=f"sqlite:///{tmp_path / 'p.db'}", content_dir=FIXTURE_CHAPTERS, extra_args=["--unsafe-local-grading"]
    )
    port = server.url.rsplit(":", 1)[1]
    marker = tmp_path / "stolen.txt"
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}", "Sec-Fetch-Site": "same-origin"}
    with httpx.Client(base_url=server.url, headers=evil, timeout=120) as page:
        home = page.get("/", headers=JSON)
        gate = page.post("/elements/b-gate/checkpoint", data=GATE_ANSWER, headers=JSON)
        submission = page.post("/elements/b-build/submission", data={"code": stealing(marker, data / "secret.key")}, headers=JSON)
        export = page.get("/progress/export")
        html = page.get("/chapters/beta")
    assert not marker.exists(), "the rebinding page ran code on the server"
    assert [r.status_code for r in (home, gate, submission, export, html)] == [400] * 5, submission.text
    message = home.json()["error"]["message"]
    assert f"'evil.example:{port}'" in message and "--allowed-host" in message and "localhost" in message
    assert "evil.example" in html.text and "<html" in html.text.lower()  # a page for a browser, naming the host
    assert "set-cookie" not in home.headers  # refused before a learner is made up
    # the server itself works under its own names
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert httpx.get(server.url + "/", headers={"Host": host}).status_code == 200


def test_allowed_host_names_come_from_the_command_line(tmp_path: Path, server_factory) -> None:
    server = server_factory(
        tmp_path / "d", db=f"sqlite:///{tmp_path / 'p.db'}", content_dir=FIXTURE_CHAPTERS,
        extra_args=["--allowed-host", "course.example.org", "--allowed-host", "*.lab.example"],
    )
    answers = {
        host: httpx.get(server.url + "/healthz", headers={"Host": host}).status_code
        for host in ("course.example.org", "course.example.org:8443", "pc7.lab.example", "lab.example", "example.org")
    }
    assert answers == {"course.example.org": 200, "course.example.org:8443": 200, "pc7.lab.example": 200,
                       "lab.example": 400, "example.org": 400}


# ------------------------------------------------------------------------------------------------
# the per-page grade token (unsafe local grading only)


@pytest.fixture
def unsafe_app(tmp_path: Path, fixture_course: Course) -> FastAPI:
    settings = make_settings(f"sqlite:///{tmp_path / 'p.db'}", tmp_path, unsafe_local_grading=True,
                             allowed_hosts=("testserver", "course.example.org"))
    return create_app(settings, course=fixture_course)


def page_token(client: TestClient) -> str:
    html = client.get("/chapters/beta").text
    tokens = set(re.findall(r'name="grade_token" value="([0-9a-f]+)"', html))
    assert len(tokens) == 1, tokens  # the submission form and the run form carry the same one
    return tokens.pop()


def test_unsafe_grading_runs_code_only_with_the_token_of_the_learners_own_page(unsafe_app: FastAPI, tmp_path: Path) -> None:
    marker = tmp_path / "stolen.txt"
    code = stealing(marker, tmp_path / "secret-of-the-test")
    (tmp_path / "secret-of-the-test").write_text("s3cret")
    with TestClient(unsafe_app) as learner, TestClient(unsafe_app) as other:
        for c in (learner, other):
            c.post("/elements/b-gate/checkpoint", data=GATE_ANSWER)
        token = page_token(learner)
        learner_id = learner.cookies["straightline_learner"].split(".")[0]
        assert token == grade_token(SECRET, learner_id, "testserver")
        assert page_token(other) != token  # per learner
        refused = {
            "none": learner.post("/elements/b-build/submission", data={"code": code}, headers=JSON),
            "another learner's": learner.post(
                "/elements/b-build/submission", data={"code": code, "grade_token": page_token(other)}, headers=JSON),
            "another host's": learner.post(
                "/elements/b-build/submission", data={"code": code, "grade_token": token},
                headers={**JSON, "Host": "course.example.org"}),
            "run without": learner.post("/elements/b-build/run", headers=JSON),
        }
        assert not marker.exists()
        assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 403)
        assert refused["none"].json()["error"]["reason"] == "grade_token" and "reload the page" in refused["none"].text
        ok = learner.post("/elements/b-build/submission", data={"code": GOOD, "grade_token": token}, headers=JSON)
        assert ok.status_code == 200 and ok.json()["result"]["status"] == "passed", ok.text
        by_header = learner.post("/elements/b-build/submission", data={"code": GOOD},
                                 headers={**JSON, "X-Straightline-Grade-Token": token})
        assert by_header.status_code == 200, by_header.text
        assert learner.get("/elements/b-build", headers=JSON).json()["state"]["attempts"] == 2


def test_a_sandboxed_server_needs_no_token_and_renders_none(client: TestClient) -> None:
    client.post("/elements/b-gate/checkpoint", data=GATE_ANSWER)
    assert "grade_token" not in client.get("/chapters/beta").text


# ------------------------------------------------------------------------------------------------
# which requests may change progress


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),  # curl, scripts, tests: not a browser acting for a learner
        ({"Origin": "http://testserver"}, 200),
        ({"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, 200),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "http://testserver:8080"}, 403),  # another port is another origin
        ({"Origin": "null"}, 403),
        ({"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}, 403),  # a browser that hid its Origin
        ({"Sec-Fetch-Mode": "no-cors"}, 403),
    ],
)
def test_state_changing_requests_from_other_sites_are_refused(client: TestClient, headers: dict, status: int) -> None:
    r = client.post("/elements/a-check/check", data={"option": "1"}, headers={**JSON, **headers})
    assert r.status_code == status, r.text
    stored = client.get("/elements/a-check", headers=JSON).json()["state"]
    assert (stored is not None) == (status == 200), stored  # a refusal stores nothing
    if status == 403:
        assert "may not change progress" in r.json()["error"]["message"] or "Origin" in r.json()["error"]["message"]


def test_get_requests_from_other_sites_still_read(client: TestClient) -> None:
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # a link from elsewhere


def test_host_rules() -> None:
    allowed = AllowedHosts(["course.example.org:8443", "*.lab.example", "10.0.0.5", "[fd00::1]"])
    cases = {
        "localhost": True, "LOCALHOST:8000": True, "127.0.0.1:1": True, "[::1]:8000": True,
        "course.example.org:8443": True, "course.example.org": False, "a.b.lab.example": True,
        "lab.example": False, "xlab.example": False, "10.0.0.5:80": True, "[fd00::1]:8000": True,
        "localhost.evil.example": False, "127.0.0.1.nip.io": False, "evil.example": False,
        "": False, "localhost:99999": False, "local host": False, "localhost@evil.example": False,
    }
    assert {h: allowed.allows(h) for h in cases} == cases
    for bad in ("*", "exa mple.org", "*.*.example", "[not-v6]", "host:0", "ex*ample.org"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_host_rule(bad)


def test_serving_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {"STRAIGHTLINE_DATA_DIR": str(tmp_path), "STRAIGHTLINE_ALLOWED_HOSTS": "course.example.org, *.lab.example",
           "STRAIGHTLINE_PROXY_HEADERS": "1", "STRAIGHTLINE_FORWARDED_ALLOW_IPS": "10.0.0.0/8",
           "STRAIGHTLINE_COOKIE_SECURE": "1", "STRAIGHTLINE_GRADER_PER_CLIENT": "30"}
    s = Settings.from_env(env)
    assert s.allowed_hosts == ("course.example.org", "*.lab.example") and s.proxy_headers and s.cookie_secure
    assert s.forwarded_allow_ips == ("10.0.0.0/8",) and s.grader_per_client == 30
    assert Settings.from_env({"STRAIGHTLINE_DATA_DIR": str(tmp_path)}).allowed_hosts == ()
    for var, value, message in [
        ("STRAIGHTLINE_ALLOWED_HOSTS", "ok.example,bad host", "allowed host 'bad host'"),
        ("STRAIGHTLINE_PROXY_HEADERS", "yes", "STRAIGHTLINE_PROXY_HEADERS must be 0 or 1, got 'yes'"),
        ("STRAIGHTLINE_COOKIE_SECURE", "true", "STRAIGHTLINE_COOKIE_SECURE must be 0 or 1, got 'true'"),
        ("STRAIGHTLINE_FORWARDED_ALLOW_IPS", "nginx", "forwarded-allow-ips entry 'nginx'"),
        ("STRAIGHTLINE_GRADER_PER_CLIENT", "0", "grader_per_client must be in 1..1000, got 0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            Settings.from_env({"STRAIGHTLINE_DATA_DIR": str(tmp_path), var: value})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--allowed-host", "bad host"], "allowed host 'bad host' is not a host name"),
        (["--allowed-host", "*"], "a bare * is not allowed"),
        (["--forwarded-allow-ips", "127.0.0.1,nginx"], "forwarded-allow-ips entry 'nginx'"),
    ],
)
def test_serve_refuses_bad_serving_flags_with_status_2(args: list[str], message: str, capsys) -> None:
    from straightline.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
