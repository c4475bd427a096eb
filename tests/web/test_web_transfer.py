"""Export and import of progress: a versioned JSON format; an invalid file is refused with a clear
message and changes nothing; a valid one replaces the learner's progress in one transaction."""

from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient

from web_support import JSON  # noqa: E402


def _progress(client: TestClient) -> None:
    client.post("/elements/a-check/check", data={"option": "2"})
    client.post("/elements/a-check/check", data={"option": "1"})
    client.post("/elements/a-derivation/derivation", data={"reveal": "hint-1"})
    client.post("/elements/b-gate/checkpoint", data={"answer": "solutions are unique so they never cross"})
    client.post("/elements/b-gate/checkpoint/rating", data={"rating": "partly"})


def _export(client: TestClient) -> dict:
    r = client.get("/progress/export")
    assert r.status_code == 200
    data = r.json()
    data.pop("exported_at")
    return data


def _upload(client: TestClient, content: bytes | str, **kw):
    if isinstance(content, str):
        content = content.encode()
    return client.post("/progress/import", files={"file": ("progress.json", content, "application/json")}, **kw)


def test_export_is_a_versioned_download(client: TestClient) -> None:
    _progress(client)
    r = client.get("/progress/export")
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"].startswith('attachment; filename="straightline-progress-')
    data = r.json()
    assert data["format"] == "straightline-progress" and data["version"] == 1
    by_id = {e["id"]: e for e in data["elements"]}
    assert by_id["a-check"]["state"] == {"chosen": 1, "correct": True, "attempts": 2, "solved": True}
    assert by_id["b-gate"]["state"]["rating"] == "partly"
    assert [a["kind"] for a in data["attempts"]] == ["check", "check", "derivation-hint", "checkpoint-answer", "checkpoint-rating"]


def test_import_restores_progress_for_another_learner(client: TestClient, other_client: TestClient) -> None:
    _progress(client)
    exported = client.get("/progress/export").content
    other_client.post("/elements/b-check-before/check", data={"option": "3"})  # replaced by the import
    r = _upload(other_client, exported, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/progress?imported=3"
    assert "3 elements restored" in other_client.get(r.headers["location"]).text
    assert _export(other_client) == _export(client)
    page = other_client.get("/chapters/beta").text
    assert "Gate cleared" in page and "solutions are unique so they never cross" in page


def _valid(client: TestClient) -> dict:
    _progress(client)
    return client.get("/progress/export").json()


def _bad_files(valid: dict) -> list[tuple[str, bytes]]:
    def changed(fn) -> bytes:
        data = copy.deepcopy(valid)
        fn(data)
        return json.dumps(data).encode()

    return [
        ("empty", b""),
        ("not JSON", b"{ this is not json"),
        ("not UTF-8", b"\xff\xfe\x00"),
        ("a list", b"[]"),
        ("wrong format", changed(lambda d: d.update(format="something-else"))),
        ("future version", changed(lambda d: d.update(version=2))),
        ("missing attempts", changed(lambda d: d.pop("attempts"))),
        ("extra key", changed(lambda d: d.update(extra=1))),
        ("option out of range", changed(lambda d: d["elements"][0]["state"].update(chosen=7))),
        ("unknown type", changed(lambda d: d["elements"][0].update(type="quiz"))),
        ("type mismatch", changed(lambda d: d["elements"][0].update(type="checkpoint"))),
        ("status disagrees", changed(lambda d: d["elements"][0].update(status="started"))),
        ("bad rating", changed(lambda d: [e["state"].update(rating="great") for e in d["elements"] if e["id"] == "b-gate"])),
        ("too many hints", changed(lambda d: [e["state"].update(hints=4) for e in d["elements"] if e["id"] == "a-derivation"])),
        ("duplicate id", changed(lambda d: d["elements"].append(d["elements"][0]))),
        ("bad time", changed(lambda d: d["attempts"][0].update(at="yesterday"))),
        ("bad attempt kind", changed(lambda d: d["attempts"][0].update(kind="hack"))),
        ("payload not an object", changed(lambda d: d["attempts"][0].update(payload=[1]))),
    ]


def test_bad_files_are_refused_and_change_nothing(client: TestClient) -> None:
    valid = _valid(client)
    before = _export(client)
    for name, content in _bad_files(valid):
        r = _upload(client, content)
        assert r.status_code == 422, name
        assert "Nothing was imported." in r.text, name
        j = _upload(client, content, headers=JSON)
        assert j.status_code == 422 and j.json()["error"]["field"] == "file", name
        assert _export(client) == before, name


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["elements"][0]["state"].update(chosen=7), "elements[0] (a-check): state.chosen must be an integer in 1..4, got 7"),
        (lambda d: d.update(version=2), "version must be 1"),
        (lambda d: d["elements"][0].update(type="checkpoint"), "is 'checkpoint' but element 'a-check' is a check in this course"),
    ],
)
def test_import_errors_say_where_and_what(client: TestClient, mutate, needle: str) -> None:
    data = _valid(client)
    mutate(data)
    r = _upload(client, json.dumps(data), headers=JSON)
    assert needle in r.json()["error"]["message"]


def test_import_without_a_file_is_422(client: TestClient) -> None:
    r = client.post("/progress/import", data={"nothing": "here"}, headers=JSON)
    assert r.status_code == 422 and "'file' is missing" in r.json()["error"]["message"]


def test_elements_unknown_to_this_course_are_kept(client: TestClient) -> None:
    data = _valid(client)
    data["elements"].append(
        {"id": "z-future", "type": "check", "status": "started", "state": {"chosen": 2, "correct": False, "attempts": 1, "solved": False}, "updated_at": "2025-01-01T00:00:00+00:00"}
    )
    assert _upload(client, json.dumps(data), headers=JSON).json() == {"imported": {"elements": 4, "attempts": 5}}
    assert "z-future" in {e["id"] for e in client.get("/progress/export").json()["elements"]}


def test_import_over_the_limit_is_413(client: TestClient) -> None:
    _progress(client)
    before = _export(client)
    r = _upload(client, b" " * (4 * 1024 * 1024 + 10))
    assert r.status_code == 413
    assert _export(client) == before


def test_large_but_allowed_import_passes_the_64_kib_limit(client: TestClient) -> None:
    data = _valid(client)
    for i in range(400):
        data["attempts"].append({"element": "a-check", "type": "check", "kind": "check", "payload": {"option": 1, "correct": True, "note": "x" * 200}, "at": "2025-01-01T00:00:00+00:00"})
    content = json.dumps(data).encode()
    assert len(content) > 64 * 1024
    assert _upload(client, content, headers=JSON).status_code == 200
