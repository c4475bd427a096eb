"""Element actions over HTTP, every element type, both stores; all three answer forms
(plain form post -> 303, fragment, JSON); refused input changes nothing."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from web_support import JSON, element_state  # noqa: E402

FRAGMENT = {"X-Straightline-Fragment": "1"}


def export(client: TestClient) -> dict:
    data = client.get("/progress/export").json()
    data.pop("exported_at")
    return data


def clear_gate(client: TestClient) -> None:
    r = client.post("/elements/b-gate/checkpoint", data={"answer": "uniqueness of solutions forbids two trajectories meeting"}, headers=JSON)
    assert r.status_code == 200, r.text


# --- check -----------------------------------------------------------------------------------------

def test_check_plain_form_redirects_back_to_the_element(client: TestClient) -> None:
    r = client.post("/elements/a-check/check", data={"option": "2"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/chapters/alpha#a-check"
    page = client.get(r.headers["location"]).text
    section = re.search(r'<section[^>]*id="a-check".*?</section>', page, re.S).group(0)
    assert "Not quite." in section and "The sign is reversed" in section  # explanation of option 2
    assert "Time is not a velocity" not in section  # only the chosen option's explanation


def test_check_records_every_attempt_and_solves(client: TestClient) -> None:
    wrong = client.post("/elements/a-check/check", data={"option": "3"}, headers=JSON).json()
    assert wrong["status"] == "started" and wrong["state"] == {"chosen": 3, "correct": False, "attempts": 1, "solved": False}
    right = client.post("/elements/a-check/check", data={"option": "1"}, headers=JSON).json()
    assert right["status"] == "done" and right["state"]["solved"] is True and right["state"]["attempts"] == 2
    again = client.post("/elements/a-check/check", data={"option": "4"}, headers=JSON).json()
    assert again["status"] == "done" and again["state"]["correct"] is False  # once solved, stays done
    attempts = [a for a in export(client)["attempts"] if a["element"] == "a-check"]
    assert [(a["payload"]["option"], a["payload"]["correct"]) for a in attempts] == [(3, False), (1, True), (4, False)]
    assert right["chapter"] == {"slug": "alpha", "done": 1, "total": 2}


def test_check_fragment_is_the_element_with_feedback(client: TestClient) -> None:
    r = client.post("/elements/a-check/check", data={"option": "1"}, headers=FRAGMENT)
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<section class="el el--check"')
    assert "Right." in r.text and "does not depend on" in r.text
    assert "Why each option is right or wrong" in r.text  # all explanations once solved
    assert r.headers["X-Chapter-Progress"] == "1/2"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "the field 'option' is missing or empty"),
        ({"option": "5"}, "option must be one of 1, 2, 3, 4; got '5'"),
        ({"option": "one"}, "option must be one of 1, 2, 3, 4; got 'one'"),
        ({"option": ""}, "the field 'option' is missing or empty"),
        ({"option": " 7 "}, "option must be one of 1, 2, 3, 4; got '7'"),
    ],
)
def test_check_bad_option_is_422_naming_the_field(client: TestClient, data: dict, message: str) -> None:
    client.post("/elements/a-check/check", data={"option": "2"})
    before = export(client)
    r = client.post("/elements/a-check/check", data=data, headers=JSON)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["field"] == "option" and error["message"] == message and error["accepted"] == "1, 2, 3, 4"
    page = client.post("/elements/a-check/check", data=data)
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    assert "Option must be one of 1, 2, 3, 4" in page.text or "The field &#39;option&#39; is missing or empty" in page.text
    assert export(client) == before  # nothing lost, nothing added


def test_json_body_instead_of_form_is_422(client: TestClient) -> None:
    r = client.post("/elements/a-check/check", json={"option": 1}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "option"


# --- checkpoint ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("answer", "needle"),
    [("", "the answer is empty"), ("   \n ", "the answer is empty"), ("too short really", "has 3 words; write at least 5")],
)
def test_checkpoint_refuses_empty_and_short_answers(client: TestClient, answer: str, needle: str) -> None:
    r = client.post("/elements/b-gate/checkpoint", data={"answer": answer}, headers=JSON)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "answer" and needle in r.json()["error"]["message"]
    page = client.post("/elements/b-gate/checkpoint", data={"answer": answer})
    assert page.status_code == 422
    section = re.search(r'<section[^>]*id="b-gate".*?</section>', page.text, re.S).group(0)
    assert 'role="alert"' in section and "Model answer" not in section and "Gate cleared" not in section
    assert element_state(client, "b-gate")["status"] == "new"


def test_checkpoint_keeps_the_draft_when_refused(client: TestClient) -> None:
    r = client.post("/elements/b-gate/checkpoint", data={"answer": "my two words"}, headers=FRAGMENT)
    assert r.status_code == 422
    assert ">my two words</textarea>" in r.text and 'aria-invalid="true"' in r.text


def test_checkpoint_answer_reveals_model_answer_clears_gate_and_rates(client: TestClient) -> None:
    text = "Solutions of a Lipschitz ODE are unique, so two trajectories never meet at one (x, t)."
    r = client.post("/elements/b-gate/checkpoint", data={"answer": text}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/chapters/beta#b-gate"
    page = client.get("/chapters/beta").text
    section = re.search(r'<section[^>]*id="b-gate".*?</section>', page, re.S).group(0)
    assert "Gate cleared" in section and "Picard" in section and "Lipschitz ODE are unique" in section
    st = element_state(client, "b-gate")
    assert st["status"] == "done" and st["state"]["answer"] == text and st["state"]["rating"] is None
    for rating in ("partly", "got"):
        r = client.post("/elements/b-gate/checkpoint/rating", data={"rating": rating}, headers=JSON)
        assert r.status_code == 200 and r.json()["state"]["rating"] == rating
    assert element_state(client, "b-gate")["state"]["answer"] == text  # the answer is kept for review
    kinds = [a["kind"] for a in export(client)["attempts"]]
    assert kinds == ["checkpoint-answer", "checkpoint-rating", "checkpoint-rating"]
    assert 'aria-pressed="true">Got it<' in client.get("/chapters/beta").text


def test_checkpoint_rating_validation(client: TestClient) -> None:
    r = client.post("/elements/b-gate/checkpoint/rating", data={"rating": "got"}, headers=JSON)
    assert r.status_code == 409 and "answer the checkpoint before rating" in r.json()["error"]["message"]
    clear_gate(client)
    r = client.post("/elements/b-gate/checkpoint/rating", data={"rating": "meh"}, headers=JSON)
    assert r.status_code == 422
    assert r.json()["error"] == {
        "status": 422,
        "field": "rating",
        "message": "rating must be one of got, partly, missed; got 'meh'",
        "accepted": "got, partly, missed",
    }


def test_gate_locks_later_elements_until_cleared(client: TestClient) -> None:
    page = client.get("/chapters/beta").text
    for locked in ("b-adversarial", "b-design"):
        section = re.search(rf'<section[^>]*id="{locked}".*?</section>', page, re.S).group(0)
        assert "is-locked" in section and "Clear the checkpoint" in section and "<textarea" not in section
    before = re.search(r'<section[^>]*id="b-check-before".*?</section>', page, re.S).group(0)
    assert "is-locked" not in before
    r = client.post("/elements/b-adversarial/adversarial", data={"answer": "one two three four five six seven eight"}, headers=JSON)
    assert r.status_code == 409 and r.json()["error"]["field"] == "element"
    r = client.post("/elements/b-gate/checkpoint", data={"answer": "solutions are unique so they never cross"}, headers=FRAGMENT)
    assert r.headers["X-Refresh-Elements"].split() == ["b-adversarial", "b-build", "b-design"]
    fragment = client.get("/elements/b-adversarial", headers=FRAGMENT)
    assert fragment.status_code == 200 and "<textarea" in fragment.text and "is-locked" not in fragment.text


# --- derivation ------------------------------------------------------------------------------------

def test_derivation_hints_one_at_a_time_then_solution(client: TestClient) -> None:
    r = client.post("/elements/a-derivation/derivation", data={"reveal": "hint-2"}, headers=JSON)
    assert r.status_code == 409 and "the next one is hint-1" in r.json()["error"]["message"]
    for k in (1, 2, 3):
        r = client.post("/elements/a-derivation/derivation", data={"reveal": f"hint-{k}"}, headers=FRAGMENT)
        assert r.status_code == 200
        assert f"Hint {k} of 3" in r.text and (f"Show hint {k + 1} of 3" in r.text) == (k < 3)
        assert "Full derivation" not in r.text
    assert element_state(client, "a-derivation")["state"] == {"hints": 3, "solution": False}
    assert element_state(client, "a-derivation")["status"] == "started"
    r = client.post("/elements/a-derivation/derivation", data={"reveal": "solution"}, follow_redirects=False)
    assert r.status_code == 303
    st = element_state(client, "a-derivation")
    assert st["status"] == "done" and st["state"] == {"hints": 3, "solution": True}
    assert "attempted, full derivation opened" in st["description"]
    page = client.get("/chapters/alpha").text
    assert "Full derivation" in page and "Hint three" in page


def test_derivation_solution_any_time_and_repeat_hints_are_harmless(client: TestClient) -> None:
    client.post("/elements/a-derivation/derivation", data={"reveal": "hint-1"})
    client.post("/elements/a-derivation/derivation", data={"reveal": "hint-1"})
    assert element_state(client, "a-derivation")["state"]["hints"] == 1
    r = client.post("/elements/a-derivation/derivation", data={"reveal": "solution"}, headers=JSON)
    assert r.json()["state"] == {"hints": 1, "solution": True}
    r = client.post("/elements/a-derivation/derivation", data={"reveal": "all"}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["accepted"] == "hint-1, hint-2, hint-3, solution"


# --- adversarial -----------------------------------------------------------------------------------

def test_adversarial_commit_then_reveal_with_experiment_panel(client: TestClient) -> None:
    clear_gate(client)
    r = client.post("/elements/b-adversarial/adversarial", data={"answer": "errors compound"}, headers=JSON)
    assert r.status_code == 422 and "write at least 8" in r.json()["error"]["message"]
    page = client.get("/chapters/beta").text
    assert "previous model&#39;s coupling" not in page and "previous model's coupling" not in page
    text = "each round trains on the previous model's pairs so its errors compound over rounds"
    r = client.post("/elements/b-adversarial/adversarial", data={"answer": text}, follow_redirects=False)
    assert r.status_code == 303
    section = re.search(r'<section[^>]*id="b-adversarial".*?</section>', client.get("/chapters/beta").text, re.S).group(0)
    assert "previous model" in section and "errors compound over rounds" in section
    # the experiment behind the scenario: the shipped measurements (bench/claims.py), as a table
    from straightline.course.experiments import load_experiment

    measured = load_experiment("reflow-rounds")
    assert measured is not None, "course/experiments/reflow-rounds.json is shipped"
    assert "Coming with" not in section and html.escape(measured.title, quote=True) in section
    header = re.findall(r'<th scope="col">(.*?)</th>', section)
    assert header == [html.escape(c, quote=False) for c in measured.columns]
    assert section.count("<tr>") == len(measured.rows) + 1


# --- design ----------------------------------------------------------------------------------------

def test_design_questions_then_reference_design(client: TestClient) -> None:
    clear_gate(client)
    r = client.post("/elements/b-design/design/reveal", headers=JSON)
    assert r.status_code == 409 and "question(s) 1, 2, 3, 4 still open" in r.json()["error"]["message"]
    r = client.post("/elements/b-design/design", data={"question": "5", "answer": "a b c d e"}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "question"
    r = client.post("/elements/b-design/design", data={"question": "1", "answer": "short"}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "answer"
    for k in range(1, 5):
        r = client.post("/elements/b-design/design", data={"question": str(k), "answer": f"my answer to question {k} here"}, headers=FRAGMENT)
        assert r.status_code == 200
        assert r.text.count("Reference answer") == k
    assert element_state(client, "b-design")["status"] == "started"
    assert "Reference design" not in client.get("/chapters/beta").text
    r = client.post("/elements/b-design/design/reveal", follow_redirects=False)
    assert r.status_code == 303
    st = element_state(client, "b-design")
    assert st["status"] == "done" and st["state"]["design"] is True and len(st["state"]["answers"]) == 4
    assert "tangent-space velocities" in client.get("/chapters/beta").text


# --- unknown things, wrong routes, big bodies ------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("/elements/no-such/check", "There is no element &#39;no-such&#39;"),
        ("/elements/a-derivation/check", "is a derivation; it has no &#39;check&#39; action"),
        ("/elements/a-pattern/check", "is a pattern"),
    ],
)
def test_unknown_or_mismatched_element_is_a_404_page(client: TestClient, url: str, needle: str) -> None:
    r = client.post(url, data={"option": "1"})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert needle in r.text and "Nothing you have saved was changed" in r.text
    assert client.post(url, data={"option": "1"}, headers=JSON).json()["error"]["status"] == 404


def test_body_over_64_kib_is_413_and_changes_nothing(client: TestClient) -> None:
    clear_gate(client)
    before = export(client)
    big = "word " * 14_000  # ~70 KB
    r = client.post("/elements/b-gate/checkpoint", data={"answer": big})
    assert r.status_code == 413 and "larger than 64 KiB" in r.text
    r = client.post("/elements/b-gate/checkpoint", data={"answer": big}, headers=JSON)
    assert r.status_code == 413 and r.json()["error"]["status"] == 413

    def chunks():  # no Content-Length: the limit is enforced on the bytes actually sent
        for _ in range(20):
            yield b"answer=" + b"x" * 4000

    r = client.post("/elements/b-gate/checkpoint", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert export(client) == before


def test_answers_over_the_text_limit_are_422(client: TestClient) -> None:
    r = client.post("/elements/b-gate/checkpoint", data={"answer": "w " * 15_000}, headers=JSON)
    assert r.status_code == 422 and "the limit is 20000" in r.json()["error"]["message"]


def test_cross_site_post_is_refused(client: TestClient) -> None:
    r = client.post("/elements/a-check/check", data={"option": "1"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert element_state(client, "a-check")["status"] == "new"
    ok = client.post("/elements/a-check/check", data={"option": "1"}, headers={"Origin": "http://testserver", **JSON})
    assert ok.status_code == 200


def test_element_get_without_negotiation_redirects_to_its_chapter(client: TestClient) -> None:
    r = client.get("/elements/b-design", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/chapters/beta#b-design"
    assert client.get("/elements/nope", headers=JSON).status_code == 404


def test_locked_fragment_and_json_state(client: TestClient) -> None:
    assert element_state(client, "b-design")["status"] == "locked"
    assert element_state(client, "b-build")["status"] == "locked"  # a Build-It after the gate locks too
