"""The Chapter 7 Build-It over HTTP, on the real course and the real sandboxed grader: the element
renders on the chapter page with its signature and tests, it unlocks with the chapter's gate, a
classic mistake is named, and a correct meanflow_target passes and is stored."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grader"))
from test_grader_meanflow import BUGS, SOLUTION  # noqa: E402
from web_support import JSON  # noqa: E402

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("bwrap") is None, reason="bubblewrap (bwrap) is not installed; `make test` installs it"
)

ELEMENT = "c7-build-meanflow-target"
ANSWER = (
    "One Euler step uses the velocity at the start, which is an average over every destination, so the "
    "samples collapse to a conditional mean. The flow map follows the real trajectory to its end, so one "
    "jump lands on a true sample. MeanFlow differentiates the displacement along the path with the end "
    "time fixed and regresses onto v plus (t - s) times that derivative, computed from the network itself "
    "under a stop-gradient, with flow matching at s = t anchoring it to data."
)


def test_the_meanflow_build_it_renders_and_a_correct_solution_passes(real_client: TestClient) -> None:
    page = real_client.get("/chapters/jumping")
    assert page.status_code == 200
    assert f'id="{ELEMENT}"' in page.text and "meanflow_target(u, x, s, t, v)" in page.text
    r = real_client.post("/elements/c7-gate/checkpoint", data={"answer": ANSWER}, follow_redirects=False)
    assert r.status_code == 303, r.text

    wrong = real_client.post(f"/elements/{ELEMENT}/submission", data={"code": BUGS["sign"][0]}, headers=JSON)
    assert wrong.status_code == 200, wrong.text
    result = wrong.json()["result"]
    assert result["status"] == "failed" and "wrong sign" in result["message"]

    right = real_client.post(f"/elements/{ELEMENT}/submission", data={"code": SOLUTION}, headers=JSON)
    assert right.status_code == 200, right.text
    body = right.json()
    assert body["passed"] is True and body["result"]["status"] == "passed", body["result"]["message"]
    assert len(body["result"]["tests"]) == 5 and {t["status"] for t in body["result"]["tests"]} == {"passed"}
    state = real_client.get(f"/elements/{ELEMENT}", headers=JSON).json()["state"]
    assert state["passed"] is True and state["passed_code"] == SOLUTION
