"""Build-It over HTTP, against both progress stores and the real sandboxed grader: a submission is
graded and stored (with its code and result), the page shows per-test results with and without
JavaScript, refusals say why (409 busy or locked, 413 too large, 404 unknown, 503 no sandbox),
export/import carry the submissions, a passing solution runs in the simulation, and pages keep
answering while a burst of submissions is graded."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from straightline.course.content import Course
from straightline.grader import GraderSettings
from straightline.grader.verdict import infrastructure_result
from straightline.web.app import create_app
from straightline.web.grading import attach_grader

from web_support import GOOD_CFM_LOSS as GOOD, JSON, make_settings  # noqa: E402

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("bwrap") is None, reason="bubblewrap (bwrap) is not installed; `make test` installs it"
)

FRAGMENT = {"X-Straightline-Fragment": "1", "Accept": "text/html"}
BUILD = "b-build"  # the fixture course's Build-It (exercise cfm_loss), after the gate b-gate

REVERSED = GOOD.replace("(x_1 - x_0)", "(x_0 - x_1)")
SYNTAX = "import torch\ndef cfm_loss(model, x_1:\n    return 0\n"


def clear_gate(client: TestClient) -> None:
    r = client.post("/elements/b-gate/checkpoint", data={"answer": "trajectories cannot cross because solutions are unique"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def submit(client: TestClient, code: str, headers: dict | None = None, element: str = BUILD) -> httpx.Response:
    return client.post(f"/elements/{element}/submission", data={"code": code}, headers=headers or JSON)


# ------------------------------------------------------------------------------------------------
# grading and storing


def test_a_passing_submission_is_graded_and_stored(client: TestClient, app: FastAPI) -> None:
    clear_gate(client)
    r = submit(client, GOOD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"]["status"] == "passed" and body["passed"] is True
    assert body["status"] == "done" and body["attempts"] == 1 and body["description"] == "passed (1 attempt)"
    assert [t["status"] for t in body["result"]["tests"]] == ["passed"] * len(body["result"]["tests"])
    assert body["chapter"]["done"] >= 2  # the gate and this exercise
    state = client.get(f"/elements/{BUILD}", headers=JSON).json()["state"]
    assert state["code"] == GOOD and state["passed_code"] == GOOD and state["passed"] is True
    store = app.state.ctx.store
    learner = next(iter(store_learners(store)))
    attempts = [a for a in store.attempts(learner, BUILD)]
    assert [a.kind for a in attempts] == ["submission"]
    assert attempts[0].payload["code"] == GOOD and attempts[0].payload["result"]["status"] == "passed"
    assert attempts[0].payload["counts"] is True


def store_learners(store) -> list[str]:
    import sqlalchemy as sa

    from straightline.course.store import learners_table

    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(learners_table.c.id)).scalars())


def test_a_failing_submission_names_the_first_failure_and_the_tests_in_order(client: TestClient) -> None:
    clear_gate(client)
    body = submit(client, REVERSED).json()
    result = body["result"]
    assert result["status"] == "failed" and body["passed"] is False and body["status"] == "started"
    assert result["message"].startswith("Test 1 (visible example")
    assert "x_1 - x_0" in result["message"]
    ids = [t["id"] for t in result["tests"]]
    assert ids[0] == "example" and len(ids) == len(set(ids)) >= 5
    # then the fix passes; attempts count both
    body = submit(client, GOOD).json()
    assert body["passed"] is True and body["attempts"] == 2 and body["description"] == "passed (2 attempts)"
    # a later failing submission does not take the pass away, and the run still uses the passing code
    body = submit(client, SYNTAX).json()
    assert body["result"]["status"] == "syntax_error" and body["passed"] is True and body["status"] == "done"
    state = client.get(f"/elements/{BUILD}", headers=JSON).json()["state"]
    assert state["code"] == SYNTAX and state["passed_code"] == GOOD


def test_a_syntax_error_names_its_line_and_the_page_points_at_it(client: TestClient) -> None:
    clear_gate(client)
    r = submit(client, SYNTAX, headers=FRAGMENT)
    assert r.status_code == 200 and r.headers["x-chapter-progress"]
    html = r.text
    assert 'data-verdict="syntax_error"' in html
    assert "Syntax error at line 2" in html
    assert 'data-goto-line="2"' in html
    assert "def cfm_loss(model, x_1:\n" in html  # the code stays in the editor


def test_learner_text_is_escaped(client: TestClient) -> None:
    clear_gate(client)
    code = GOOD.replace("    x_0 = noise_fn(x_1)\n", "    print('<script>alert(1)</script>')\n    x_0 = noise_fn(x_1)\n")
    code += "raise ValueError('<img src=x onerror=alert(2)>')\n"
    html = submit(client, code, headers=FRAGMENT).text
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script>alert(1)" not in html


def test_json_bodies_are_accepted(client: TestClient) -> None:
    clear_gate(client)
    r = client.post(f"/elements/{BUILD}/submission", content=json.dumps({"code": SYNTAX}), headers={**JSON, "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["result"]["line"] == 2


def test_without_javascript_the_form_redirects_back_to_the_result(client: TestClient) -> None:
    clear_gate(client)
    r = client.post(f"/elements/{BUILD}/submission", data={"code": REVERSED}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/chapters/beta#{BUILD}"
    page = client.get(r.headers["location"]).text
    section = page[page.index(f'id="{BUILD}"'):]
    section = section[: section.index("</section>")]
    assert "Not passing yet: 0 of" in section
    assert "Test 1 (visible example" in section
    assert "(x_0 - x_1)" in section  # the submitted code is back in the editor
    assert section.count('class="test test--') >= 5


# ------------------------------------------------------------------------------------------------
# refusals


def test_refusals(client: TestClient) -> None:
    # locked until the gate is cleared: nothing graded, nothing stored
    r = submit(client, GOOD)
    assert r.status_code == 409 and "checkpoint" in r.json()["error"]["message"]
    assert client.get(f"/elements/{BUILD}", headers=JSON).json()["state"] is None
    clear_gate(client)
    assert submit(client, GOOD, element="nope").status_code == 404
    r = submit(client, GOOD, element="b-gate")
    assert r.status_code == 404 and "checkpoint" in r.json()["error"]["message"]
    r = client.post(f"/elements/{BUILD}/submission", data={}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "code"
    # over the grader's limit (64 KiB) but within the route's body limit (256 KiB)
    big = GOOD + "# " + "x" * (100 * 1024) + "\n"
    r = submit(client, big)
    assert r.status_code == 413 and "65536 bytes" in r.json()["error"]["message"]
    # over the route's body limit
    r = submit(client, "#" * (300 * 1024))
    assert r.status_code == 413 and "256 KiB" in r.json()["error"]["message"]
    # other routes keep the 64 KiB limit
    r = client.post("/elements/b-gate/checkpoint", data={"answer": "word " * 20000}, headers=JSON)
    assert r.status_code == 413
    assert client.get(f"/elements/{BUILD}", headers=JSON).json()["state"] is None
    # a plain form refusal keeps the code in the editor and says why
    r = client.post(f"/elements/{BUILD}/submission", data={"code": big}, follow_redirects=False)
    assert r.status_code == 413 and "65536 bytes" in r.text and "x" * 1000 in r.text


def test_a_second_submission_while_the_first_is_graded_is_refused_with_409(client: TestClient) -> None:
    clear_gate(client)
    slow = "import time\ntime.sleep(3)\n" + GOOD
    first: dict = {}
    thread = threading.Thread(target=lambda: first.update(r=submit(client, slow)))
    thread.start()
    time.sleep(1.0)
    r = submit(client, GOOD)
    thread.join()
    assert r.status_code == 409, r.text
    assert "still being graded" in r.json()["error"]["message"] and r.json()["error"]["reason"] == "busy"
    assert first["r"].status_code == 200 and first["r"].json()["result"]["status"] == "passed"
    assert client.get(f"/elements/{BUILD}", headers=JSON).json()["state"]["attempts"] == 1


def test_a_full_queue_is_429_with_retry_after(client: TestClient, other_client: TestClient, app: FastAPI) -> None:
    attach_grader(app.state.ctx, GraderSettings(max_concurrent=1, max_waiting=0, warm_workers=0))
    clear_gate(client)
    clear_gate(other_client)
    first: dict = {}
    thread = threading.Thread(target=lambda: first.update(r=submit(client, "import time\ntime.sleep(2)\n" + GOOD)))
    thread.start()
    time.sleep(0.5)
    r = submit(other_client, GOOD)
    thread.join()
    app.state.ctx.grader.close()
    assert r.status_code == 429 and r.headers["retry-after"] == "5" and r.json()["error"]["reason"] == "queue_full"
    assert first["r"].status_code == 200
    assert other_client.get(f"/elements/{BUILD}", headers=JSON).json()["state"] is None


def test_without_bubblewrap_grading_is_off_and_the_panel_says_why(store_url: str, tmp_path: Path, fixture_course: Course) -> None:
    app = create_app(make_settings(store_url, tmp_path), course=fixture_course)
    attach_grader(app.state.ctx, GraderSettings(bwrap=str(tmp_path / "no-bwrap-here")))
    with TestClient(app) as client:
        clear_gate(client)
        page = client.get("/chapters/beta").text
        assert "Grading is off on this server." in page and "apt-get install bubblewrap" in page
        r = submit(client, GOOD)
        assert r.status_code == 503 and "bubblewrap" in r.json()["error"]["message"]
        r = client.post(f"/elements/{BUILD}/submission", data={"code": GOOD}, follow_redirects=False)
        assert r.status_code == 503 and "apt-get install bubblewrap" in r.text
        assert client.get(f"/elements/{BUILD}", headers=JSON).json()["state"] is None


def test_unsafe_local_grading_shows_a_warning(store_url: str, tmp_path: Path, fixture_course: Course) -> None:
    app = create_app(make_settings(store_url, tmp_path, unsafe_local_grading=True), course=fixture_course)
    with TestClient(app) as client:
        clear_gate(client)
        page = client.get("/chapters/beta").text
        assert "Warning: unsafe local grading." in page and "without the bubblewrap sandbox" in page


def test_an_infrastructure_failure_is_stored_but_not_counted(client: TestClient, app: FastAPI) -> None:
    clear_gate(client)

    async def broken(learner: str, exercise: str, code: str, **_where):
        return infrastructure_result(exercise, "the sandbox could not start (test)")

    app.state.ctx.grader.submit = broken
    body = submit(client, GOOD).json()
    assert body["result"]["status"] == "infrastructure_error" and body["result"]["counts_as_attempt"] is False
    assert body["attempts"] == 0 and body["passed"] is False and body["description"] == "not graded yet"
    html = client.get(f"/elements/{BUILD}", headers=FRAGMENT).text
    assert "a problem on our side" in html and "does not count as an attempt" in html
    exported = client.get("/progress/export").json()
    (attempt,) = [a for a in exported["attempts"] if a["element"] == BUILD]
    assert attempt["payload"]["counts"] is False


# ------------------------------------------------------------------------------------------------
# export / import


def test_export_includes_submissions_and_import_restores_them(client: TestClient, other_client: TestClient) -> None:
    clear_gate(client)
    submit(client, REVERSED)
    submit(client, GOOD)
    exported = client.get("/progress/export")
    data = exported.json()
    subs = [a for a in data["attempts"] if a["element"] == BUILD]
    assert [a["kind"] for a in subs] == ["submission", "submission"]
    assert subs[0]["payload"]["code"] == REVERSED and subs[0]["payload"]["result"]["status"] == "failed"
    assert subs[1]["payload"]["result"]["status"] == "passed"
    (element,) = [e for e in data["elements"] if e["id"] == BUILD]
    assert element["type"] == "build-it" and element["status"] == "done" and element["state"]["attempts"] == 2

    r = other_client.post("/progress/import", files={"file": ("p.json", exported.content, "application/json")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    state = other_client.get(f"/elements/{BUILD}", headers=JSON).json()
    assert state["status"] == "done" and state["state"]["code"] == GOOD and state["state"]["passed_code"] == GOOD
    page = other_client.get("/chapters/beta").text
    assert "Passed: " in page and "Run it in the simulation" in page
    again = other_client.get("/progress/export").json()
    assert [a["payload"] for a in again["attempts"] if a["element"] == BUILD] == [a["payload"] for a in subs]

    # a malformed Build-It state is refused, naming what is wrong, and changes nothing
    bad = json.loads(exported.content)
    for e in bad["elements"]:
        if e["id"] == BUILD:
            e["state"]["passed_code"] = None
    r = other_client.post("/progress/import", files={"file": ("p.json", json.dumps(bad).encode(), "application/json")}, headers=JSON)
    assert r.status_code == 422 and "passed_code" in r.text
    assert other_client.get(f"/elements/{BUILD}", headers=JSON).json()["state"]["passed_code"] == GOOD


# ------------------------------------------------------------------------------------------------
# run it in the simulation


def test_run_in_the_simulation(client: TestClient) -> None:
    clear_gate(client)
    r = client.post(f"/elements/{BUILD}/run", headers=JSON)
    assert r.status_code == 409 and "Pass the tests first" in r.json()["error"]["message"]
    submit(client, GOOD)
    r = client.post(f"/elements/{BUILD}/run", data={"steps": "5"}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "steps"  # the training run has no steps
    r = client.post(f"/elements/{BUILD}/run", headers=JSON)
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    assert run["status"] == "ok" and run["mode"] == "train", run["message"]
    assert len(run["learner"]) == 500 and len(run["data"]) == 500 and len(run["losses"]) == 400
    assert run["w2"] == pytest.approx(run["w2_reference"], abs=0.05) and run["w2_floor"] < run["w2"] + 0.3
    assert run["w2_floor_low"] < run["w2_floor"] < run["w2_floor_high"]  # the chapters' floor band at n = 500
    state = client.get(f"/elements/{BUILD}", headers=JSON).json()["state"]
    assert state["run"]["w2"] == run["w2"] and "learner" not in state["run"]
    # without JavaScript: 303 back, and the page quotes the numbers
    r = client.post(f"/elements/{BUILD}/run", follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert f"{run['w2']:.3f}" in page and "W2 to the data: yours" in page


# ------------------------------------------------------------------------------------------------
# pages keep answering during a burst of submissions (a real server process)


@pytest.mark.slow
@pytest.mark.parametrize("fork_server", ["0", "1"], ids=["per_worker", "fork_server"])
def test_pages_keep_answering_while_ten_submissions_grade(server_factory, tmp_path: Path, real_course: Course, fork_server: str) -> None:
    server = server_factory(
        tmp_path / "burst", db=f"sqlite:///{tmp_path / 'burst.db'}",
        extra_env={"STRAIGHTLINE_GRADER_FORK_SERVER": fork_server, "STRAIGHTLINE_GRADER_PER_CLIENT": str(10)},
    )  # ten learners on one address (a class behind one NAT): the per-address limit raised to match
    build = real_course.elements["c4-build-cfm-loss"]
    chapter = real_course.chapters[build.chapter]
    gates = [e.id for e in chapter.elements if e.type == "checkpoint"]
    probe_page = f"/chapters/{real_course.chapters[0].slug}"
    n = 10

    async def learner(i: int) -> httpx.Response:
        async with httpx.AsyncClient(base_url=server.url, timeout=180) as c:
            for gate in gates:
                r = await c.post(f"/elements/{gate}/checkpoint", data={"answer": "because " * 40}, headers=JSON)
                assert r.status_code == 200, r.text
            return await c.post(f"/elements/{build.id}/submission", data={"code": GOOD}, headers=JSON)

    async def main() -> tuple[list[float], list[httpx.Response], int]:
        latencies: list[float] = []
        failures = 0
        stop = asyncio.Event()
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as reader:
            assert (await reader.get(probe_page)).status_code == 200

            async def pages() -> None:
                nonlocal failures
                while not stop.is_set():
                    start = time.perf_counter()
                    r = await reader.get(probe_page)
                    latencies.append(time.perf_counter() - start)
                    failures += r.status_code != 200
                    await asyncio.sleep(0.02)

            probe = asyncio.ensure_future(pages())
            started = time.perf_counter()
            results = await asyncio.gather(*(learner(i) for i in range(n)))
            await asyncio.sleep(max(0.0, 3.0 - (time.perf_counter() - started)))  # (a fork server's burst is short)
            stop.set()
            await probe
        return latencies, results, failures

    latencies, results, failures = asyncio.run(main())
    assert [r.status_code for r in results] == [200] * n, [r.text[:300] for r in results if r.status_code != 200]
    assert all(r.json()["result"]["status"] == "passed" for r in results)
    # a child of the fork server has a 14-character submission id, a sandbox of its own 16
    assert {len(r.json()["result"]["submission_id"]) for r in results} == {14 if fork_server == "1" else 16}
    assert failures == 0 and len(latencies) > 10
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(
        f"\npage latency during {n} submissions: {len(latencies)} requests, "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
