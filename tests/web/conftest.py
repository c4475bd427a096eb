"""Fixtures for the web app's tests.

- `store_url` (from tests/conftest.py): each test runs against SQLite and (under `make test`) PostgreSQL;
- `client`, `other_client`: two learners (separate cookie jars) on an app over the fixture course
  in fixtures/course/ (one element of every type, and a gate);
- `real_client`: the app over the real course;
- `server_factory`: real `python -m straightline.web.server` processes on free loopback ports;
- the browser tests': `browser` (one Chromium per module), `server` (one real server over the shipped
  course per module, with its own SQLite store), `traffic` (the test's requests and console errors),
  `open_context(**options)` (browser contexts that record into `traffic`; after the test they are
  closed and the traffic must have stayed on 127.0.0.1 without console errors), and `page` (a
  desktop page in such a context; a module overrides it for other options).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from straightline.course.content import Course, load_course
from straightline.web.app import create_app

sys.path.insert(0, str(Path(__file__).parent))
from browser_support import CHROMIUM, CHROMIUM_ARGS, DESKTOP, Traffic, new_context  # noqa: E402
from web_support import FIXTURE_CHAPTERS, ServerProcess, make_settings, start_server  # noqa: E402


@pytest.fixture(scope="session")
def fixture_course() -> Course:
    return load_course(FIXTURE_CHAPTERS)


@pytest.fixture(scope="session")
def real_course() -> Course:
    return load_course()


@pytest.fixture
def app(store_url: str, tmp_path: Path, fixture_course: Course) -> Iterator[FastAPI]:
    yield create_app(make_settings(store_url, tmp_path), course=fixture_course)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def other_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def real_client(store_url: str, tmp_path: Path, real_course: Course) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(store_url, tmp_path), course=real_course)) as c:
        yield c


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium (Debian's) per browser test module.

    Not per session: while Playwright's sync API is open it holds a running event loop in the main
    thread, so every later test that calls asyncio.run() (the grader's, the Build-It burst test)
    would fail when run after a browser test (`pytest tests/web tests/grader`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server process over the shipped course, with a SQLite store of its own, for one test module."""
    data = tmp_path_factory.mktemp("server")
    running = start_server(data, db=f"sqlite:///{data / 'progress.db'}")
    yield running
    running.kill()


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def open_context(browser, traffic: Traffic) -> Iterator[Callable[..., object]]:
    """`open_context(**options)`: a browser context recording into `traffic`. After the test every
    context it opened is closed (closing one twice is harmless), then `traffic.assert_local()`."""
    opened: list[object] = []

    def open_(**options) -> object:
        context = new_context(browser, traffic, **options)
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()
    traffic.assert_local()


@pytest.fixture
def page(open_context):
    """A desktop page (1280 x 900) in a context of its own; a module that wants other options or a
    first step (a gate cleared, a guess committed) overrides this fixture with `open_context`."""
    return open_context(**DESKTOP).new_page()


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def factory(*args, **kwargs) -> ServerProcess:
        server = start_server(*args, **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.kill(signal.SIGTERM)
