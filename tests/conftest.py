"""Shared fixtures. Real face photos come from ../shared/faces (or WAJAH_FACES_DIR); they are
never copied into the repository. Under CI a missing photo folder fails the tests that need it
instead of skipping them."""

from __future__ import annotations

import csv
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def faces_root() -> Path:
    configured = os.environ.get("WAJAH_FACES_DIR")
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "faces"


@dataclass(frozen=True)
class FacePhoto:
    path: Path
    identity: str
    width: int
    height: int
    note: str


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    root = faces_root()
    if not (root / "README.md").is_file():
        message = f"real face photos not found at {root} (set WAJAH_FACES_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


def read_manifest(root: Path, folder: str) -> list[FacePhoto]:
    with (root / folder / "manifest.csv").open(newline="") as handle:
        return [
            FacePhoto(
                path=root / row["path"],
                identity=row["identity"],
                width=int(row["width"] or 0),
                height=int(row["height"] or 0),
                note=row.get("note", ""),
            )
            for row in csv.DictReader(handle)
        ]


@pytest.fixture(scope="session")
def manifest(faces_dir: Path) -> Iterator[object]:
    """``manifest(folder)`` -> list of FacePhoto for that folder of ../shared/faces."""
    yield lambda folder: read_manifest(faces_dir, folder)


# -- databases: every store-touching test runs on SQLite and on PostgreSQL -------------------
#
# WAJAH_TEST_POSTGRES_URL names a PostgreSQL server the tests may create databases on (.ci/run
# starts a throw-away cluster and sets it). Each PostgreSQL test gets a fresh database, created
# from template0 and dropped afterwards. Under CI a missing server fails those tests.

POSTGRES_URL_VARIABLE = "WAJAH_TEST_POSTGRES_URL"
DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """An AUTOCOMMIT engine on the test server's maintenance database."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        message = f"no PostgreSQL server for the tests ({POSTGRES_URL_VARIABLE} is not set)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    yield engine
    engine.dispose()


class PostgresDatabases:
    """Creates empty databases on the test server; drops them when the session ends."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._names: list[str] = []

        self._migrated_template: str | None = None

    def create(self, template: str = "template0") -> str:
        name = f"wajah_test_{uuid.uuid4().hex[:16]}"
        with self._server.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._names.append(name)
        return self._url(name)

    def create_migrated(self) -> str:
        """A new database at the migrations' head: a copy of one migrated once per session
        (copying takes ~0.03 s, migrating ~0.13 s)."""
        if self._migrated_template is None:
            from wajah.enrollment.migrations import upgrade_database

            url = self.create()
            upgrade_database(url)  # disposes its engine: nobody is connected to the template
            self._migrated_template = self._names[-1]
        return self.create(template=self._migrated_template)

    def _url(self, name: str) -> str:
        url: str = self._server.url.set(database=name).render_as_string(hide_password=False)
        return url

    def drop_all(self) -> None:
        with self._server.connect() as connection:
            for name in self._names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._names.clear()


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: Any) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_server)
    yield databases
    databases.drop_all()


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> str:
    """The URL of a new, empty PostgreSQL database (one per test)."""
    return postgres_databases.create()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: SQLite in ``tmp_path``, or PostgreSQL on the test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wajah.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to head, for ``migrated_database_url`` to copy."""
    from wajah.enrollment.migrations import upgrade_database

    path = tmp_path_factory.mktemp("migrated") / "wajah.db"
    upgrade_database(f"sqlite:///{path}")  # disposes its engine: everything is in the file
    return path


@pytest.fixture(params=DATABASES)
def migrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like ``database_url``, already migrated to head (a copy of a database migrated once
    per session, for tests that would otherwise spend most of their time migrating)."""
    if request.param == "sqlite":
        path = tmp_path / "wajah.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
        return f"sqlite:///{path}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.create_migrated()


@pytest.fixture(scope="module", params=DATABASES)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Like ``database_url``, one per test module (for module-scoped services): an empty
    string (the settings' default, SQLite in the data directory) or a new PostgreSQL
    database."""
    if request.param == "sqlite":
        return ""
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.create()
