"""Alembic environment of the record store.

Run programmatically by :func:`wajah.enrollment.migrations.upgrade_database` (which hands over an open
connection in ``config.attributes["connection"]``), so no ``alembic.ini`` is needed on an
office machine. Offline mode (``sql=True``) renders the SQL for a DBA to review and apply.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from wajah.enrollment.db import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no connection and no sqlalchemy.url given to the migrations")
        engine = create_engine(url)
        with engine.begin() as own_connection:
            _run_with(own_connection)
        engine.dispose()
    else:
        _run_with(connection)


def _run_with(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
