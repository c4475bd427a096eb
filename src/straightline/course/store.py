"""The progress store: every learner's attempts and element states, in SQLite or PostgreSQL.

Schema (migrations in `straightline/course/migrations`, applied at start-up):

    learners       id (the random id in the learner's signed cookie), created_at
    element_state  (learner_id, element_id) -> element_type, status, state (JSON), updated_at
                   one row per element a learner has touched: the current state
    attempts       id, learner_id, element_id, element_type, kind, payload (JSON), created_at
                   append-only history: every check answer, checkpoint answer and rating, hint
                   revealed, ... (later: Build-It submissions, simulation and lab visits)

Text in states and payloads is stored and read through `texthygiene.scrub`: U+0000 and lone
surrogates (which PostgreSQL refuses and which break a page on SQLite) become U+FFFD, so both stores
hold the same thing, and rows written before that rule read back clean.

Every write is one transaction that is committed before the call returns, so whatever the web app
acknowledges is on disk (SQLite: WAL, synchronous=FULL; PostgreSQL: a normal commit). Writes for
one learner are serialized (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row lock on the learner), so a
read-modify-write of a state never loses a concurrent update.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from .texthygiene import scrub

__all__ = [
    "Attempt",
    "Change",
    "ElementState",
    "MIGRATIONS_DIR",
    "ProgressStore",
    "attempts_table",
    "element_state_table",
    "learners_table",
    "metadata",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

metadata = sa.MetaData()
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

learners_table = sa.Table(
    "learners",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
element_state_table = sa.Table(
    "element_state",
    metadata,
    sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("element_id", sa.String(100), primary_key=True),
    sa.Column("element_type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("state", _JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
attempts_table = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", _BIGINT_PK, primary_key=True, autoincrement=True),
    sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("element_id", sa.String(100), nullable=False),
    sa.Column("element_type", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", _JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_attempts_learner_element", "learner_id", "element_id", "id"),
)


# The hot read, built once: a learner's element states (one indexed lookup by primary key prefix).
_STATES_QUERY = sa.select(
    element_state_table.c.element_id,
    element_state_table.c.element_type,
    element_state_table.c.status,
    element_state_table.c.state,
    element_state_table.c.updated_at,
).where(element_state_table.c.learner_id == sa.bindparam("learner_id"))


@dataclass(frozen=True)
class ElementState:
    """The current state of one element for one learner."""

    element_id: str
    element_type: str
    status: str  # "started" | "done"
    state: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class Attempt:
    """One recorded learner action."""

    element_id: str
    element_type: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    id: int | None = None


@dataclass(frozen=True)
class Change:
    """What an action does to an element: its new state, and the attempts to append."""

    state: dict[str, Any]
    status: str
    attempts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, payload)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; every timestamp we store is UTC
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")  # a commit is on disk when it returns
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the write lock up front, so a read-modify-write never hits SQLITE_BUSY_SNAPSHOT.
        # Readers run each statement on its own (every read here is a single SELECT).
        if connection.get_execution_options().get("write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _head_revision() -> str | None:
    """The newest migration's id, read from the version files without importing Alembic
    (None when that is not clear-cut: Alembic then decides)."""
    import re

    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r'^down_revision\s*=\s*(None|"([^"]+)")', text, re.M)
        if rev is None or down is None:
            continue
        revisions[rev.group(1)] = down.group(2)
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def make_engine(url: str) -> Engine:
    """An engine for `url` configured for the store (SQLite pragmas, pool health checks)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=30
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    )


