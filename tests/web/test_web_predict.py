"""Predictions ({predict} elements) over HTTP on SQLite and PostgreSQL: a committed guess is stored
as the element's state with an attempt, counts as a done element of the chapter, cannot change,
survives export and import; refused guesses name the value and what is accepted and write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straightline.course.content import load_course
from straightline.web.app import create_app

from web_support import JSON, element_state, make_settings  # noqa: E402

CHAPTERS = Path(__file__).parent / "fixtures" / "manipulate"


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(store_url, tmp_path), course=load_course(CHAPTERS))) as c:
        yield c


def test_a_choice_guess_is_stored_counts_and_is_final(client: TestClient) -> None:
    r = client.post("/elements/p-choice/predict", data={"guess": "outward"}, headers=JSON)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "done" and body["state"] == {"guess": "outward"}
    assert body["chapter"] == {"slug": "predict", "done": 1, "total": 2}
    assert element_state(client, "p-choice")["state"] == {"guess": "outward"}
    again = client.post("/elements/p-choice/predict", data={"guess": "one-point"}, headers=JSON)
    assert again.status_code == 409 and "already committed" in again.json()["error"]["message"]
    assert element_state(client, "p-choice")["state"] == {"guess": "outward"}
    attempts = client.get("/progress/export").json()["attempts"]
    assert [(a["element"], a["kind"], a["payload"]) for a in attempts] == [("p-choice", "prediction", {"guess": "outward"})]


def test_a_point_guess_is_rounded_and_bounded(client: TestClient) -> None:
    bad = client.post("/elements/p-point/predict", data={"guess": "9,0"}, headers=JSON)
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["field"] == "guess" and "'9,0'" in error["message"] and "x in [-4, 4]" in error["message"]
    assert client.post("/elements/p-point/predict", data={"guess": "nan,1"}, headers=JSON).status_code == 422
    assert element_state(client, "p-point")["status"] in (None, "new")
    ok = client.post("/elements/p-point/predict", data={"guess": " 1.23456,-0.5 "}, headers=JSON)
    assert ok.status_code == 200 and ok.json()["state"] == {"guess": "1.235,-0.5"}


def test_an_unknown_outcome_is_refused_naming_the_choices(client: TestClient) -> None:
    r = client.post("/elements/p-choice/predict", data={"guess": "nearest-data"}, headers=JSON)
    assert r.status_code == 422
    assert "one-point, outward" in r.json()["error"]["message"]
    missing = client.post("/elements/p-choice/predict", data={}, headers=JSON)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "guess"


def test_the_page_shows_the_committed_guess_after_a_plain_post(client: TestClient) -> None:
    r = client.post("/elements/p-choice/predict", data={"guess": "one-point"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/chapters/predict#p-choice"
    page = client.get("/chapters/predict").text
    assert 'data-guess="one-point"' in page and "Prediction committed" in page
    assert 'class="option is-chosen"' in page


def test_a_prediction_survives_export_and_import(client: TestClient) -> None:
    client.post("/elements/p-point/predict", data={"guess": "0.5,0.5"}, headers=JSON)
    exported = client.get("/progress/export")
    client.cookies.clear()
    assert element_state(client, "p-point")["status"] in (None, "new")
    r = client.post("/progress/import", files={"file": ("progress.json", exported.content, "application/json")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert element_state(client, "p-point")["state"] == {"guess": "0.5,0.5"}
