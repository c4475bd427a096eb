"""Simulations are bounded (issue 11, finding 4): a cost cap per request (422 naming the parameters
and the limit), lowered maxima, a per-client limit (429) and a server-wide queue bound (503), both
with Retry-After, cheapest-first scheduling, and no computing for another site's page (403).
Everything the course's own pages can ask for stays within the limits."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straightline.course.content import Course
from straightline.course.simcost import MAX_COST_S, estimate, over_limit
from straightline.course.simparams import PARAMS
from straightline.web.sim_runtime import Busy, SimLimits, course_warmups

from web_support import JSON, sqlite_client  # noqa: E402

SIMS_JS = Path(__file__).parents[2] / "src" / "straightline" / "web" / "static" / "sims"

#: what each simulation's controls on the course's pages can send (static/sims/*.js), beside its
#: defaults; the test below checks each value against the script, so a new control fails it
COURSE_CONTROLS: dict[str, dict[str, list]] = {
    "particles-flow": {"particles": [200, 500, 1000, 2000], "coupling": ["independent", "exact_ot"]},
    "digit-emerging": {"label": [None, 9]},
    "curved-vs-straight": {"steps": [1, 100], "coupling": ["independent", "exact_ot"]},
    "mixture-oracle": {"samples": [1024, 4096, 16384], "t": [0.0, 0.98]},
    "velocity-field": {"grid": [11, 15, 21, 31], "particles": [0, 500], "t": [0.0, 1.0]},
    "euler-steps": {"steps": [1, 100], "coupling": ["independent", "exact_ot"]},
    "euler-faults": {"steps": [2, 100], "faults": [(), ("curved-velocity", "frozen-time", "velocity-bias")]},
    "solver-orders": {"dataset": ["moons", "8gaussians"]},
    "log-density": {"grid": [24, 40, 64], "coupling": ["independent", "exact_ot"]},  # RK4 steps: no control
    "reflow-straightening": {"round": [0, 3], "steps": [1, 50]},
    "guided-digits": {"w": [0.0, 5.0], "label": [0, 9]},
    "rotation-flow": {"steps": [1, 100], "particles": [50, 150, 300, 500]},
    "side-by-side": {"steps": [1, 100], "scale": ["flow", "ddpm"], "data": ["moons", "digits"]},
    "flowmap-nfe": {"nfe": [1, 2, 4, 8]},
    "flowmap-jumps": {},  # s, t and the particle are drawn from one answer: only the seed reaches the API
}


def test_the_course_controls_table_matches_the_scripts() -> None:
    for name, controls in COURSE_CONTROLS.items():
        script = (SIMS_JS / f"{name}.js").read_text()
        for field, values in controls.items():
            assert field in script, (name, field)
            for value in values:
                if isinstance(value, int) and value > 1 and field != "label":
                    assert re.search(rf"\b{value}\b", script) or f"{value}" in (SIMS_JS / "controls.js").read_text(), (name, value)


def test_everything_the_course_asks_for_is_within_the_cap(real_course: Course) -> None:
    asked = 0
    for name, params in course_warmups(real_course):
        model = PARAMS[name].model_validate(params)
        assert over_limit(name, model) is None, (name, params)
        controls = COURSE_CONTROLS[name]
        for combo in itertools.product(*controls.values()):
            values = {**params, **dict(zip(controls, combo))}
            assert over_limit(name, PARAMS[name].model_validate(values)) is None, (name, values)
            asked += 1
    assert asked > 50


def test_the_old_eighteen_second_request_is_refused_and_the_cap_names_its_parameters(api: TestClient) -> None:
    r = api.get("/api/sims/particles-flow?particles=5000&steps=1000&coupling=exact_ot", headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "particles"
    assert "1..2000" in r.json()["error"]["message"]
    params = PARAMS["euler-faults"](particles=2000, steps=500)
    assert estimate("euler-faults", params).seconds > MAX_COST_S
    r = api.get("/api/sims/euler-faults?particles=2000&steps=500", headers=JSON)
    error = r.json()["error"]
    assert r.status_code == 422 and error["field"] == "particles, steps"
    assert "particles=2000, steps=500" in error["message"] and f"limit is {MAX_COST_S:.1f} s" in error["message"]
    assert "lower particles or steps" in error["message"]


def test_a_page_on_another_site_gets_nothing_computed(api: TestClient) -> None:
    r = api.get("/api/sims/particles-flow?particles=7", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and "cross-site" in r.text
    for site in ("same-origin", "none"):
        assert api.get("/api/sims/particles-flow?particles=7", headers={**JSON, "Sec-Fetch-Site": site}).status_code == 200


# --- admission and scheduling ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, fixture_course: Course) -> Iterator[TestClient]:
    """An app whose course has no simulations, so no warm-up computes behind the tests' backs."""
    with sqlite_client(tmp_path_factory.mktemp("sims-input"), fixture_course) as client:
        yield client


class Gate:
    """Stands in for the simulations' `run`: 'particles-flow' waits until released; records order."""

    def __init__(self, real):
        self.real, self.release, self.order = real, threading.Semaphore(0), []
        self.started = threading.Semaphore(0)

    def __call__(self, name, params):
        if name == "particles-flow":
            self.started.release()
            self.release.acquire(timeout=60)
        self.order.append((name, params.steps if hasattr(params, "steps") else None))
        return self.real(name, params)


