"""Progress-store backends for the tests: a SQLite file per test, and PostgreSQL when
STRAIGHTLINE_TEST_POSTGRES_URL names a server (`make test` starts a throw-away one).

PostgreSQL tests get one fresh database per test session (created here, dropped at the end);
each test starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES_ENV = "STRAIGHTLINE_TEST_POSTGRES_URL"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database for this session (skips without a server)."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"{POSTGRES_ENV} is not set: run under scripts/with_postgres.py (make test) for the PostgreSQL store")
    name = f"straightline_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _empty_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        exists = conn.exec_driver_sql("SELECT to_regclass('public.learners')").scalar()
        if exists:
            conn.exec_driver_sql("TRUNCATE learners, element_state, attempts RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A progress-store URL with no progress in it: SQLite in tmp_path, or the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'progress.db'}"
        return
    url = request.getfixturevalue("postgres_database")
    _empty_postgres(url)
    yield url
    _empty_postgres(url)
