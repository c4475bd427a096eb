"""The simulations API: every simulation answers its defaults with real numbers, refuses bad
parameters with a 422 that names them and their range, is deterministic by seed and cacheable,
is listed in the OpenAPI schema; live training streams Server-Sent Events from a real server
process to its learner only, is capped, and stops when its stream goes away."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from straightline.course.content import Course
from straightline.course.simparams import PARAMS, LiveParams

from web_support import JSON, ServerProcess, sqlite_client  # noqa: E402

# small but real requests, so the module stays quick on two cores
SMALL: dict[str, dict] = {
    "particles-flow": {"particles": 40, "steps": 8},
    "digit-emerging": {"images": 2, "steps": 6},
    "curved-vs-straight": {"particles": 20, "steps": 3},
    "mixture-oracle": {"grid": 5, "samples": 256},
    "velocity-field": {"grid": 6, "particles": 20},
    "euler-steps": {"particles": 50, "steps": 4},
    "euler-faults": {"particles": 50, "steps": 4, "faults": "frozen-time"},
    "solver-orders": {"particles": 8},
    "log-density": {"grid": 8, "steps": 2},
    "reflow-straightening": {"particles": 20, "steps": 3, "round": 2},
    "guided-digits": {"images": 2, "steps": 3, "w": 2.5},
    "rotation-flow": {"particles": 5, "steps": 4},
    "side-by-side": {"particles": 20, "steps": 3, "scale": "ddpm"},
    "flowmap-nfe": {"particles": 20, "nfe": 2},
    "flowmap-jumps": {"particles": 10, "grid": 4},
}


def _model(name: str, params: dict):
    """The parameter model the API builds from these query parameters."""
    from starlette.datastructures import QueryParams

    from straightline.web.routes.sims import parse_query

    return parse_query(PARAMS[name], QueryParams(params))


def decode(arr: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(arr["data"]), dtype="<i2").astype(np.float64) / arr["scale"]
    return raw.reshape(arr["shape"])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, real_course: Course) -> Iterator[TestClient]:
    with sqlite_client(tmp_path_factory.mktemp("sims-api"), real_course) as client:
        yield client


def _get(api: TestClient, name: str, params: dict | None = None, **headers) -> httpx.Response:
    return api.get(f"/api/sims/{name}", params=params or {}, headers={**JSON, **headers})


# --- every simulation --------------------------------------------------------------------------

def test_every_simulation_has_a_route_with_small_params(api: TestClient) -> None:
    assert set(SMALL) == set(PARAMS)
    for name, params in SMALL.items():
        r = _get(api, name, params)
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        assert body["sim"] == name
        expected = _model(name, params).model_dump(mode="json")
        assert body["params"] == expected
        assert "max-age" in r.headers["cache-control"] and r.headers["etag"]


def test_defaults_are_the_parameter_models_defaults(api: TestClient) -> None:
    # the chapter's own requests (warmed at start-up); a default of each kind
    for name in ("particles-flow", "euler-steps", "velocity-field", "digit-emerging"):
        body = _get(api, name).json()
        assert body["params"] == PARAMS[name]().model_dump(mode="json")
    frames = decode(_get(api, "particles-flow").json()["frames"])
    assert frames.shape == (51, 500, 2)  # 50 Euler steps of 500 particles


def test_payloads_carry_the_models_numbers(api: TestClient) -> None:
    body = _get(api, "euler-faults", {"faults": "velocity-bias,curved-velocity", "particles": 200, "steps": 10}).json()
    assert body["params"]["faults"] == ["curved-velocity", "velocity-bias"]  # a set, in the registry's order
    assert [f["name"] for f in body["faults"]] == ["curved-velocity", "velocity-bias"]
    assert body["quality_after"]["w2"] > body["quality_before"]["w2"]
    series = _get(api, "solver-orders", SMALL["solver-orders"]).json()["series"]
    assert set(series) == {"euler", "midpoint", "heun", "rk4", "dopri5"}
    assert series["rk4"]["slope"] > series["euler"]["slope"]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_bound_is_enforced_and_named(api: TestClient, name: str) -> None:
    model = PARAMS[name]
    schema = model.model_json_schema()["properties"]
    checked = 0
    for field, prop in schema.items():
        bad: list[str] = []
        if "maximum" in prop:
            bad.append(str(prop["maximum"] + 1))
        if "minimum" in prop:
            bad.append(str(prop["minimum"] - 1))
        if "enum" in prop:
            bad.append("nonsense")
        if prop.get("type") == "array":
            bad.append("gravity")
        for value in bad:
            r = _get(api, name, {field: value})
            assert r.status_code == 422, (name, field, value, r.text)
            error = r.json()["error"]
            assert error["field"] == field
            assert field in error["message"] and value in error["message"]
            if "maximum" in prop:
                assert f"{prop['minimum']}..{prop['maximum']}" in error["accepted"]
            checked += 1
    assert checked >= 2


def test_wrong_types_unknown_and_repeated_parameters(api: TestClient) -> None:
    r = _get(api, "particles-flow", {"particles": "lots"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "particles"
    assert "an integer in 1..2000" in r.json()["error"]["message"]
    r = _get(api, "particles-flow", {"colour": "red"})
    error = r.json()["error"]
    assert r.status_code == 422 and error["field"] == "colour"
    assert "unknown parameter 'colour'" in error["message"] and "particles" in error["accepted"]
    r = api.get("/api/sims/velocity-field?t=0.2&t=0.3", headers=JSON)
    assert r.status_code == 422 and "given 2 times" in r.json()["error"]["message"]
    r = _get(api, "velocity-field", {"t": "nan"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "t"
    # a plain client (no Accept header) gets the same JSON: it is an API
    r = api.get("/api/sims/euler-steps?steps=0")
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    r = _get(api, "digit-emerging", {"label": "", "images": 1, "steps": 2})  # empty label means any digit
    assert r.status_code == 200 and r.json()["params"]["label"] is None


def test_results_are_deterministic_by_seed(api: TestClient) -> None:
    from straightline.course.sims import Simulations

    models = api.app.state.ctx.sims.engine.sims.models
    fresh = Simulations(models)
    for name, params in SMALL.items():
        if name == "solver-orders":
            continue  # the slowest; covered by the toolkit's own tests
        a = _get(api, name, {**params, "seed": 7})
        direct = fresh.run(name, _model(name, {**params, "seed": 7}))
        assert a.json() == json.loads(json.dumps(direct)), name  # the API serves what the toolkit computes
        b = _get(api, name, {**params, "seed": 8})
        assert a.content != b.content, name


def test_cache_headers_etag_and_gzip(api: TestClient) -> None:
    params = {"particles": 1000, "steps": 50, "seed": 11}
    r = _get(api, "particles-flow", params, **{"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "accept-encoding"
    assert r.headers["cache-control"].startswith("public, max-age=")
    raw = api.get("/api/sims/particles-flow", params=params, headers={**JSON, "Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(raw.content) <= 300_000  # 1000 particles x 50 steps stay under 300 KB
    assert len(gzip.compress(raw.content)) < len(raw.content)
    again = api.get("/api/sims/particles-flow", params=params, headers={**JSON, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_the_openapi_schema_lists_every_simulation_with_its_ranges(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    for name, model in PARAMS.items():
        op = spec["paths"][f"/api/sims/{name}"]["get"]
        listed = {p["name"]: p for p in op["parameters"]}
        assert set(listed) == set(model.model_fields), name
        for field, prop in model.model_json_schema()["properties"].items():
            for key in ("minimum", "maximum", "enum"):
                if key in prop:
                    assert listed[field]["schema"][key] == prop[key], (name, field, key)
            assert listed[field]["in"] == "query" and listed[field]["description"]
        assert "422" in op["responses"]
    live = spec["paths"]["/api/sims/live-training"]["post"]
    body = live["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == set(LiveParams.model_fields)
    assert {"429", "422"} <= set(live["responses"])
    assert "/api/sims/live-training/{job_id}/events" in spec["paths"]


def test_live_training_refuses_bad_bodies(api: TestClient) -> None:
    r = api.post("/api/sims/live-training", json={"steps": 5}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "steps"
    assert "10..5000" in r.json()["error"]["message"]
    r = api.post("/api/sims/live-training", json={"lr": 1}, headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "lr"
    r = api.post("/api/sims/live-training", json={"dataset": None, "points": [[0, 0]] * 3}, headers=JSON)
    assert r.status_code == 422 and "8 to 2000" in r.json()["error"]["message"]
    r = api.post("/api/sims/live-training", content=b"not json", headers={**JSON, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body"
    r = api.post("/api/sims/live-training", json={}, headers={**JSON, "Origin": "http://evil.example"})
    assert r.status_code == 403
    assert api.get("/api/sims/live-training/nope", headers=JSON).status_code == 404


# --- live training against a real server process ---------------------------------------------------

def test_healthz_reports_the_simulations_state(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, headers=JSON, timeout=300) as client:
        assert client.get("/healthz").json()["simulations"] in ("idle", "loading", "warming", "ready")
        assert client.get("/api/sims/velocity-field", params={"grid": 3}).status_code == 200  # loads the models
        assert client.get("/healthz").json()["simulations"] in ("warming", "ready")


@contextmanager
def _learner(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=JSON, timeout=120) as client:
        client.get("/healthz")  # the learner cookie
        yield client


def _start(client: httpx.Client, **params) -> dict:
    r = client.post("/api/sims/live-training", json=params)
    assert r.status_code == 201, r.text
    return r.json()


def _events(response: httpx.Response) -> Iterator[dict]:
    kind = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            event = json.loads(line.split(":", 1)[1])
            assert event["type"] == kind
            yield event


def _wait_state(client: httpx.Client, job: str, states: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/sims/live-training/{job}").json()
        if body["state"] in states:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not reach {states}: {body}")


def test_a_job_streams_to_its_end(server: ServerProcess) -> None:
    with _learner(server) as learner:
        job = _start(learner, dataset="two_clusters", steps=60, snapshot_every=20)
        assert job["state"] == "running" and job["events"].endswith("/events")
        with learner.stream("GET", job["events"]) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = list(_events(r))
        snaps = [e for e in events if e["type"] == "snapshot"]
        assert [s["step"] for s in snaps] == [20, 40, 60] and events[-1]["type"] == "done"
        assert "data" in snaps[0] and decode(snaps[-1]["samples"]).shape == (300, 2)
        assert len(snaps[0]["losses"]) == 20
        assert _wait_state(learner, job["job"], ("done",))["steps_done"] == 60
        # everything was sent: a reconnecting EventSource is told to stop (204)
        assert learner.get(job["events"]).status_code == 204


def test_only_the_owner_sees_a_job_and_closing_the_stream_cancels_it(server: ServerProcess) -> None:
    with _learner(server) as owner, _learner(server) as other:
        job = _start(owner, dataset="moons", steps=5000, snapshot_every=10)
        for path in (f"/api/sims/live-training/{job['job']}", job["events"]):
            assert other.get(path).status_code == 404
        assert other.delete(f"/api/sims/live-training/{job['job']}").status_code == 404
        received = []
        with owner.stream("GET", job["events"]) as r:
            for event in _events(r):
                received.append(event)
                if len(received) == 4:
                    break  # leaving the block closes the connection
        assert [e["type"] for e in received] == ["snapshot"] * 4
        assert [e["step"] for e in received] == [10, 20, 30, 40]
        ended = _wait_state(owner, job["job"], ("cancelled",), timeout=30)
        assert ended["steps_done"] < 5000
        # the server kept answering meanwhile
        assert owner.get("/api/sims/velocity-field", params={"grid": 4}).status_code == 200


def test_the_global_cap_answers_429_and_delete_cancels(server: ServerProcess) -> None:
    with _learner(server) as a, _learner(server) as b, _learner(server) as c:
        first = _start(a, steps=5000)
        second = _start(b, steps=5000)
        r = c.post("/api/sims/live-training", json={"steps": 5000})
        assert r.status_code == 429 and r.headers["retry-after"]
        assert "the limit is 2" in r.json()["error"]["message"]
        # a learner's new job replaces their old one instead of counting twice
        replaced = _start(a, steps=5000)
        assert _wait_state(a, first["job"], ("cancelled",))["state"] == "cancelled"
        for client, job in ((a, replaced), (b, second)):
            assert client.delete(f"/api/sims/live-training/{job['job']}").status_code == 200
            _wait_state(client, job["job"], ("cancelled",))
        assert _start(c, steps=20, snapshot_every=10)["state"] == "running"


def test_chapters_render_a_figure_for_each_simulation_and_name_the_issue_of_the_others(api: TestClient, real_course: Course) -> None:
    from straightline.course.simparams import COMING_WITH_SIM

    seen = set()
    for chapter in real_course.chapters:
        html = api.get(f"/chapters/{chapter.slug}").text
        for element in chapter.elements:
            name = element.fields.get("sim") if element.type == "simulation" else element.fields.get("lab")
            if element.type not in ("simulation", "break-it"):
                continue
            start = html.index(f'id="{element.id}"')
            section = html[start:html.index("</section>", start)]
            if name in PARAMS or name == "live-training":
                assert f'data-sim="{name}"' in section and 'data-sim-element="' + element.id + '"' in section
                assert "Coming with" not in section
                seen.add(name)
            else:
                assert f"Coming with {COMING_WITH_SIM[name]}" in section, element.id
                assert "the advanced-toolkit issue" in section
    assert seen == set(PARAMS) | {"live-training"}  # every simulation appears in some chapter