@pytest.fixture
def gated(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    runtime = api.app.state.ctx.sims
    runtime.start()
    api.get("/api/sims/particles-flow?particles=3&steps=1", headers=JSON)  # loaded
    for _ in range(1200):  # the fixture course's own simulations are computed at start-up
        if runtime.state == "ready":
            break
        threading.Event().wait(0.05)
    assert runtime.state == "ready"
    engine = runtime.engine
    gate = Gate(engine.sims.run)
    monkeypatch.setattr(engine.sims, "run", gate)
    saved = runtime.limits
    yield api, runtime, engine, gate
    runtime.limits = saved
    for _ in range(64):
        gate.release.release()


def _blocked(engine, gate, count: int, client: str, seed0: int = 100, particles: int = 3, **limits) -> list:
    """`count` particles-flow computations held at the gate (cheap ones by default, which the
    light lane may take as well as the pool: hold `engine.workers + 1` to fill both)."""
    futures = [
        engine.submit("particles-flow", PARAMS["particles-flow"](particles=particles, steps=2 if particles < 100 else 100, seed=seed0 + i), client=client,
                      limits=SimLimits(**limits) if limits else None)
        for i in range(count)
    ]
    return futures


def test_one_client_may_not_hold_more_than_its_share(gated) -> None:
    api, runtime, engine, gate = gated
    runtime.limits = SimLimits(per_client=2, queued_s=1000)
    held = _blocked(engine, gate, 2, "testclient", per_client=2, queued_s=1000)
    r = api.get("/api/sims/euler-steps?particles=11&steps=3", headers=JSON)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "2 simulations computing" in r.json()["error"]["message"]
    with pytest.raises(Busy) as refused:
        engine.submit("euler-steps", PARAMS["euler-steps"](particles=12), client="testclient", limits=runtime.limits)
    assert refused.value.status == 429
    # another address, a cached result, and a request joining an identical computation still pass
    other = engine.submit("euler-steps", PARAMS["euler-steps"](particles=13), client="10.0.0.9", limits=runtime.limits)
    joined = engine.submit("particles-flow", PARAMS["particles-flow"](particles=3, steps=2, seed=100), client="testclient", limits=runtime.limits)
    assert joined is held[0]
    for _ in held:
        gate.release.release()
    assert other.result(timeout=60) and all(f.result(timeout=60) for f in held)
    assert engine.submit("euler-steps", PARAMS["euler-steps"](particles=12), client="testclient", limits=runtime.limits).result(timeout=60)


def test_the_server_queue_is_bounded_but_light_requests_still_run_first(gated) -> None:
    api, runtime, engine, gate = gated
    workers = engine.workers
    held = _blocked(engine, gate, workers + 1, "10.0.0.1", seed0=200)  # every worker busy
    for _ in range(workers + 1):
        assert gate.started.acquire(timeout=60)
    limits = SimLimits(per_client=100, queued_s=engine.pending_s + 1.0, light_s=0.5)
    heavy = PARAMS["euler-faults"](particles=2000, steps=100, seed=5)  # about 2 s
    with pytest.raises(Busy) as full:
        engine.submit("euler-faults", heavy, client="10.0.0.2", limits=limits)
    assert full.value.status == 503 and full.value.retry_after_s >= 1
    roomy = SimLimits(per_client=100, queued_s=1000)
    queued = engine.submit("euler-faults", PARAMS["euler-faults"](particles=600, steps=3, seed=6), client="10.0.0.2", limits=roomy)
    light = engine.submit("euler-steps", PARAMS["euler-steps"](particles=20, steps=3, seed=7), client="10.0.0.3", limits=limits)
    gate.release.release()  # one thread frees up: it takes the cheapest waiting job first
    assert light.result(timeout=60)
    for _ in held[1:]:
        gate.release.release()
    assert queued.result(timeout=60)
    names = [n for n, _ in gate.order if n != "particles-flow"]
    assert names == ["euler-steps", "euler-faults"], gate.order


def test_one_clients_queue_does_not_hold_up_another(gated) -> None:
    """Fair order: a client's first computation goes before another client's second, even if dearer."""
    api, runtime, engine, gate = gated
    workers = engine.workers
    held = _blocked(engine, gate, workers + 1, "10.0.0.1", seed0=300)  # every worker busy
    for _ in range(workers + 1):
        assert gate.started.acquire(timeout=60)
    roomy = SimLimits(per_client=100, queued_s=1000)
    mine = [
        engine.submit("euler-steps", PARAMS["euler-steps"](particles=20, steps=steps, seed=8), client="10.0.0.5", limits=roomy)
        for steps in (1, 2)
    ]
    theirs = engine.submit("euler-steps", PARAMS["euler-steps"](particles=20, steps=30, seed=8), client="10.0.0.6", limits=roomy)
    gate.release.release()  # one worker: it runs the three in turn
    assert all(f.result(timeout=60) for f in (*mine, theirs))
    for _ in held[1:]:
        gate.release.release()
    order = [steps for name, steps in gate.order if name == "euler-steps"]
    assert order == [1, 30, 2], gate.order


def test_a_chapters_cheap_picture_does_not_wait_behind_the_costliest_requests(gated) -> None:
    """Every pool worker busy with computations the cap admits but that are not light (another
    client's): a cheap request still runs at once, in the light lane."""
    api, runtime, engine, gate = gated
    held = _blocked(engine, gate, engine.workers, "10.0.0.1", seed0=400, particles=2000)
    for _ in range(engine.workers):
        assert gate.started.acquire(timeout=60)
    cheap = engine.submit("euler-steps", PARAMS["euler-steps"](particles=20, steps=3, seed=9), client="10.0.0.7")
    assert cheap.result(timeout=60) and not any(f.done() for f in held)
    for _ in held:
        gate.release.release()
    assert all(f.result(timeout=120) for f in held)
