"""Schema migrations of the record store (alembic), shipped inside the package.

:func:`upgrade_database` brings a database to the newest revision; the store calls it at
start-up. The script directory is found next to this file, so it works from an installed
package with no ``alembic.ini`` on the machine.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from wajah.enrollment.db import create_database_engine, write_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """An alembic configuration for the shipped scripts, without any ini file."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        # ConfigParser interpolation would read '%' in a password as a reference.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migration scripts have no head revision")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(engine_or_url: Engine | str) -> None:
    """Upgrade the database to the newest schema revision; a no-op when it is current.

    Runs in one write transaction (BEGIN IMMEDIATE on SQLite), so two processes starting on a
    new database at once do not both create the tables: the second waits, then finds the head.
    """
    if isinstance(engine_or_url, str):
        engine = create_database_engine(engine_or_url)
        try:
            _upgrade(engine)
        finally:
            engine.dispose()
    else:
        _upgrade(engine_or_url)


def _upgrade(engine: Engine) -> None:
    config = alembic_config()
    with write_engine(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
