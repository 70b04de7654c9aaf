"""The PostgreSQL server the tests use, and an empty, migrated schema for each test.

Every machine of the project (and CI) runs PostgreSQL 15 on 127.0.0.1:5432 with trust
authentication. Each test gets a schema of its own in the database ``test``, reached through
the URL's ``search_path``, so the store under test runs its real migrations and sees nothing
of any other test. Migrating a schema costs about 0.2 s of DDL, so a schema a test is done
with is emptied (a few milliseconds) and lent to the next test rather than dropped; a schema
whose tables a test changed is dropped. All of this run's schemas are dropped at exit.

``SOLR_POLICY_TEST_POSTGRES`` names another server (a URL of its test database). Where no
server answers, ``require_server`` skips the test with the reason; under CI
(``CI=true``) the root conftest turns that skip into a failure.
"""

from __future__ import annotations

import atexit
import itertools
import os
from functools import cache
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

# Another server for a run (and the test that a missing server skips, or fails under CI).
SERVER = os.environ.get("SOLR_POLICY_TEST_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/test"
_RUN = f"solr_test_{os.getpid()}_"  # this test run's schemas (other runs may share the server)
_numbers = itertools.count(1)
_free: list[str] = []  # migrated and empty, ready to lend
_lent: dict[Path, str] = {}  # a test's folder -> its store's schema
_scratch: dict[Path, list[str]] = {}  # a test's folder -> schemas made for it alone
_made: set[str] = set()


@cache
def server_problem() -> str | None:
    """Why the test server cannot be used, or None (asked once per test run)."""
    try:
        with psycopg.connect(SERVER, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL test server {SERVER} not reachable: {str(exc).strip().splitlines()[0].removeprefix('connection failed: ')}"
    return None


def require_server() -> None:
    problem = server_problem()
    if problem:
        pytest.skip(problem)


def url_for_schema(schema: str, server: str = SERVER) -> str:
    return f"{server}?options={quote(f'-csearch_path={schema}')}"


_admin: psycopg.Connection | None = None


def _admin_conn() -> psycopg.Connection:
    """One connection for set-up and clean-up, outside any store, kept for the whole run."""
    global _admin
    if _admin is None or _admin.closed:
        _admin = psycopg.connect(SERVER, autocommit=True)
    return _admin


def admin(sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    """One statement on the test database, outside any store (set-up, tampering)."""
    cur = _admin_conn().execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
    return cur.fetchall() if cur.description else []


def _new_schema() -> str:
    if not _made:
        atexit.register(_drop_all)
    name = f"{_RUN}{next(_numbers)}"
    admin(f'CREATE SCHEMA "{name}"')
    _made.add(name)
    return name


def store_url(folder: Path) -> str:
    """The URL of the store of ``folder``: the same folder, the same schema (to reopen it)."""
    require_server()
    if folder not in _lent:
        _lent[folder] = _free.pop() if _free else _new_schema()
    return url_for_schema(_lent[folder])


def scratch_schema(folder: Path) -> str:
    """A new empty schema for ``folder``'s test alone (dropped after it), not a store's."""
    require_server()
    schema = _new_schema()
    _scratch.setdefault(folder, []).append(schema)
    return schema


def schema_of(folder: Path) -> str:
    return _lent[folder]


@cache
def _store_tables() -> frozenset[str]:
    """The tables the migrations make (read off a schema migrated for the purpose)."""
    from solr_policy.store.postgres import PostgresStore

    schema = _new_schema()
    PostgresStore(url_for_schema(schema)).close()
    _free.append(schema)
    return frozenset(_tables(schema))


def _tables(schema: str) -> list[str]:
    return [row[0] for row in admin("SELECT tablename FROM pg_tables WHERE schemaname = ?", (schema,))]


def give_back(folder: Path) -> None:
    """After a test: empty its store's schema for the next test if its tables are as the
    migrations made them, else drop it; drop its scratch schemas."""
    store, scratch = _lent.pop(folder, None), _scratch.pop(folder, [])
    if server_problem():
        return
    for name in scratch:
        _drop(name)
    if store is None:
        return
    tables = set(_tables(store))
    if not tables or tables != _store_tables():
        _drop(store)
        return
    conn = _admin_conn()
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # foreign keys unchecked: any order
        for table in sorted(tables - {"schema_migrations"}):
            conn.execute(f'DELETE FROM "{store}"."{table}"')  # type: ignore[arg-type]  # our own names
        for (sequence,) in conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (store,)).fetchall():
            conn.execute(f'ALTER SEQUENCE "{store}"."{sequence}" RESTART')  # type: ignore[arg-type]
    _free.append(store)


def _drop(schema: str) -> None:
    admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    _made.discard(schema)


def _drop_all() -> None:
    if not _made or server_problem():
        return
    try:
        for name in sorted(_made):
            _drop(name)
        _admin_conn().close()
    except psycopg.Error:
        pass  # the server went away: nothing left to tidy


def sqlite_or_postgres(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    """A store location for a fixture parametrised ``["sqlite", postgres]``: an SQLite file
    ``name`` in ``tmp_path``, or a fresh PostgreSQL database given back after the test."""
    if request.param == "postgres":
        url = store_url(tmp_path)
        request.addfinalizer(lambda: give_back(tmp_path))
        return url
    return str(tmp_path / name)
