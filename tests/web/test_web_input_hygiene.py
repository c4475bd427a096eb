"""Text hygiene at the edge (issue 11, findings 3 and 6), on both progress stores.

Text that is not valid UTF-8, or holds U+0000 or a lone surrogate, is refused with 422 naming the
field on every kind of input (form answers, Build-It code, live-training bodies, imports, query
parameters); deeply nested JSON, NaN, numbers and dates out of range, a non-integer version and a
repeated `file` part are 422 too. Whatever was refused leaves the learner's pages and export
working, and rows stored before the check (SQLite could hold them) read back clean.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from web_support import JSON  # noqa: E402

GOOD_ANSWER = "trajectories cannot cross because solutions are unique"


def _pages_still_work(client: TestClient) -> dict:
    assert client.get("/chapters/beta").status_code == 200
    assert client.get("/progress").status_code == 200
    r = client.get("/progress/export")
    assert r.status_code == 200
    return json.loads(r.content.decode("utf-8"))  # strict: no NaN, valid UTF-8


def _error(r) -> dict:
    assert r.status_code == 422, (r.status_code, r.text[:300])
    return r.json()["error"]


# --- form answers, Build-It code, query parameters, live training ------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"answer=" + "solutions are unique so \x00 they never cross".encode().replace(b" ", b"+").replace(b"\x00", b"%00"),
        b"answer=solutions+are+unique+%FF%FE+they+never+cross",
        b"answer=solutions+are+unique+%ED%A0%80+they+never+cross",  # a surrogate, UTF-8 encoded
    ],
    ids=["nul", "invalid-utf8", "encoded-surrogate"],
)
def test_a_form_answer_with_bad_text_is_refused_naming_the_field(client: TestClient, body: bytes) -> None:
    headers = {**JSON, "Content-Type": "application/x-www-form-urlencoded"}
    error = _error(client.post("/elements/b-gate/checkpoint", content=body, headers=headers))
    assert error["field"] == "answer" and "'answer'" in error["message"]
    assert _pages_still_work(client)["elements"] == []


def test_a_multipart_form_answer_with_nul_is_refused(client: TestClient) -> None:
    r = client.post("/elements/b-gate/checkpoint", files={"answer": (None, f"{GOOD_ANSWER}\x00")}, headers=JSON)
    assert _error(r)["field"] == "answer"
    assert _pages_still_work(client)["elements"] == []


@pytest.mark.parametrize("code", ["\ud800", "x = 1\x00"], ids=["lone-surrogate", "nul"])
def test_build_it_code_with_bad_text_is_refused_before_grading(client: TestClient, code: str) -> None:
    body = json.dumps({"code": code}).encode()  # ASCII JSON: the surrogate travels as \\ud800
    r = client.post("/elements/b-build/submission", content=body, headers={**JSON, "Content-Type": "application/json"})
    error = _error(r)
    assert error["field"] == "code" and "code" in error["message"]
    assert _pages_still_work(client)["attempts"] == []


def test_a_form_post_of_bad_code_gets_a_readable_page(client: TestClient) -> None:
    r = client.post("/elements/b-build/submission", data={"code": "x\x00"})
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]
    assert "U+0000" in r.text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/chapters/beta?x=%00", "x"),
        ("/progress?imported=%FF", "imported"),
        ("/api/sims/particles-flow?dataset=two%00clusters", "dataset"),
        ("/api/sims/particles-flow?%00=1", "\ufffd"),
    ],
)
def test_query_parameters_with_bad_text_are_refused(client: TestClient, path: str, field: str) -> None:
    error = _error(client.get(path, headers=JSON))
    assert error["field"] == field


@pytest.mark.parametrize(
    "body",
    [
        b'{"dataset": "moons\\u0000"}',
        b'{"dataset": "\\udc00"}',
        b'{"points": [[0, 0]], "\\u0000": 1}',
        b"[" * 60_000,  # under the route's 64 KiB body limit
        b'{"steps": NaN}',
        b'{"steps": 1e999}',
        b"\xff\xfe{}",
    ],
    ids=["nul", "surrogate", "nul-key", "deep", "nan", "overflow", "not-utf8"],
)
def test_live_training_bodies_with_bad_text_or_nesting_are_refused(client: TestClient, body: bytes) -> None:
    for content_type in ("application/json", "text/plain"):  # the route parses any body as JSON
        r = client.post("/api/sims/live-training", content=body, headers={**JSON, "Content-Type": content_type})
        assert r.status_code == 422, (content_type, r.status_code, r.text[:200])
        assert r.json()["error"]["message"]


def test_deeply_nested_submission_json_is_refused(client: TestClient) -> None:
    for body in (b"[" * 100_000, b'{"code": ' + b"[" * 50 + b"]" * 50 + b"}"):
        r = client.post("/elements/b-build/submission", content=body, headers={**JSON, "Content-Type": "application/json"})
        assert _error(r)["message"]


# --- imports --------------------------------------------------------------------------------


def _upload(client: TestClient, content: bytes, **kw):
    return client.post("/progress/import", files={"file": ("progress.json", content, "application/json")}, headers=JSON, **kw)


def _exported(client: TestClient) -> dict:
    client.post("/elements/b-gate/checkpoint", data={"answer": GOOD_ANSWER})
    return client.get("/progress/export").json()


def _nested_bad(data: dict, text: str) -> bytes:
    data = json.loads(json.dumps(data))
    data["elements"][0]["state"]["answer"] = f"{GOOD_ANSWER} {text}"
    return json.dumps(data).encode()


@pytest.mark.parametrize(("text", "words"), [("\ud800", "surrogate U+D800"), ("\x00", "U+0000")])
def test_an_import_with_bad_text_nested_anywhere_is_refused_with_its_path(client: TestClient, text: str, words: str) -> None:
    data = _exported(client)
    error = _error(_upload(client, _nested_bad(data, text)))
    assert "elements[0].state.answer" in error["message"] and words in error["message"]
    data["attempts"][0]["payload"]["deeper"] = [{"k": f"v{text}"}]
    error = _error(_upload(client, json.dumps(data).encode()))
    assert "attempts[0].payload.deeper[0].k" in error["message"]
    assert _pages_still_work(client)["elements"][0]["state"]["answer"] == GOOD_ANSWER


def _with(data: dict, **changes) -> bytes:
    return json.dumps({**data, **changes}).encode()


def test_import_numbers_versions_dates_and_nesting(client: TestClient) -> None:
    data = _exported(client)
    raw = json.dumps(data)
    cases = {
        "NaN": raw.replace('"words": 7', '"words": NaN'),
        "Infinity": raw.replace('"words": 7', '"words": -Infinity'),
        "1e999": raw.replace('"words": 7', '"words": 1e999'),
        "4300 digits": raw.replace('"words": 7', '"words": ' + "9" * 5000),
        "nested": raw.replace('"rating": null', '"rating": ' + "[" * 100_000),
        "nested 40": raw.replace('"rating": null', '"rating": ' + "[" * 40 + "]" * 40),
        "version true": _with(data, version=True).decode(),
        "version 1.0": _with(data, version=1.0).decode(),
        "overflowing date": raw.replace(data["elements"][0]["updated_at"], "9999-12-31T23:59:59-14:00"),
        "underflowing date": _with(data, exported_at="0001-01-01T00:00:00+14:00").decode(),
    }
    for name, body in cases.items():
        r = _upload(client, body.encode())
        assert r.status_code == 422, (name, r.status_code, r.text[:300])
        assert r.json()["error"]["field"] == "file", name
    assert "version must be 1" in _upload(client, _with(data, version=True)).json()["error"]["message"]
    assert "between years 1 and 9999" in _upload(client, cases["overflowing date"].encode()).json()["error"]["message"]
    assert _pages_still_work(client)["elements"][0]["state"]["words"] == 7


def test_an_import_with_two_file_parts_is_refused(client: TestClient, other_client: TestClient) -> None:
    first = json.dumps(_exported(client)).encode()
    empty = json.dumps({**json.loads(first), "elements": [], "attempts": []}).encode()
    files = [("file", ("a.json", first, "application/json")), ("file", ("b.json", empty, "application/json"))]
    r = client.post("/progress/import", files=files, headers=JSON)
    assert "given 2 times" in _error(r)["message"]
    assert len(_pages_still_work(client)["elements"]) == 1  # neither file was applied


# --- what the store writes and reads ------------------------------------------------------------


def test_grader_output_with_nul_and_surrogates_is_stored_the_same_on_both_stores(app) -> None:
    """Text the learner did not type (a grade's captured output) is kept, with U+FFFD in place of
    what a store cannot hold (and null for NaN), instead of failing the write (PostgreSQL) or every
    later page (SQLite)."""
    from straightline.course.store import Change

    store = app.state.ctx.store
    result = {"status": "failed", "output": "printed \x00 and \udcff", "tests": [{"name": "t\x00", "loss": float("nan")}]}
    new = store.update("learner-1", "b-build", "build-it", lambda old: Change({"result": result}, "started", [("submission", {"result": result})]))
    clean = {"status": "failed", "output": "printed \ufffd and \ufffd", "tests": [{"name": "t\ufffd", "loss": None}]}
    assert new.state == {"result": clean}
    assert store.states("learner-1")["b-build"].state == {"result": clean}
    assert store.attempts("learner-1")[0].payload == {"result": clean}


def test_rows_stored_before_the_check_read_back_clean(store_url: str, app, client: TestClient) -> None:
    """SQLite took lone surrogates and NUL (and NaN) before; such a learner's pages and export
    answered 500 forever. PostgreSQL's JSONB never held them."""
    client.post("/elements/b-gate/checkpoint", data={"answer": GOOD_ANSWER})
    engine = app.state.ctx.store.engine
    bad_state = '{"answer": "' + GOOD_ANSWER + ' \\ud800 \\u0000", "words": 7, "rating": null}'
    if engine.dialect.name != "sqlite":
        with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
            conn.execute(sa.text("UPDATE element_state SET state = CAST(:s AS jsonb)"), {"s": bad_state})
        return
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE element_state SET state = :s"), {"s": bad_state})
        conn.execute(sa.text("UPDATE attempts SET payload = :s"), {"s": '{"text": "x\\udfff", "n": NaN}'})
    exported = _pages_still_work(client)
    assert exported["elements"][0]["state"] == {"answer": GOOD_ANSWER + " \ufffd \ufffd", "words": 7, "rating": None}
    assert exported["attempts"][0]["payload"] == {"text": "x\ufffd", "n": None}
