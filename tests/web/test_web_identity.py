"""Learner identity: a signed cookie per learner; forged, tampered, spliced or foreign cookies are
treated as a new learner, never as someone else; no learner sees or changes another's progress."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import Signer

from straightline.course.content import Course
from straightline.web.app import create_app
from straightline.web.identity import LearnerCookies

from web_support import JSON, SECRET, make_settings  # noqa: E402  (tests/web is on sys.path)

COOKIE = "straightline_learner"


def _cookie(client: TestClient) -> str:
    client.get("/")
    return client.cookies[COOKIE]


def _status(client: TestClient, element_id: str = "a-check") -> str:
    return client.get(f"/elements/{element_id}", headers=JSON).json()["status"]


def test_first_visit_sets_a_signed_http_only_cookie(client: TestClient) -> None:
    r = client.get("/")
    header = r.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=") and "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    value = client.cookies[COOKIE]
    learner_id, _, signature = value.partition(".")
    assert len(learner_id) == 32 and signature
    assert "set-cookie" not in client.get("/").headers  # a known learner keeps the cookie


def test_progress_belongs_to_the_cookie(client: TestClient, other_client: TestClient) -> None:
    client.post("/elements/a-check/check", data={"option": "1"})
    assert _status(client) == "done"
    assert _status(other_client) == "new"
    other_client.post("/elements/a-check/check", data={"option": "2"})
    assert _status(client) == "done" and _status(other_client) == "started"
    mine = client.get("/progress/export").json()["attempts"]
    assert [a["payload"]["option"] for a in mine] == [1]


def _as(app: FastAPI, cookie_value: str) -> TestClient:
    c = TestClient(app)
    c.cookies.set(COOKIE, cookie_value)
    return c


def test_forged_cookie_is_a_new_learner(app: FastAPI, client: TestClient) -> None:
    client.post("/elements/a-check/check", data={"option": "1"})
    victim = client.cookies[COOKIE]
    victim_id = victim.split(".")[0]
    forgeries = [
        victim_id,  # no signature
        victim_id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA",  # made-up signature
        victim_id[:-1] + ("0" if victim_id[-1] != "0" else "1") + "." + victim.split(".")[1],  # edited id
        Signer("some-other-secret-key-123", salt="straightline.learner").sign(victim_id).decode(),  # another key
        victim + "x",
        "",
        "garbage",
    ]
    for forged in forgeries:
        with _as(app, forged) as intruder:
            r = intruder.get("/elements/a-check", headers=JSON)
            assert r.json()["status"] == "new", forged
            assert "set-cookie" in r.headers  # a fresh identity is issued
            intruder.post("/elements/a-check/check", data={"option": "3"})
    assert client.get("/elements/a-check", headers=JSON).json()["state"]["chosen"] == 1
    assert len(client.get("/progress/export").json()["attempts"]) == 1


def test_swapped_signatures_are_rejected(app: FastAPI, client: TestClient, other_client: TestClient) -> None:
    client.post("/elements/a-check/check", data={"option": "1"})
    other_client.post("/elements/a-check/check", data={"option": "2"})
    a_id, a_sig = client.cookies[COOKIE].split(".")
    b_id, b_sig = other_client.cookies[COOKIE].split(".")
    for spliced in (f"{a_id}.{b_sig}", f"{b_id}.{a_sig}"):
        with _as(app, spliced) as c:
            assert c.get("/elements/a-check", headers=JSON).json()["status"] == "new"


def test_a_cookie_from_another_server_is_not_accepted(
    store_url: str, tmp_path: Path, fixture_course: Course, client: TestClient
) -> None:
    client.post("/elements/a-check/check", data={"option": "1"})
    cookie = client.cookies[COOKIE]
    other = create_app(make_settings(store_url, tmp_path, secret_key="a-different-secret-key-42"), course=fixture_course)
    with _as(other, cookie) as c:
        assert c.get("/elements/a-check", headers=JSON).json()["status"] == "new"


def test_cookie_verification_unit() -> None:
    cookies = LearnerCookies(SECRET, name=COOKIE, max_age_s=60)
    value = cookies.sign("0" * 32)
    assert cookies.verify(value) == "0" * 32
    assert cookies.verify(cookies.sign("not-a-hex-id")) is None  # only ids we issue
    assert cookies.verify(None) is None and cookies.verify("x" * 500) is None
    assert b"Secure" in LearnerCookies(SECRET, name=COOKIE, max_age_s=60, secure=True).header("0" * 32)


def test_no_route_takes_a_learner_id(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    names = [p["name"] for ops in schema["paths"].values() for op in ops.values() for p in op.get("parameters", [])]
    names += [f for s in schema["components"]["schemas"].values() for f in s.get("properties", {})]
    assert names and not [n for n in names if "learner" in n.lower() or n.lower() in ("id", "user", "cookie")]
