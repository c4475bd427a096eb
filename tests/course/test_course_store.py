"""The progress store on SQLite and PostgreSQL: migrations, atomic updates, isolation between
learners, serialized concurrent writes, atomic replace."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from straightline.course.store import Attempt, Change, ElementState, ProgressStore


def _bump(old: dict | None) -> Change:
    n = (old or {}).get("n", 0) + 1
    return Change({"n": n}, "started", [("check", {"n": n})])


def test_migrations_create_the_schema_once(store_url: str) -> None:
    store = ProgressStore(store_url)
    ProgressStore(store_url).close()  # a second start finds the schema at head
    inspector = sa.inspect(store.engine)
    assert {"learners", "element_state", "attempts", "alembic_version"} <= set(inspector.get_table_names())
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0001_progress"
    store.close()


def test_update_records_state_and_attempt(store_url: str) -> None:
    store = ProgressStore(store_url)
    new = store.update("a" * 32, "e1", "check", _bump)
    assert new.state == {"n": 1} and new.status == "started"
    store.update("a" * 32, "e1", "check", _bump)
    assert store.states("a" * 32)["e1"].state == {"n": 2}
    assert [a.payload["n"] for a in store.attempts("a" * 32)] == [1, 2]
    assert store.states("b" * 32) == {} and store.attempts("b" * 32) == []
    assert store.states("a" * 32)["e1"].updated_at.tzinfo is not None
    store.close()


def test_a_refused_change_writes_nothing(store_url: str) -> None:
    store = ProgressStore(store_url)

    def refuse(old: dict | None) -> Change:
        raise ValueError("no")

    with pytest.raises(ValueError):
        store.update("c" * 32, "e1", "check", refuse)
    assert not store.learner_exists("c" * 32)
    assert store.states("c" * 32) == {} and store.attempts("c" * 32) == []
    store.close()


def test_concurrent_updates_of_one_learner_are_serialized(store_url: str) -> None:
    store = ProgressStore(store_url)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                store.update("d" * 32, "e1", "check", _bump)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.states("d" * 32)["e1"].state == {"n": 40}
    assert sorted(a.payload["n"] for a in store.attempts("d" * 32)) == list(range(1, 41))
    store.close()


def test_replace_is_all_or_nothing(store_url: str) -> None:
    store = ProgressStore(store_url)
    learner = "e" * 32
    store.update(learner, "old", "check", _bump)
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    store.replace(
        learner,
        [ElementState("new", "derivation", "started", {"hints": 1, "solution": False}, when)],
        [Attempt("new", "derivation", "derivation-hint", {"hint": 1}, when)],
    )
    assert set(store.states(learner)) == {"new"}
    assert store.states(learner)["new"].updated_at == when
    assert [a.kind for a in store.attempts(learner)] == ["derivation-hint"]
    bad = [ElementState("x", "check", "started", {"n": 1}, when), ElementState("x", "check", "started", {"n": 2}, when)]
    with pytest.raises(sa.exc.IntegrityError):
        store.replace(learner, bad, [])  # duplicate key fails inside the transaction ...
    assert set(store.states(learner)) == {"new"}  # ... and the old progress is still there
    store.close()


def test_sqlite_is_durable_and_enforces_foreign_keys(tmp_path) -> None:
    store = ProgressStore(f"sqlite:///{tmp_path / 'p.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO attempts (learner_id, element_id, element_type, kind, payload, created_at) "
                    "VALUES ('nobody', 'e', 'check', 'check', '{}', '2025-01-01')")
        )
    store.close()


def test_unsupported_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL 'mysql://u@h/db'"):
        ProgressStore("mysql://u@h/db")
