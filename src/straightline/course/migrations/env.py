"""Alembic environment for the progress store.

The app applies migrations itself at start-up (`ProgressStore.upgrade`), passing its connection in
`config.attributes["connection"]`. For hand use:

    alembic -c /dev/null -x url=sqlite:////path/progress.db upgrade head   (or set sqlalchemy.url)
"""

from __future__ import annotations

from alembic import context

from straightline.course.store import make_engine, metadata

config = context.config
target_metadata = metadata


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect().execution_options(write=True) as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
