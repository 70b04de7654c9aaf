"""The store implementations the contract suite runs against, and how to break each.

Every entry of ``STORE_KINDS`` is a way to get a fresh store and the few operations on its
backing database that no ``Store`` method offers (tampering, damage), which the contract
needs to prove what the store does then. Each kind also says how to get ready (PostgreSQL:
a reachable server, else the test is skipped) and how to clean up after a test.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from solr_policy.store import SqliteStore
from solr_policy.store.base import Store
from solr_policy.store.postgres import PostgresStore

from . import pg
from .samples import fill


@dataclass(frozen=True)
class StoreKind:
    name: str
    # A fresh, empty store whose files (if any) live in the given folder.
    create: Callable[[Path], Store]
    # Open again the store made by ``create`` in that folder (after it was closed).
    reopen: Callable[[Path], Store]
    # Ways to point at a store that cannot work; each opens it (and must raise StoreUnavailable).
    unusable: Callable[[Path], dict[str, Callable[[], Store]]]
    # Damage the closed store's data so that it opens but reading its contents fails.
    damage: Callable[[Path], None]
    # Run one SQL statement on the backing database behind the store's back (tampering).
    write_behind: Callable[[Store, str, tuple[object, ...]], None]
    # Before a test: skip it (with the reason) when the database cannot be had.
    ready: Callable[[], None] = lambda: None
    # After a test: remove what ``create`` and ``unusable`` made for that folder.
    cleanup: Callable[[Path], None] = lambda folder: None
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


# -- SQLite ----------------------------------------------------------------------------------
def _sqlite_path(folder: Path) -> Path:
    return folder / "contract.db"


def sqlite_store_with_data(folder: Path) -> Path:
    """A real store with enough rows to span many pages, closed (so no write-ahead log)."""
    path = folder / "filled.db"
    store = SqliteStore(path)
    fill(store)
    store.close()
    return path


def _sqlite_unusable(folder: Path) -> dict[str, Callable[[], Store]]:
    random_bytes = folder / "random.db"
    random_bytes.write_bytes(random.Random(7).randbytes(16384))
    text = folder / "notes.db"
    text.write_text("these are not the records you are looking for\n" * 50)
    directory = folder / "a-folder.db"
    directory.mkdir()
    filled = sqlite_store_with_data(folder)
    truncated = folder / "truncated.db"
    shutil.copyfile(filled, truncated)
    with truncated.open("r+b") as file:
        file.truncate(truncated.stat().st_size // 2)
    foreign = folder / "foreign.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    return {
        "random bytes": lambda: SqliteStore(random_bytes),
        "a text file": lambda: SqliteStore(text),
        "a directory": lambda: SqliteStore(directory),
        "a truncated copy of a real store": lambda: SqliteStore(truncated),
        "another application's database": lambda: SqliteStore(foreign),
    }


def _sqlite_damage(folder: Path) -> None:
    # Overwrite the second half of the file (data pages), keeping the header and the schema:
    # the store opens, and the first read of a damaged page fails.
    path = _sqlite_path(folder)
    size = path.stat().st_size
    page = 4096
    with closing(sqlite3.connect(path)) as conn:  # the schema's pages may lie past the middle
        schema_end = max(n for (n,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'"))
    start = max((size // 2) // page, schema_end) * page
    with path.open("r+b") as file:
        file.seek(start)
        file.write(random.Random(11).randbytes(size - start))
    for sidecar in ("-wal", "-shm"):
        Path(str(path) + sidecar).unlink(missing_ok=True)


def _sqlite_write_behind(store: Store, sql: str, params: tuple[object, ...]) -> None:
    assert isinstance(store, SqliteStore)
    with closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute(sql, params)


SQLITE = StoreKind(
    name="sqlite",
    create=lambda folder: SqliteStore(_sqlite_path(folder)),
    reopen=lambda folder: SqliteStore(_sqlite_path(folder)),
    unusable=_sqlite_unusable,
    damage=_sqlite_damage,
    write_behind=_sqlite_write_behind,
)


# -- PostgreSQL --------------------------------------------------------------------------------
def _postgres_open(folder: Path) -> Store:
    return PostgresStore(pg.store_url(folder))


def _postgres_unusable(folder: Path) -> dict[str, Callable[[], Store]]:
    foreign = pg.scratch_schema(folder)
    pg.admin(f'CREATE TABLE "{foreign}".certificates (recipe TEXT)')
    newer = pg.scratch_schema(folder)
    PostgresStore(pg.url_for_schema(newer)).close()
    pg.admin(f'INSERT INTO "{newer}".schema_migrations (version, name) VALUES (9999, ?)', ("9999_future.sql",))
    return {
        "no server at the address": lambda: PostgresStore("postgresql://postgres@127.0.0.1:1/test"),
        "not a URL libpq can read": lambda: PostgresStore("postgresql://postgres@127.0.0.1:port/test"),
        "a user the server does not know": lambda: PostgresStore("postgresql://solr_policy_nobody@127.0.0.1:5432/test"),
        "a database that does not exist": lambda: PostgresStore("postgresql://postgres@127.0.0.1:5432/solr_policy_no_such_db"),
        "a schema that does not exist": lambda: PostgresStore(pg.url_for_schema(f"{foreign}_missing")),
        "another application's tables": lambda: PostgresStore(pg.url_for_schema(foreign)),
        "a store written by a newer solr-policy": lambda: PostgresStore(pg.url_for_schema(newer)),
    }


def _postgres_damage(folder: Path) -> None:
    # Tables gone from under the store: it opens (its migrations are recorded), reads fail.
    schema = pg.schema_of(folder)
    pg.admin(f'DROP TABLE "{schema}".parties, "{schema}".audit CASCADE')


def _postgres_write_behind(store: Store, sql: str, params: tuple[object, ...]) -> None:
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]


POSTGRES = StoreKind(
    name="postgres",
    create=_postgres_open,
    reopen=_postgres_open,
    unusable=_postgres_unusable,
    damage=_postgres_damage,
    write_behind=_postgres_write_behind,
    ready=pg.require_server,
    cleanup=pg.give_back,
    marks=(pytest.mark.postgres,),
)

STORE_KINDS: list[StoreKind] = [SQLITE, POSTGRES]
