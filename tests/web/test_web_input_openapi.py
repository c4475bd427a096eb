"""The OpenAPI schema tells the truth (issue 11): schemathesis generates requests for every
operation from `/openapi.json` and the app answers each with no server error, a documented status
code, a documented content type and a body that matches the documented schema.

Bounded: a fixed seed (derandomized), a few examples per operation and a time budget for the
whole run (past it, the remaining operations get 2 examples each; nothing asserts a time); simulations run under a low cost cap so a generated request costs milliseconds, not
seconds (the cap's own behaviour is tested in test_web_input_sims.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from straightline.course.content import Course
from straightline.web.app import create_app

from web_support import make_settings  # noqa: E402

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extras (pip install -e .[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode, checks  # noqa: E402

BUDGET_S = 60.0
EXAMPLES = 10
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture
def api_app(store_url: str, tmp_path: Path, fixture_course: Course) -> Iterator[FastAPI]:
    app = create_app(make_settings(store_url, tmp_path), course=fixture_course)
    app.state.ctx.sims.max_cost_s = 0.05  # generated simulations stay cheap
    app.state.ctx.sims.live_max_jobs = 1
    with TestClient(app):  # runs the lifespan (grader, simulations) around the run
        yield app


def _strategy(operation, course: Course):
    """Valid and invalid requests; half ask for JSON, and routes on an element or a chapter also get
    the fixture course's real ids (random ids only ever reach the 404)."""
    real: dict[str, list[str]] = {"element_id": sorted(course.elements), "slug": [c.slug for c in course.chapters]}
    options = []
    for accept in ({}, {"Accept": "application/json"}):
        for mode in GenerationMode:
            options.append(operation.as_strategy(mode, headers=accept))
        for name, values in real.items():
            if "{" + name + "}" in operation.path:
                options += [operation.as_strategy(headers=accept, path_parameters={name: v}) for v in values]
    return st.one_of(options)


def test_every_operation_conforms_to_the_schema(api_app: FastAPI, fixture_course: Course) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    started = time.monotonic()
    for operation in operations:
        # past the time budget (a slow machine) every remaining operation still runs, with fewer examples
        examples = EXAMPLES if time.monotonic() - started < BUDGET_S else 2

        @given(case=_strategy(operation, fixture_course))
        @settings(
            max_examples=examples, derandomize=True, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            case.call_and_validate(checks=CHECKS)

        check()