class ProgressStore:
    """Per-learner progress in a SQL database. Thread-safe; one instance per app."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time; queueing writers of this process on a lock hands the
        # database over at once instead of through SQLite's sleeping busy handler.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        if migrate:
            self.upgrade()

    # --- schema --------------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is already there)."""
        head = _head_revision()
        if head is not None and self._current_revisions() == {head}:
            return  # the usual start: nothing to do, and no need to import Alembic
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        heads = set(ScriptDirectory.from_config(config).get_heads())
        with self.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        if current == heads:
            return
        with self.engine.connect().execution_options(write=True) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def _current_revisions(self) -> set[str]:
        try:
            with self.engine.connect() as conn:
                return set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
        except sa.exc.DBAPIError:
            return set()  # no schema yet

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # --- reads ---------------------------------------------------------------------------------

    def states(self, learner_id: str) -> dict[str, ElementState]:
        """Every element state of a learner, keyed by element id (empty for a new learner)."""
        with self.engine.connect() as conn:
            rows = conn.execute(_STATES_QUERY, {"learner_id": learner_id}).all()
        return {r.element_id: ElementState(r.element_id, r.element_type, r.status, scrub(r.state), _utc(r.updated_at)) for r in rows}

    def attempts(self, learner_id: str, element_id: str | None = None) -> list[Attempt]:
        """A learner's attempts, oldest first (optionally for one element)."""
        t = attempts_table
        query = sa.select(t).where(t.c.learner_id == learner_id).order_by(t.c.id)
        if element_id is not None:
            query = query.where(t.c.element_id == element_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Attempt(r.element_id, r.element_type, r.kind, scrub(r.payload), _utc(r.created_at), r.id) for r in rows]

    def learner_exists(self, learner_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(learners_table.c.id).where(learners_table.c.id == learner_id)).first()
        return found is not None

    # --- writes --------------------------------------------------------------------------------

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed when the block ends without error."""
        with self._write_lock or contextlib.nullcontext():
            with self.engine.connect().execution_options(write=True) as conn, conn.begin():
                yield conn

    def _lock_learner(self, conn: Connection, learner_id: str, now: datetime) -> None:
        conn.execute(self._insert(learners_table).values(id=learner_id, created_at=now).on_conflict_do_nothing())
        if self.dialect == "postgresql":
            conn.execute(sa.select(learners_table.c.id).where(learners_table.c.id == learner_id).with_for_update())

    def update(
        self,
        learner_id: str,
        element_id: str,
        element_type: str,
        change: Callable[[dict[str, Any] | None], Change],
    ) -> ElementState:
        """Apply `change(current_state_or_None)` in one committed transaction; returns the new state.

        `change` may raise to refuse the action: then nothing is written.
        """
        t = element_state_table
        now = _now()
        with self._writing() as conn:
            self._lock_learner(conn, learner_id, now)
            row = conn.execute(
                sa.select(t.c.state).where(t.c.learner_id == learner_id, t.c.element_id == element_id)
            ).first()
            result = change(scrub(row.state) if row is not None else None)
            state = scrub(result.state)
            values = dict(element_type=element_type, status=result.status, state=state, updated_at=now)
            conn.execute(
                self._insert(t)
                .values(learner_id=learner_id, element_id=element_id, **values)
                .on_conflict_do_update(index_elements=[t.c.learner_id, t.c.element_id], set_=values)
            )
            if result.attempts:
                conn.execute(
                    attempts_table.insert(),
                    [
                        dict(
                            learner_id=learner_id,
                            element_id=element_id,
                            element_type=element_type,
                            kind=kind,
                            payload=scrub(payload),
                            created_at=now,
                        )
                        for kind, payload in result.attempts
                    ],
                )
        return ElementState(element_id, element_type, result.status, state, now)

    def record(self, learner_id: str, element_id: str, element_type: str, kind: str, payload: dict[str, Any]) -> Attempt:
        """Append one attempt without touching the element's state (a review answer), committed."""
        now = _now()
        payload = scrub(payload)
        with self._writing() as conn:
            self._lock_learner(conn, learner_id, now)
            conn.execute(
                attempts_table.insert(),
                dict(learner_id=learner_id, element_id=element_id, element_type=element_type, kind=kind, payload=payload, created_at=now),
            )
        return Attempt(element_id, element_type, kind, payload, now)

    def replace(self, learner_id: str, states: Iterable[ElementState], attempts: Iterable[Attempt]) -> None:
        """Replace all of a learner's progress with the given states and attempts, atomically."""
        states, attempts = list(states), list(attempts)
        with self._writing() as conn:
            self._lock_learner(conn, learner_id, _now())
            conn.execute(attempts_table.delete().where(attempts_table.c.learner_id == learner_id))
            conn.execute(element_state_table.delete().where(element_state_table.c.learner_id == learner_id))
            if states:
                conn.execute(
                    element_state_table.insert(),
                    [
                        dict(
                            learner_id=learner_id,
                            element_id=s.element_id,
                            element_type=s.element_type,
                            status=s.status,
                            state=scrub(s.state),
                            updated_at=s.updated_at,
                        )
                        for s in states
                    ],
                )
            if attempts:
                conn.execute(
                    attempts_table.insert(),
                    [
                        dict(
                            learner_id=learner_id,
                            element_id=a.element_id,
                            element_type=a.element_type,
                            kind=a.kind,
                            payload=scrub(a.payload),
                            created_at=a.created_at,
                        )
                        for a in attempts
                    ],
                )
